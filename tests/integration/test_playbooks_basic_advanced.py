"""playbooks/basic.yml and playbooks/advanced.yml end to end against the test bed (engine, registries, stand-ins)."""

from __future__ import annotations

import os
import subprocess
import warnings

import docker
import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.manifest import expand_uri
from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import remote_labels, unique

pytestmark = pytest.mark.integration

TOKEN = "edgeforgetesttoken0123456789abcd"


@pytest.fixture(name="custom_tag")
def fixture_custom_tag(docker_engine):
    """A custom tag of this test alone (the inventory's palette-learn is shared by every run on the engine).

    The local installer and provider images built under it are removed afterwards.
    """
    tag = unique("it")
    yield tag
    client = docker_engine.client
    for image in client.images.list():
        for reference in image.tags:
            if reference.endswith("-" + tag):
                try:
                    client.images.remove(reference, noprune=False)
                except docker.errors.APIError as err:  # clean-up only: the test itself has passed or failed
                    warnings.warn("could not remove %s: %s" % (reference, err))


def _basic_vars(standin_images, registry, tmp_path, custom_tag, **extra):
    data = dict(standin_images.config_overrides)
    data.update(image_registry="%s/%s" % (registry.host, unique()), build_dir=str(tmp_path / "build"),
                user_data_edge_host_token=TOKEN, custom_tag=custom_tag)
    data.update(extra)
    return data


