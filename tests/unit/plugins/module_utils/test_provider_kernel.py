"""update_kernel (CONFORMANCE 3.3c, 3.4, 4.3) and the kernel headers step (4.2): the generated shell text.

The headers script is run for real with /bin/sh against a directory tree standing for the image, with recording
stand-ins for apt-get, apt-cache and dpkg-query on PATH (the package managers of another distribution).
"""

import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import kernel, steps

KVER = "6.8.0-60-generic"


def _config(**options):
    options.setdefault("k8s_version", ["1.27.2"])
    return BuildConfig.from_options(options).plan()["config"]


def test_ubuntu_holds_the_kernel_metapackages_unless_update_kernel():
    held = steps.base_stage_script(_config(os_version="22.04"))
    assert 'apt-mark hold "$pkg"' in held and "linux-image-generic-hwe-22.04 " in held
    assert "apt-get upgrade -y\n" in held and "--with-new-pkgs" not in held
    updated = steps.base_stage_script(_config(os_version="22.04", update_kernel=True))
    assert "apt-mark hold" not in updated
    lines = updated.splitlines()
    install = lines.index("apt-get install -y linux-image-generic-hwe-22.04")
    # CanvOS's order: tools, then the HWE kernel, then the upgrade that may install new packages (3.3b-d)
    assert lines.index("apt-get install -y --no-install-recommends %s" % steps.UBUNTU_TOOLS) < install
    assert lines[install + 1] == "apt-get upgrade -y --with-new-pkgs"


def test_ubuntu_hwe_kernel_is_named_with_the_long_release():
    # CanvOS's OS_VERSION=22 would name linux-image-generic-hwe-22, which does not exist (3.3c)
    script = steps.base_stage_script(_config(os_version="20", update_kernel=True))
    assert "apt-get install -y linux-image-generic-hwe-20.04\n" in script


def test_opensuse_locks_kernel_packages_unless_update_kernel():
    locked = steps.base_stage_script(_config(os_distribution="opensuse-leap"))
    assert "zypper --non-interactive addlock 'kernel-de*'" in locked
    free = steps.base_stage_script(_config(os_distribution="opensuse-leap", update_kernel=True))
    assert "addlock" not in free and "zypper --non-interactive update -y" in free


def test_update_kernel_with_fips_stays_refused():
    config = dict(_config(), update_kernel=True, fips_enabled=True)
    with pytest.raises(ValidationError) as err:
        steps.refuse_unsupported(config)
    assert err.value.param == "update_kernel" and "fips_enabled" in str(err.value)
    steps.refuse_unsupported(_config(update_kernel=True))  # alone: honoured


@pytest.mark.parametrize("options,expected", [
    ({"k8s_distribution": "kubeadm"}, True),                       # 4.2
    ({"k8s_distribution": "kubeadm-fips", "fips_enabled": True, "base_image": "r.example/f:1"}, False),
    ({"k8s_distribution": "nodeadm", "k8s_version": ["1.30.0"]}, False),
    ({}, False),                                                    # k3s
    ({"update_kernel": True}, True),                                # 4.3, any k8s distribution
    ({"update_kernel": True, "arch": "arm64"}, False),
    ({"update_kernel": True, "os_distribution": "opensuse-leap"}, True),
    ({"update_kernel": True, "os_distribution": "rhel", "os_version": "9.4", "base_image": "r.example/r:9"}, True),
    ({"os_distribution": "opensuse-leap"}, False),
])
def test_which_provider_images_get_the_headers_step(options, expected):
    assert kernel.needs_headers(_config(**options)) is expected


def test_provider_dockerfile_runs_the_headers_step_before_the_payload():
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import images
    config = _config(update_kernel=True)
    build = BuildConfig.from_options({"k8s_version": ["1.27.2"], "update_kernel": True}).plan()["builds"][0]
    base = images.base_stage_context(config, "sha256:base")
    ctx = images.provider_context(config, build, base, {})
    lines = ctx.dockerfile.splitlines()
    assert lines.index("RUN sh /tmp/edgeforge-kernel-headers.sh && rm -f /tmp/edgeforge-kernel-headers.sh") \
        < lines.index("COPY --from=payload /out/ /")
    assert ctx.files["edgeforge-kernel-headers.sh"].decode() == kernel.headers_script(config)


def test_suse_and_rhel_development_packages():
    suse = kernel.headers_script(_config(os_distribution="opensuse-leap", update_kernel=True))
    assert 'version=${kver%-default}' in suse
    assert 'zypper --non-interactive install --no-recommends "kernel-default-devel-$version"' in suse
    assert "install --no-recommends kernel-devel" in suse and "set -e" not in suse
    rhel = kernel.headers_script(_config(os_distribution="rhel", os_version="9.4", base_image="r.example/r:9",
                                         update_kernel=True))
    assert 'yum install -y "kernel-devel-$kver"' in rhel and "yum install -y kernel-devel" in rhel
    assert "epel" not in rhel.lower() and "ubi-8" not in rhel  # docs/conformance.md 4.3


STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
if [ -f "$SNAPSHOT_LIST" ]; then sed 's/^/  list: /' "$SNAPSHOT_LIST" >> "$STUB_LOG"; fi
while IFS= read -r pattern; do
  case "$(basename "$0") $*" in $pattern) exit 100 ;; esac
