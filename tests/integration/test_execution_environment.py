"""execution-environment.yml, checked with `ansible-builder create` (no RPM base image can be pulled here, so the
image itself is not built): a current RPM-based base, the collection installed from the checkout, the tools the
modules call under the names their scripts use, and no Docker daemon."""

from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest
import yaml

from tests.integration.helpers import REPO_ROOT, ansible_bin

pytestmark = pytest.mark.integration

# Tools the modules run and the RPM packages (CentOS Stream 9 BaseOS/AppStream) that hold them.
RPM_TOOLS = {"xorriso": "xorriso", "mksquashfs": "squashfs-tools", "mcopy": "mtools", "mkfs.vfat": "dosfstools",
             "mkfs.ext4": "e2fsprogs", "sfdisk": "util-linux", "qemu-img": "qemu-img", "zstd": "zstd",
             "grub2-mkimage": "grub2-tools", "grub2-mkstandalone": "grub2-tools-extra",
             "x86_64-efi modules": "grub2-efi-x64-modules", "i386-pc modules": "grub2-pc-modules"}
DAEMONS = {"docker", "docker-ce", "moby-engine", "podman", "containerd"}


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