def _manifest(build_dir):
    with open(os.path.join(build_dir, "byoos-pack.yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["options"]


def test_basic_flow_pushes_tags_writes_the_manifest_and_reruns_without_change(
        standin_images, registry, tmp_path, custom_tag):
    variables = _basic_vars(standin_images, registry, tmp_path, custom_tag)
    first = run_playbook("playbooks/basic.yml", variables)
    assert first.rc == 0, first.stdout + first.stderr
    namespace = variables["image_registry"].split("/", 1)[1]
    tag = "k3s-1.27.2-v4.9.21-%s" % custom_tag  # inventory/group_vars: k8s 1.27.2
    assert registry.tags("%s/ubuntu" % namespace) == [tag]
    reference = "%s/ubuntu:%s" % (variables["image_registry"], tag)
    labels = remote_labels(registry, reference)
    assert labels["io.edgeforge.inputs-digest"].startswith("sha256:")
    assert labels["io.edgeforge.k8s-version"] == "1.27.2"
    assert labels["io.edgeforge.kind"] == "provider"
    values = _manifest(variables["build_dir"])
    assert values["system.peVersion"] == "v4.9.21"
    assert values["system.registry"] == variables["image_registry"]
    assert expand_uri(values, "1.27.2") == reference
    assert "PASTE THE CONTENT ABOVE" in first.stdout
    assert "BYOOS pack manifest: %s/byoos-pack.yaml" % variables["build_dir"] in first.stdout
    assert "installer image (local Docker engine): palette-installer-image:v4.9.21-%s" % custom_tag in first.stdout
    assert "user data: " in first.stdout
    assert TOKEN not in first.output

    again = run_playbook("playbooks/basic.yml", variables)
    assert again.rc == 0, again.stdout
    assert again.recap["localhost"]["changed"] == 0, again.stdout


def test_bad_variable_is_refused_before_any_build_and_nothing_is_pushed(standin_images, registry, tmp_path,
                                                                        custom_tag):
    variables = _basic_vars(standin_images, registry, tmp_path, custom_tag, os_distribution="windows")
    run = run_playbook("playbooks/basic.yml", variables)
    assert run.rc != 0
    assert "os_distribution" in run.stdout and "windows" in run.stdout
    assert "Build the provider images" not in run.stdout
    namespace = variables["image_registry"].split("/", 1)[1]
    assert registry.tags("%s/ubuntu" % namespace) == []
    assert not os.path.exists(os.path.join(variables["build_dir"], "byoos-pack.yaml"))


def test_advanced_playbook_needs_the_advanced_inventory(tmp_path):
    run = run_playbook("playbooks/advanced.yml", {"build_dir": str(tmp_path)})
    assert run.rc != 0
    assert "-i inventory/advanced" in run.stdout


def _ca_cert(path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=edgeforge-test-proxy-ca", "-keyout", str(path) + ".key", "-out", str(path)],
                   check=True, capture_output=True)
    return str(path)


PROXY_PASSWORD = "proxy-secret-5150"


def _files_containing(directory, text):
    found = []
    for folder, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                if text.encode() in handle.read():
                    found.append(path)
    return found


def test_advanced_flow_with_login_versions_proxies_and_ca(docker_engine, standin_images, auth_registry, tmp_path,
                                                          custom_tag):
    standin_images.ensure_payload("k3s", "1.26.14")
    namespace = unique()
    variables = dict(standin_images.config_overrides)
    variables.update(
        image_registry="%s/%s" % (auth_registry.host, namespace),
        build_dir=str(tmp_path / "build"),
        user_data_edge_host_token=TOKEN,
        custom_tag=custom_tag,
        http_proxy="http://builder:%s@proxy.edgeforge.invalid:3128" % PROXY_PASSWORD,
        https_proxy="http://builder:%s@proxy.edgeforge.invalid:3128" % PROXY_PASSWORD,
        no_proxy="localhost,127.0.0.1",
        proxy_cert_paths=[_ca_cert(tmp_path / "corp-ca.pem")],
        provider_images_registry=auth_registry.host,
        provider_images_registry_username=auth_registry.username,
        provider_images_registry_password="wrong-" + auth_registry.password,
        installer_iso_iso=False,  # the ISO step is covered by the basic flow test; keeps this test shorter
    )
    wrong = run_playbook("playbooks/advanced.yml", variables, inventory="inventory/advanced")
    assert wrong.rc != 0
    assert "Login to %s as %s was refused: wrong username or password" % (
        auth_registry.host, auth_registry.username) in wrong.stdout
    assert auth_registry.password not in wrong.output
    assert auth_registry.tags("%s/opensuse-leap" % namespace) == []

    variables["provider_images_registry_password"] = auth_registry.password
    right = run_playbook("playbooks/advanced.yml", variables, inventory="inventory/advanced")
    assert right.rc == 0, right.stdout + right.stderr
    assert auth_registry.password not in right.output
    assert PROXY_PASSWORD not in right.output
    assert not _files_containing(variables["build_dir"], PROXY_PASSWORD)
    tags = ["k3s-%s-v4.9.21-%s" % (version, custom_tag) for version in ("1.26.14", "1.27.2")]
    assert auth_registry.tags("%s/opensuse-leap" % namespace) == tags
    values = _manifest(variables["build_dir"])
    assert (values["system.osName"], values["system.osVersion"], values["system.repo"]) == (
        "opensuse-leap", "15.6", "opensuse-leap")
    for version, tag in zip(("1.26.14", "1.27.2"), tags):
        reference = "%s/opensuse-leap:%s" % (variables["image_registry"], tag)
        assert expand_uri(values, version) == reference
        labels = remote_labels(auth_registry, reference)
        assert labels["io.edgeforge.os"] == "opensuse-leap-15.6"
    out = docker_engine.client.containers.run(
        reference, ["sh", "-c", "ls /usr/share/pki/trust/anchors; grep KAIROS_NAME /etc/kairos-release; env"],
        remove=True).decode()
    assert "00-corp-ca.crt" in out
    assert 'KAIROS_NAME="kairos-core-opensuse-leap-15.6"' in out
    assert "proxy.edgeforge.invalid" not in out  # proxies are build args, not baked into the image

    again = run_playbook("playbooks/advanced.yml", variables, inventory="inventory/advanced")
    assert again.rc == 0, again.stdout
    assert again.recap["localhost"]["changed"] == 0, again.stdout


def test_check_mode_says_what_would_happen_and_changes_nothing(docker_engine, standin_images, registry, tmp_path,
                                                               custom_tag):
    # The whole basic.yml, as an AWX "Check" job runs it: the ISO step finds neither the user data nor the installer
    # image (check mode wrote and built neither) and reports the ISO as to be built instead of failing.
    variables = _basic_vars(standin_images, registry, tmp_path, custom_tag)
    run = run_playbook("playbooks/basic.yml", variables, check=True)
    assert run.rc == 0, run.stdout + run.stderr
    assert "(would_build" in run.stdout
    assert "check mode: user_data" in run.output and "reported as to be built" in run.output
    namespace = variables["image_registry"].split("/", 1)[1]
    assert registry.tags("%s/ubuntu" % namespace) == []
    assert docker_engine.client.images.list(name="%s/ubuntu" % variables["image_registry"]) == []
    assert docker_engine.client.images.list(name="palette-installer-image:v4.9.21-%s" % custom_tag) == []
    assert not os.path.exists(variables["build_dir"]) or os.listdir(variables["build_dir"]) in ([], ["logs"])
