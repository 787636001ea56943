"""The CIS hardening lines of the base stage (CONFORMANCE 3.3j, 3.11): generated text, and its file edits run on
copies of Ubuntu-shaped files in a temporary directory (the package and systemctl steps run in the integration test)."""

import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import cis, cis_rules, steps


def _config(**options):
    options.setdefault("k8s_version", ["1.27.2"])
    return BuildConfig.from_options(options).plan()["config"]


def _run(tmp_path, lines, files):
    """Run ``lines`` (with the helpers) with every absolute path of ``files`` moved under ``tmp_path``."""
    script = "\n".join(steps.HEADER + cis.HELPERS + lines)
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        script = script.replace(" %s" % path, " %s" % target).replace("=%s" % path, "=%s" % target)
    script = script.replace("/tmp/edgeforge-cis.tmp", str(tmp_path / "cis.tmp"))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_cis_runs_after_dracut_and_before_the_release_and_cleanup_steps():
    script = steps.base_stage_script(_config(cis_hardening=True))
    order = [script.index(marker) for marker in ('dracut -f "/boot/initrd-$kver"', "grub2-editenv", "# 3.3j / 3.11",
                                                 "say 'CIS hardening done'", "# 3.7 kairos-release",
                                                 "find /tmp -mindepth 1 -delete")]
    assert order == sorted(order)
    # the script lives in /tmp and goes with the cleanup (3.8); os-release saved before and restored after
    assert script.index("cat /etc/os-release > /tmp/edgeforge-cis-os-release") < script.index(
        "--no-install-recommends auditd")
    assert script.index("cat /tmp/edgeforge-cis-os-release > /etc/os-release") > script.index("pam_wheel.so")
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0


def test_no_cis_lines_unless_asked_on_ubuntu_amd64():
    assert "CIS" not in steps.base_stage_script(_config())
    assert cis.cis_steps({"cis_hardening": True, "os_distribution": "ubuntu", "arch": "arm64"}) == []
    assert cis.cis_steps({"cis_hardening": True, "os_distribution": "sles", "arch": "amd64"}) == []
    steps.refuse_unsupported(_config(cis_hardening=True))  # accepted now
    with pytest.raises(ValidationError) as err:
        _config(cis_hardening=True, arch="arm64")
    assert err.value.param == "cis_hardening"


def test_packages_and_services():
    script = "\n".join(cis.cis_steps(_config(cis_hardening=True)))
    assert ("apt-get install -y --no-install-recommends auditd apparmor apparmor-utils libpam-pwquality aide "
            "aide-common vlock") in script
    assert "purge=$(installed_of telnet vim vim-common vim-runtime vim-tiny)" in script
    assert "aideinit" not in script.replace("aideinit is left", "")
    for unit in ("ctrl-alt-del.target", "apport.service", "rpcbind.service", "rpcbind.socket"):
        assert unit in script
    assert "systemctl enable auditd" in script and "rm -rf /var/lib/apt/lists/*" in script


def test_account_checks_abort_with_a_message(tmp_path):
    passwd = "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\n"
    done = _run(tmp_path, cis.account_checks(), {"/etc/passwd": passwd,
                                                 "/etc/shadow": "root:!:1::::::\nbob::1::::::\n"})
    assert done.returncode == 5 and "these users have an empty password: bob" in done.stderr
    done = _run(tmp_path / "uid", cis.account_checks(), {
        "/etc/passwd": passwd + "toor:x:0:0::/root:/bin/sh\n", "/etc/shadow": "root:!:1::::::\nbob:*:1::::::\n"})
    assert done.returncode == 5 and "users other than root have UID 0: toor" in done.stderr
    done = _run(tmp_path / "ok", cis.account_checks(), {"/etc/passwd": passwd,
                                                        "/etc/shadow": "root:!:1::::::\nbob:*:1::::::\n"})
    assert done.returncode == 0, done.stderr


def test_settings_comment_prior_values_and_append_new_ones(tmp_path):
    files = {"/etc/sysctl.conf": "net.ipv4.conf.all.rp_filter=1\nnet.ipv4.ip_forward=1\n",
             "/etc/security/limits.conf": "# limits\n",
             "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nX11Forwarding yes\n#MaxAuthTries 6\n",
             "/etc/sudoers": "root ALL=(ALL:ALL) ALL\n", "/etc/profile.d/timeout.sh": ""}
    done = _run(tmp_path, cis.sysctl_and_ssh(), files)
    assert done.returncode == 0, done.stderr
    sysctl = (tmp_path / "etc/sysctl.conf").read_text().splitlines()
    assert sysctl[:2] == ["#net.ipv4.conf.all.rp_filter=1", "net.ipv4.ip_forward=1"]  # forwarding untouched
    for line in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=1", "kernel.kptr_restrict=2",
                 "net.ipv6.conf.default.accept_ra=0", "kernel.perf_event_paranoid=3", "fs.suid_dumpable=0"):
        assert line in sysctl
    assert len(sysctl) == 3 + len(cis_rules.SYSCTL)
    assert (tmp_path / "etc/security/limits.conf").read_text().endswith("\n* hard core 0\n")
    sshd = (tmp_path / "etc/ssh/sshd_config").read_text().splitlines()
    assert "#X11Forwarding yes" in sshd and "X11Forwarding no" in sshd and "#MaxAuthTries 6" in sshd
    for line in ("PermitRootLogin no", "MaxAuthTries 4", "Banner /etc/issue.net", "DisableForwarding yes",
                 "MaxStartups 10:30:60", "PubkeyAuthentication yes", "LogLevel INFO"):
        assert sshd.count(line) == 1, line
    assert oct((tmp_path / "etc/ssh/sshd_config").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "etc/sudoers").read_text().endswith("\nDefaults use_pty\n")
    assert (tmp_path / "etc/profile.d/timeout.sh").read_text() == "TMOUT=900\n"


