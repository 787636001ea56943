"""update_kernel (CONFORMANCE 3.3c, 3.4, 4.3) on a stand-in that records the package manager's calls.

Stand-in: Ubuntu's kernel packages, zypper and yum cannot be installed from the Debian mirror the base stand-in uses.
The base image of these builds is the Debian base stand-in with recording apt-get, apt-mark, dpkg-query, zypper, yum
and dracut (tests/testbed/standins/recipes.py, ``package_recorders``): each records its arguments in the image and
succeeds. The tests build the base stage and one provider image per case and read the calls out of the built image.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.integration.helpers import run_playbook
from tests.integration.test_provider_images import BUILD_TASKS, _result, _run_in, _vars
from tests.integration.registry_checks import write_playbook
from tests.testbed.standins.recipes import PACKAGES_LOG

pytestmark = pytest.mark.integration

SNAPSHOT_LIST = "/etc/apt/sources.list.d/kernel-headers-snapshot.list"


@pytest.fixture(scope="module")
def build_playbook(tmp_path_factory):
    return write_playbook(tmp_path_factory.mktemp("update-kernel-play"), "build.yml", BUILD_TASKS)


def _read_file(client, reference, path):
    """One file of an image, through the engine's archive API (the container is created, never started)."""
    container = client.containers.create(reference, command=["true"])
    try:
        stream, _stat = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return tar.extractfile(tar.getmembers()[0]).read().decode()
    finally:
        container.remove(force=True)


def _build(docker_engine, standin_images, build_playbook, tmp_path, **options):
    """Build one k3s provider image on the recording stand-in; its recorded calls and its newest kernel."""
    options.setdefault("k8s_version", "1.27.2")
    variables = _vars(standin_images, tmp_path, base_image=standin_images.ensure_package_recorder(), **options)
    run = run_playbook(build_playbook, variables)
    assert run.rc == 0, run.stdout + run.stderr
    reference = _result(tmp_path)["images"][0]["reference"]
    client = docker_engine.client
    calls = _read_file(client, reference, PACKAGES_LOG).splitlines()
    state = _run_in(client, reference, "ls /lib/modules | sort -V | tail -n 1; test -e %s && echo list-left; "
                    "ls -A /tmp | wc -l" % SNAPSHOT_LIST).split()
    return calls, state[0], state[1:]


def _apt(calls):
    return [call for call in calls if call.startswith(("apt-get ", "apt-mark "))]


@pytest.mark.parametrize("update_kernel", [False, True])
def test_ubuntu_holds_the_kernel_or_installs_the_hwe_kernel(docker_engine, standin_images, build_playbook,
                                                            tmp_path, update_kernel):
    calls, kver, left = _build(docker_engine, standin_images, build_playbook, tmp_path, os_version="22.04",
                               update_kernel=update_kernel)
    apt = _apt(calls)
    hwe = "apt-get install -y linux-image-generic-hwe-22.04"
    holds = [call for call in apt if call.startswith("apt-mark hold")]
    headers = [call for call in apt if "linux-headers-%s" % kver in call]
    if update_kernel:
        # 3.3c: no hold; the HWE kernel, then an upgrade that may install new packages (a newer kernel)
        assert not holds
        assert apt[apt.index(hwe) + 1] == "apt-get upgrade -y --with-new-pkgs"
        # 4.3: the headers of the newest kernel in the provider image (k3s: only because of update_kernel)
        assert headers == ["apt-get install -y --no-install-recommends linux-headers-%s" % kver]
        assert left == ["0"]  # 4.2 check: no kernel-headers-snapshot.list; 4.1: nothing of the step in /tmp
    else:
        # 3.3c: every Ubuntu kernel metapackage dpkg knows is held; the plain upgrade
        assert holds == ["apt-mark hold %s" % name for name in (
            "linux-image-generic-hwe-22.04", "linux-headers-generic-hwe-22.04", "linux-generic-hwe-22.04",
            "linux-image-generic", "linux-headers-generic", "linux-generic")]
        assert hwe not in apt and "apt-get upgrade -y" in apt and not headers
        assert not any("--with-new-pkgs" in call for call in apt)


def test_opensuse_update_kernel_drops_the_lock_and_installs_kernel_devel(docker_engine, standin_images,
                                                                         build_playbook, tmp_path):
    calls, kver, _left = _build(docker_engine, standin_images, build_playbook, tmp_path,
                                os_distribution="opensuse-leap", os_version="15.6", update_kernel=True)
    zypper = [call for call in calls if call.startswith("zypper ")]
    assert not any("addlock" in call for call in zypper)  # 3.4: no kernel lock
    assert "zypper --non-interactive update -y" in zypper
    # 4.3: the running kernel's development package (its version without -default) in the provider image
    version = kver[:-len("-default")] if kver.endswith("-default") else kver
    assert "zypper --non-interactive install --no-recommends kernel-default-devel-%s" % version in zypper
    assert not _apt(calls)


def test_rhel_update_kernel_installs_kernel_devel(docker_engine, standin_images, build_playbook, tmp_path):
    calls, kver, _left = _build(docker_engine, standin_images, build_playbook, tmp_path, os_distribution="rhel",
                                os_version="9.4", update_kernel=True)
    yum = [call for call in calls if call.startswith("yum ")]
    assert "yum install -y openssl rsyslog logrotate" in yum  # 3.6
    assert "yum install -y kernel-devel-%s" % kver in yum  # 4.3
    assert not any("epel" in call.lower() for call in yum)  # docs/conformance.md 4.3
