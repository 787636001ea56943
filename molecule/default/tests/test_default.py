"""What the build_host role leaves on the test instance (molecule verify, pytest-testinfra)."""

import json

import pytest

INSECURE_REGISTRY = "registry.edgeforge.test:5000"
PRE_EXISTING_REGISTRY = "registry.pre-existing.test:5000"
MIRROR = "https://mirror.edgeforge.test"
PROXY = "http://proxy.edgeforge.test:3128"
TEST_CA = "/usr/local/share/ca-certificates/edgeforge-test-registry-ca.crt"


def _pem_body(text):
    return "".join(line for line in text.splitlines() if line and not line.startswith("-----"))


@pytest.mark.parametrize("name", ["git", "docker.io", "skopeo", "python3-venv"])
def test_packages_installed(host, name):
    assert host.package(name).is_installed


def test_docker_daemon_answers(host):
    result = host.run("docker info --format '{{.ServerVersion}}'")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip()


def test_docker_cli_can_list_images(host):
    assert host.run("docker image ls --quiet").rc == 0


def test_user_in_docker_group(host):
    assert "docker" in host.user("edgeforge-builder").groups


def test_daemon_json_merged(host):
    daemon_json = host.file("/etc/docker/daemon.json")
    assert daemon_json.mode == 0o644
    config = json.loads(daemon_json.content_string)
    assert config["insecure-registries"] == [PRE_EXISTING_REGISTRY, INSECURE_REGISTRY]
    assert config["registry-mirrors"] == [MIRROR]
    # a key the role does not manage is kept
    assert config["log-level"] == "warn"
    # Docker 20.10 refuses to start with daemon.json "proxies"; the default target is the systemd drop-in only.
    assert "proxies" not in config


def test_proxy_dropin(host):
    dropin = host.file("/etc/systemd/system/docker.service.d/http-proxy.conf")
    assert dropin.exists
    text = dropin.content_string
    assert "[Service]" in text
    assert f'Environment="HTTP_PROXY={PROXY}"' in text
    assert f'Environment="HTTPS_PROXY={PROXY}"' in text
    assert 'Environment="NO_PROXY=localhost,127.0.0.1,.edgeforge.test"' in text


def test_ca_certificate_in_trust_store(host):
    cert = host.file(TEST_CA)
    assert cert.exists
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    assert _pem_body(cert.content_string) in _pem_body(bundle)


def test_registry_ca_for_docker(host):
    registry_ca = host.file(f"/etc/docker/certs.d/{INSECURE_REGISTRY}/ca.crt")
    assert registry_ca.exists
    assert registry_ca.content_string == host.file(TEST_CA).content_string


def test_python_packages_in_venv(host):
    result = host.run("/opt/edgeforge/venv/bin/python -c 'import docker, boto3, yaml; print(docker.__version__)'")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().startswith("7.")


def test_build_path(host):
    build_path = host.file("/var/lib/edgeforge")
    assert build_path.is_directory
    assert build_path.user == "root"