COMMON_AUTH = """auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
"""
COMMON_PASSWORD = """password\trequisite\t\t\tpam_pwquality.so retry=3
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
password\trequisite\t\t\tpam_deny.so
"""


def _auth_files():
    return {"/etc/pam.d/su": "auth sufficient pam_rootok.so\n", "/etc/pam.d/common-auth": COMMON_AUTH,
            "/etc/pam.d/common-account": "account required pam_permit.so\n",
            "/etc/pam.d/common-password": COMMON_PASSWORD,
            "/etc/security/pwquality.conf": "# minlen = 8\nminlen = 9\n",
            "/etc/login.defs": "PASS_MAX_DAYS\t99999\nENCRYPT_METHOD SHA512\n",
            "/etc/default/useradd": "# INACTIVE=-1\n", "/etc/profile": "umask 022\n"}


def test_auth_on_22_04_locks_out_with_faillock_around_pam_unix(tmp_path):
    done = _run(tmp_path, cis.auth("22"), _auth_files())
    assert done.returncode == 0, done.stderr
    auth = (tmp_path / "etc/pam.d/common-auth").read_text().splitlines()
    args = cis_rules.FAILLOCK_ARGS
    assert auth[:4] == ["auth required pam_faillock.so preauth silent %s" % args,
                        "auth\t[success=1 default=ignore]\tpam_unix.so nullok",
                        "auth [default=die] pam_faillock.so authfail %s" % args,
                        "auth sufficient pam_faillock.so authsucc %s" % args]
    assert auth.count("auth\t[success=1 default=ignore]\tpam_unix.so nullok") == 1  # one password prompt
    assert (tmp_path / "etc/pam.d/common-account").read_text().endswith("account required pam_faillock.so\n")
    assert (tmp_path / "etc/pam.d/su").read_text().splitlines()[0] == "auth required pam_wheel.so use_uid group=sudo"
    password = (tmp_path / "etc/pam.d/common-password").read_text()
    assert password.count("pam_pwquality.so retry=3") == 1 and "try_first_pass yescrypt remember=5\n" in password
    pwq = (tmp_path / "etc/security/pwquality.conf").read_text().splitlines()
    assert pwq == ["# minlen = 8", "minlen = 14", "minclass = 4", "difok = 2", "dictcheck = 0", "maxrepeat = 3"]
    defs = (tmp_path / "etc/login.defs").read_text().splitlines()
    assert "#PASS_MAX_DAYS\t99999" in defs and "PASS_MAX_DAYS 365" in defs and "PASS_MIN_DAYS 1" in defs
    assert "PASS_WARN_AGE 7" in defs and defs[-1] == "ENCRYPT_METHOD yescrypt"
    assert (tmp_path / "etc/default/useradd").read_text().endswith("\nINACTIVE=30\n")
    assert (tmp_path / "etc/profile").read_text().endswith("readonly TMOUT=900 ; export TMOUT\n")
    # idempotent lockout: a second run adds no second faillock stanza
    again = _run(tmp_path / "again", cis.auth("22"), dict(_auth_files(), **{
        "/etc/pam.d/common-auth": (tmp_path / "etc/pam.d/common-auth").read_text()}))
    assert again.returncode == 0
    assert (tmp_path / "again/etc/pam.d/common-auth").read_text().count("pam_faillock.so preauth") == 1


def test_auth_on_20_04_uses_tally2_and_sha512(tmp_path):
    done = _run(tmp_path, cis.auth("20"), _auth_files())
    assert done.returncode == 0, done.stderr
    auth = (tmp_path / "etc/pam.d/common-auth").read_text().splitlines()
    assert auth[0] == "auth required pam_tally2.so deny=4 onerr=fail unlock_time=600" and "faillock" not in str(auth)
    assert (tmp_path / "etc/login.defs").read_text().splitlines()[-1] == "ENCRYPT_METHOD SHA512"
    assert cis.ubuntu_major("24.04") == 24 and cis.ubuntu_major("22") == 22


def test_audit_rules_and_modprobe_files():
    script = "\n".join(cis.audit() + cis.modules_and_logs())
    for name in ("audit.rules", "50-time-change.rules", "50-identity.rules", "50-access.rules", "50-delete.rules",
                 "50-mounts.rules", "50-scope.rules", "50-actions.rules", "50-modules.rules",
                 "50-system-locale.rules", "50-MAC-policy.rules", "50-logins.rules", "50-perm_mod.rules",
                 "50-session.rules", "99-finalize.rules"):
        assert "> /etc/audit/rules.d/%s\nchmod 0640 /etc/audit/rules.d/%s" % (name, name) in script
    assert "printf '%s\\n' '-e 2' > /etc/audit/rules.d/99-finalize.rules" in script
    assert "s/^max_log_file = .*/max_log_file = 100/" in script and "num_logs = 10" in script
    for module in ("dccp", "sctp", "rds", "tipc", "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus"):
        assert "/etc/modprobe.d/%s.conf" % module in script
    assert "squashfs" not in script and "udf" not in script
    assert "'Storage=none'" in script
