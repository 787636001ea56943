"""execution-environment.yml, checked with `ansible-builder create` (no RPM base image can be pulled here, so the
image itself is not built): a current RPM-based base, the collection installed from the checkout, the tools the
modules call under the names their scripts use, and no Docker daemon."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.integration.helpers import REPO_ROOT, ansible_bin
from tests.integration.registry_checks import unique

pytestmark = pytest.mark.integration

# Tools the modules run and the RPM packages (CentOS Stream 9 BaseOS/AppStream) that hold them.
RPM_TOOLS = {"xorriso": "xorriso", "mksquashfs": "squashfs-tools", "mcopy": "mtools", "mkfs.vfat": "dosfstools",
             "mkfs.ext4": "e2fsprogs", "sfdisk": "util-linux", "qemu-img": "qemu-img", "zstd": "zstd",
             "grub2-mkimage": "grub2-tools", "grub2-mkstandalone": "grub2-tools-extra",
             "x86_64-efi modules": "grub2-efi-x64-modules", "i386-pc modules": "grub2-pc-modules",
             "openssl": "openssl"}
DAEMONS = {"docker", "docker-ce", "moby-engine", "podman", "containerd"}
TOKEN = "edgeforgetesttoken0123456789abcd"


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    path = tmp_path_factory.mktemp("ee") / "context"
    run = subprocess.run([ansible_bin("ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(path)],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return path


def rpm_packages(bindep_text):
    """Packages bindep installs on an RPM platform with no profile selected (what ansible-builder does)."""
    names = set()
    for line in bindep_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _sep, selector = line.partition("[")
        words = selector.rstrip("]").split()
        platforms = [word for word in words if word.startswith("platform:")]
        profiles = [word for word in words if not word.startswith("platform:") and not word.startswith("!")]
        if profiles or (platforms and "platform:rpm" not in platforms):
            continue
        names.add(name.strip().split()[0])
    return names


def test_base_image_is_a_current_rpm_distribution():
    with open(os.path.join(REPO_ROOT, "execution-environment.yml"), encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"] in ("quay.io/centos/centos:stream9",
                                                          "quay.io/centos/centos:stream10")
    assert definition["options"]["package_manager_path"] == "/usr/bin/dnf"


def test_tools_are_installed_and_no_daemon(context):
    packages = rpm_packages((context / "_build" / "bindep.txt").read_text(encoding="utf-8"))
    missing = {tool: package for tool, package in RPM_TOOLS.items() if package not in packages}
    assert not missing, missing
    assert not packages & DAEMONS, packages & DAEMONS


def test_grub_tools_answer_to_the_names_the_scripts_use(context):
    used = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "plugins", "module_utils", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            used.update(re.findall(r"\bgrub-(mk[a-z]+|bios-setup)\b", handle.read()))
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    links = re.search(r"for tool in ([a-z -]+); do\s+ln -sf /usr/bin/grub2-\$tool /usr/bin/grub-\$tool", dockerfile)
    assert links, dockerfile
    assert used and used <= set(links.group(1).split()), used


def test_the_collection_is_installed_from_the_checkout(context):
    source = context / "_build" / "edgeforge-artifacts"
    for path in ("galaxy.yml", "LICENSE", "meta/runtime.yml", "plugins/modules/installer_iso.py",
                 "roles/provider_images/tasks/main.yml", "playbooks/basic.yml", "playbooks/vars/basic.yml",
                 "files/builder/Dockerfile"):
        assert (source / path).is_file(), path
    assert not (source / "tests").exists()
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install --offline -p /usr/share/ansible/collections /tmp/edgeforge-artifacts" \
        in dockerfile


# ------------------------------------------------------------------------------ a job run inside an EE stand-in
# OFFLINE STAND-IN of the execution environment: no RPM base image can be pulled here, so the same content
# (Python, ansible-core, ansible-runner, requirements.txt, the disk tools, the collection from the checkout) is put
# on the test bed's Debian base, with Debian's package names. Only the base distribution differs from the EE.
EE_STANDIN_BASE = """\
# edgeforge.artifacts execution environment: OFFLINE STAND-IN built from Debian packages (test only)
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates xorriso \\
    squashfs-tools mtools dosfstools e2fsprogs fdisk grub-pc-bin grub-efi-amd64-bin grub-common zstd qemu-utils openssl \\
 && rm -rf /var/lib/apt/lists/*
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/ee && /opt/ee/bin/pip install --no-index --find-links /tmp/wheels {requirements} \\
 && rm -rf /tmp/wheels
ENV PATH=/opt/ee/bin:$PATH
LABEL io.edgeforge.role="execution-environment-standin"
WORKDIR /runner
"""
EE_STANDIN_FINAL = """\
FROM {base}
COPY edgeforge-artifacts.tar.gz /tmp/
RUN ansible-galaxy collection install --offline -p /usr/share/ansible/collections /tmp/edgeforge-artifacts.tar.gz \\
 && rm /tmp/edgeforge-artifacts.tar.gz
"""


def _requirements():
    """The host's versions of what the EE installs (ansible-core, ansible-runner and requirements.txt)."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    pins = ["ansible-core==%s" % metadata.version("ansible-core"), "ansible-runner"]
    with open(os.path.join(REPO_ROOT, "requirements.txt"), encoding="utf-8") as handle:
        pins += [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    return pins


def _build(client, context, tag):
    for event in client.api.build(path=str(context), tag=tag, rm=True, forcerm=True, decode=True):
        if "error" in event:
            raise AssertionError("EE stand-in build failed: %s" % event["error"])


def ee_standin(client, work):
    """Build (or reuse) the stand-in's base, then add the collection from the checkout: returns the image tag."""
    import hashlib  # pylint: disable=import-outside-toplevel

    import docker  # pylint: disable=import-outside-toplevel

    pins = _requirements()
    dockerfile = EE_STANDIN_BASE.format(requirements=" ".join("'%s'" % pin for pin in pins))
    base = "edgeforge-testbed/ee-standin:%s" % hashlib.sha256(dockerfile.encode("utf-8")).hexdigest()[:16]
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        context = work / "base"
        (context / "wheels").mkdir(parents=True)
        (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        download = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d",
                                   str(context / "wheels")] + pins, capture_output=True, text=True, check=False)
        assert download.returncode == 0, download.stderr
        _build(client, context, base)
    context = work / "final"
    context.mkdir(parents=True)
    build = subprocess.run([ansible_bin("ansible-galaxy"), "collection", "build", "--output-path", str(context)],
                           cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    os.rename(glob.glob(str(context / "edgeforge-artifacts-*.tar.gz"))[0], context / "edgeforge-artifacts.tar.gz")
    (context / "Dockerfile").write_text(EE_STANDIN_FINAL.format(base=base), encoding="utf-8")
    tag = "edgeforge-test-ee:%s" % unique("run")
    _build(client, context, tag)
    return tag


def runner_dir(path, playbook, extra_vars):
    """An ansible-runner private data directory, as AWX prepares one for a job template."""
    (path / "project").mkdir(parents=True)
    (path / "inventory").mkdir()
    (path / "env").mkdir()
    (path / "project" / "site.yml").write_text(
        "---\n- name: The job template's playbook\n  ansible.builtin.import_playbook: %s\n" % playbook,
        encoding="utf-8")
    (path / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter=/opt/ee/bin/python3\n", encoding="utf-8")
    (path / "env" / "extravars").write_text(json.dumps(extra_vars), encoding="utf-8")
    os.chmod(path / "env" / "extravars", 0o600)
    return path


def job_artifacts(path):
    """The set_stats data of the job (what AWX stores as the job's artifacts), from ansible-runner's events."""
    for name in glob.glob(str(path / "artifacts" / "*" / "job_events" / "*.json")):
        with open(name, encoding="utf-8") as handle:
            event = json.load(handle)
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data") or {}
    return None


def test_basic_flow_runs_inside_the_ee_standin_like_an_awx_job(docker_engine, standin_images, registry, tmp_path):
    client = docker_engine.client
    image = ee_standin(client, tmp_path / "ee")
    build_dir = tmp_path / "job-build"  # mounted at the same path: containers the job starts on the host see it
    build_dir.mkdir()
    namespace = unique()
    variables = dict(standin_images.config_overrides, image_registry="%s/%s" % (registry.host, namespace),
                     custom_tag=unique("ee"), build_dir=str(build_dir), user_data_edge_host_token=TOKEN)
    private = runner_dir(tmp_path / "runner", "edgeforge.artifacts.basic", variables)
    socket = docker_engine.base_url.replace("unix://", "")
    container = client.containers.run(
        image, ["ansible-runner", "run", "/runner", "-p", "site.yml"], network_mode="host", detach=True,
        volumes={str(private): {"bind": "/runner", "mode": "rw"}, socket: {"bind": socket, "mode": "rw"},
                 str(build_dir): {"bind": str(build_dir), "mode": "rw"}},
        environment={"DOCKER_HOST": docker_engine.base_url})
    try:
        status = container.wait(timeout=1800)["StatusCode"]
        logs = container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)
        client.images.remove(image, force=True)
    assert status == 0, logs[-6000:]
    assert TOKEN not in logs
    tag = "k3s-1.27.2-v4.9.21-%s" % variables["custom_tag"]
    assert registry.tags("%s/ubuntu" % namespace) == [tag]
    record = job_artifacts(private)["edgeforge_build"]
    iso = build_dir / "palette-edge-installer.iso"
    assert record["iso"]["path"] == str(iso) and iso.is_file()
    assert record["provider_images"][0]["reference"] == "%s/ubuntu:%s" % (variables["image_registry"], tag)