done < "$STUB_FAIL"
case "$(basename "$0") $*" in
  "dpkg-query -W -f=\\${Version} linux-image-%s") printf '6.8.0-60.63' ;;
  "apt-cache search"*) echo "linux-headers-6.8.0-58-generic - headers" ;;
esac
exit 0
""" % KVER


def _run_headers(tmp_path, fail=(), codename="noble", headers_present=False):
    root = tmp_path / "img"
    (root / "lib" / "modules" / KVER).mkdir(parents=True)
    (root / "lib" / "modules" / "6.8.0-31-generic").mkdir(parents=True)
    (root / "etc" / "apt" / "sources.list.d").mkdir(parents=True)
    (root / "var" / "lib" / "apt" / "lists").mkdir(parents=True)
    (root / "var" / "lib" / "apt" / "lists" / "some_Packages").write_text("x")
    (root / "usr" / "src").mkdir(parents=True)
    if headers_present:
        (root / "usr" / "src" / ("linux-headers-" + KVER)).mkdir()
    (root / "etc" / "os-release").write_text('NAME="Ubuntu"\nVERSION_CODENAME=%s\n' % codename)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("apt-get", "apt-cache", "dpkg-query"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    script = kernel.headers_script(_config(k8s_distribution="kubeadm"))
    for path in ("/lib/modules", "/usr/src", "/etc/apt", "/var/lib/apt", "/etc/os-release"):
        script = script.replace(path, str(root) + path)
    (tmp_path / "h.sh").write_text(script)
    log = tmp_path / "calls.log"
    (tmp_path / "fail").write_text("".join(pattern + "\n" for pattern in fail))
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), STUB_LOG=str(log),
               STUB_FAIL=str(tmp_path / "fail"), SNAPSHOT_LIST=str(root) + kernel.SNAPSHOT_LIST)
    run = subprocess.run(["sh", str(tmp_path / "h.sh")], env=env, capture_output=True, text=True, check=False)
    calls = log.read_text().splitlines() if log.exists() else []
    return run, calls, root


def test_headers_from_the_live_mirror_first(tmp_path):
    run, calls, root = _run_headers(tmp_path)
    assert run.returncode == 0
    assert calls == ["apt-get update", "apt-get install -y --no-install-recommends linux-headers-%s" % KVER]
    assert not os.listdir(root / "var" / "lib" / "apt" / "lists")


def test_headers_already_there_install_nothing(tmp_path):
    run, calls, _root = _run_headers(tmp_path, headers_present=True)
    assert run.returncode == 0 and calls == []


def test_every_snapshot_tried_then_the_closest_headers(tmp_path):
    # the live mirror has rotated the ABI out and no snapshot answers: the closest headers of the kernel line
    fail = ["apt-get install -y --no-install-recommends linux-headers-%s*" % KVER,
            "apt-get -o Acquire::Check-Valid-Until=false update"]
    run, calls, root = _run_headers(tmp_path, fail=fail)
    assert run.returncode == 0, run.stderr
    updates = [call for call in calls if call.startswith("apt-get -o Acquire")]
    assert updates  # every snapshot's update failed in this run: the script went on to the fallbacks
    assert calls[calls.index(updates[0]) + 1].startswith("  list: deb https://snapshot.ubuntu.com/ubuntu/")
    listed = [call for call in calls if call.startswith("  list: ")][:3]
    assert [line.rsplit(" ", 2)[-2] for line in listed] == ["noble", "noble-updates", "noble-security"]
    assert len(updates) == 1 + len(kernel.SNAPSHOT_DAYS_BACK)  # the kernel's own time, then 7/21/60/120 days back
    assert calls[-1] == "apt-get install -y --no-install-recommends linux-headers-6.8.0-58-generic"  # closest
    assert "installed linux-headers-6.8.0-58-generic instead" in run.stdout
    assert not (root / "etc" / "apt" / "sources.list.d" / "kernel-headers-snapshot.list").exists()


def test_pinned_snapshot_install(tmp_path):
    fail = ["apt-get install -y --no-install-recommends linux-headers-%s" % KVER]
    run, calls, root = _run_headers(tmp_path, fail=fail)
    assert run.returncode == 0
    # the kernel's own time (its modules directory's) is the first snapshot tried, and it has the headers
    assert calls[-4] == "apt-get install -y --no-install-recommends linux-headers-%s=6.8.0-60.63" % KVER
    assert calls[-3].startswith("  list: deb https://snapshot.ubuntu.com/ubuntu/20")
    assert len([call for call in calls if call.startswith("apt-get -o Acquire")]) == 1
    assert not (root / "etc" / "apt" / "sources.list.d" / "kernel-headers-snapshot.list").exists()
    assert not os.listdir(root / "var" / "lib" / "apt" / "lists")


def test_no_headers_at_all_is_a_warning_not_a_failure(tmp_path):
    run, calls, root = _run_headers(tmp_path, fail=["apt-get install*", "apt-get update"], codename="")
    assert run.returncode == 0
    assert "WARNING: no kernel headers for %s could be installed" % KVER in run.stdout
    assert not any("Acquire" in call for call in calls)  # no codename: no snapshot archive
    assert not (root / "etc" / "apt" / "sources.list.d" / "kernel-headers-snapshot.list").exists()
