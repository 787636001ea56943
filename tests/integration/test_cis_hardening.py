"""cis_hardening on the Ubuntu stand-in (CONFORMANCE 3.3j, 3.11): real apt against the Debian mirror the stand-in uses.

The stand-in base is built from Debian bookworm packages; a real Kairos Ubuntu core image carries OpenSSH, sudo and
``/etc/cos/grub.cfg`` and has no account with an empty password, so the test's Dockerfile customisation adds those
(the stand-in empties root's password for its serial-console boot checks). Everything else comes from the build.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import unique, write_playbook
from tests.integration.test_provider_images import BUILD_TASKS, ImageTree

pytestmark = pytest.mark.integration

KAIROS_LIKE = ("RUN apt-get update && apt-get install -y --no-install-recommends openssh-server sudo "
               "&& rm -rf /var/lib/apt/lists/* && printf 'set timeout=5\\n' > /etc/cos/grub.cfg")
CIS_PACKAGES = ("auditd", "apparmor", "apparmor-utils", "libpam-pwquality", "aide", "vlock")


def _variables(standin_images, build_dir, customisation):
    data = dict(standin_images.config_overrides)
    data.update(image_registry="%s/%s" % (standin_images.registry.host, unique()), custom_tag="cis",
                test_build_dir=str(build_dir), k8s_version="1.27.2", cis_hardening=True,
                # a line of its own per run: the base stage is built by this test, never reused from another run
                test_dockerfile_content="%s\n%s\nRUN echo %s > /etc/edgeforge-test-run" % (
                    KAIROS_LIKE, customisation, unique()))
    return data


def _remove_own_images(client, build_dir):
    """The images this run built (provider image, base stage), as its result names them; a failed build has none."""
    import json  # pylint: disable=import-outside-toplevel

    path = os.path.join(str(build_dir), "result.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    for name in [image["reference"] for image in result["images"]] + [result["base_stage"]["reference"]]:
        try:
            client.images.remove(name, force=True)
        except Exception:  # pylint: disable=broad-except
            pass  # already gone


def _installed(status, package):
    for block in status.split("\n\n"):
        if ("\n" + block).find("\nPackage: %s\n" % package) >= 0:
            return "\nStatus: install ok installed" in "\n" + block
    return False


@pytest.fixture(scope="module")
def hardened(docker_engine, standin_images, tmp_path_factory):
    work = tmp_path_factory.mktemp("cis")
    playbook = write_playbook(work, "build.yml", BUILD_TASKS)
    variables = _variables(standin_images, work, "RUN passwd -l root")
    client = docker_engine.client
    try:
        run = run_playbook(playbook, variables)
        assert run.rc == 0, run.stdout + run.stderr
        reference = "%s/ubuntu:k3s-1.27.2-v4.9.21-cis" % variables["image_registry"]
        base_release = client.containers.run(standin_images.base_image_tag, ["cat", "/etc/os-release"],
                                             remove=True).decode()
        yield {"tree": ImageTree(client, reference, work), "base_release": base_release}
    finally:
        _remove_own_images(client, work)


def test_cis_packages_services_and_units(hardened):
    tree = hardened["tree"]
    status = tree.read("/var/lib/dpkg/status").decode()
    for package in CIS_PACKAGES:
        assert _installed(status, package), package
    for package in ("vim", "vim-runtime", "telnet"):  # vim of 3.3b is purged
        assert not _installed(status, package), package
    for unit in ("ctrl-alt-del.target", "apport.service", "rpcbind.service", "rpcbind.socket"):
        member = tree.member("/etc/systemd/system/%s" % unit)
        assert member.issym() and member.linkname == "/dev/null", unit
    assert tree.member("/etc/systemd/system/multi-user.target.wants/auditd.service").issym()
    assert tree.glob("/var/lib/apt/lists/") in ([], ["var/lib/apt/lists"])
    # the hardening ran inside the base stage script, which is gone with /tmp; os-release is the base's
    assert tree.glob("/tmp/") in ([], ["tmp"])
    assert tree.read("/usr/lib/os-release").decode() == hardened["base_release"]
    assert tree.member("/etc/os-release").issym()


def test_cis_kernel_ssh_sudo_and_profile_settings(hardened):
    tree = hardened["tree"]
    sysctl = tree.read("/etc/sysctl.conf").decode().splitlines()
    for line in ("net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.all.rp_filter=0",
                 "net.ipv4.conf.default.rp_filter=1", "net.ipv4.tcp_syncookies=1", "kernel.randomize_va_space=2",
                 "net.ipv6.conf.all.accept_ra=0", "kernel.yama.ptrace_scope=1", "kernel.kptr_restrict=2"):
        assert line in sysctl, line
    assert not [line for line in sysctl if line.startswith("net.ipv4.ip_forward")]  # forwarding untouched
    assert "* hard core 0" in tree.read("/etc/security/limits.conf").decode().splitlines()
    assert "Storage=none" in tree.read("/etc/systemd/coredump.conf.d/disable-coredump.conf").decode()
    sshd = tree.read("/etc/ssh/sshd_config").decode().splitlines()
    assert "#X11Forwarding yes" in sshd  # Debian's prior value, commented
    for line in ("X11Forwarding no", "PermitRootLogin no", "MaxAuthTries 4", "ClientAliveInterval 300",
                 "Banner /etc/issue.net", "AllowTcpForwarding no", "DisableForwarding yes",
                 "PubkeyAuthentication yes", "PermitEmptyPasswords no", "LoginGraceTime 60"):
        assert sshd.count(line) == 1, line
    assert tree.mode("/etc/ssh/sshd_config") == 0o600
    assert tree.read("/etc/profile.d/timeout.sh") == b"TMOUT=900\n"
    assert tree.read("/etc/profile.d/umask.sh") == b"umask 027\n"
    profile = tree.read("/etc/profile").decode()
    assert "readonly TMOUT=900 ; export TMOUT" in profile and "\numask 027\n" in profile
    for name in ("10-cis-pty", "10-cis-logfile", "10-cis-password"):
        assert tree.mode("/etc/sudoers.d/%s" % name) == 0o440, name
    sudoers = tree.read("/etc/sudoers").decode().splitlines()
    assert "Defaults use_pty" in sudoers and "Defaults logfile=/var/log/sudo.log" in sudoers


def test_cis_audit_boot_and_file_modes(hardened):
    tree = hardened["tree"]
    rules = {name.rsplit("/", 1)[1] for name in tree.glob("/etc/audit/rules.d/") if name.endswith(".rules")}
    for name in ("audit.rules", "50-time-change.rules", "50-identity.rules", "50-access.rules", "50-delete.rules",
                 "50-mounts.rules", "50-scope.rules", "50-actions.rules", "50-modules.rules", "50-system-locale.rules",
                 "50-MAC-policy.rules", "50-logins.rules", "50-perm_mod.rules", "50-session.rules",
                 "99-finalize.rules"):
        assert name in rules and tree.mode("/etc/audit/rules.d/" + name) == 0o640, name
    assert tree.read("/etc/audit/rules.d/99-finalize.rules") == b"-e 2\n"
    auditd = tree.read("/etc/audit/auditd.conf").decode().splitlines()
    for line in ("max_log_file = 100", "max_log_file_action = ROTATE", "num_logs = 10",
                 "admin_space_left_action = ROTATE", "disk_full_action = ROTATE"):
        assert line in auditd, line
    assert 'set baseExtraArgs="audit=1"' in tree.read("/etc/cos/bootargs.cfg").decode()
    assert tree.mode("/etc/cos/grub.cfg") == 0o400
    for path, mode in (("/etc/shadow", 0o640), ("/etc/gshadow", 0o000), ("/etc/passwd", 0o644),
                       ("/etc/group", 0o644), ("/etc/cron.allow", 0o640), ("/etc/at.allow", 0o640)):
        assert tree.mode(path) == mode, path
    for path in ("/etc/issue", "/etc/issue.net"):
        assert "All activity on this system may be monitored" in tree.read(path).decode(), path
    assert "/etc/motd" not in tree and "/etc/cron.deny" not in tree


def test_cis_modules_logs_and_authentication(hardened):
    tree = hardened["tree"]
    for module in ("dccp", "sctp", "rds", "tipc", "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus"):
        assert "install %s /bin/" % module in tree.read("/etc/modprobe.d/%s.conf" % module).decode(), module
    assert "/etc/modprobe.d/squashfs.conf" not in tree and "/etc/modprobe.d/udf.conf" not in tree
    journald = tree.read("/etc/systemd/journald.conf").decode().splitlines()
    assert "Compress=yes" in journald and "ForwardToSyslog=no" in journald
    assert "create 0640 root utmp" in tree.read("/etc/logrotate.conf").decode().splitlines()
    assert tree.read("/etc/pam.d/su").decode().startswith("auth required pam_wheel.so use_uid group=sudo\n")
    auth = [line for line in tree.read("/etc/pam.d/common-auth").decode().splitlines() if line.startswith("auth")]
    assert "pam_faillock.so preauth" in auth[0] and "pam_unix.so" in auth[1] and "authfail" in auth[2]
    assert "pam_faillock.so" in tree.read("/etc/pam.d/common-account").decode()
    password = tree.read("/etc/pam.d/common-password").decode()
    assert "pam_pwquality.so retry=3" in password and "remember=5" in password
    pwquality = tree.read("/etc/security/pwquality.conf").decode().splitlines()
    for line in ("minlen = 14", "minclass = 4", "difok = 2", "dictcheck = 0", "maxrepeat = 3"):
        assert line in pwquality, line
    defs = tree.read("/etc/login.defs").decode().splitlines()
    for line in ("PASS_MIN_DAYS 1", "PASS_MAX_DAYS 365", "PASS_WARN_AGE 7", "ENCRYPT_METHOD yescrypt"):
        assert line in defs, line
    assert "INACTIVE=30" in tree.read("/etc/default/useradd").decode().splitlines()


def test_an_empty_password_aborts_the_build(docker_engine, standin_images, tmp_path):
    playbook = write_playbook(tmp_path, "build.yml", BUILD_TASKS)
    variables = _variables(standin_images, tmp_path, "RUN passwd -l root && useradd -m cisnopw && passwd -d cisnopw")
    # The account check comes before any hardening step: the base with recording package managers (a labelled
    # stand-in, see test_update_kernel.py) reaches it in seconds instead of running the apt steps for real.
    variables["base_image"] = standin_images.ensure_package_recorder()
    try:
        run = run_playbook(playbook, variables)
        assert run.rc != 0
        assert "CIS hardening: these users have an empty password: cisnopw" in run.stdout
        reference = "%s/ubuntu" % variables["image_registry"]
        assert docker_engine.client.images.list(name=reference) == []
    finally:
        _remove_own_images(docker_engine.client, tmp_path)
