# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CIS hardening of the base stage (``cis_hardening``, CONFORMANCE 3.3j and 3.11), Ubuntu amd64 only.

Our own POSIX shell with the function of CanvOS's ``cis-harden/harden.sh``: it runs inside the base stage script after
the kernel and initrd steps (3.3 order), so it is deleted with that script, and ``/etc/os-release`` is saved and
restored around it (a ``base-files`` upgrade would replace the base image's). The steps follow CanvOS's order, except
that the account checks come first, so a base with an empty password fails before anything is downloaded. The
settings themselves are data in ``provider/cis_rules.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import cis_rules as rules

SAVED_OS_RELEASE = "/tmp/edgeforge-cis-os-release"
EMPTY_PASSWORD_MESSAGE = "CIS hardening: these users have an empty password:"
SECOND_ROOT_MESSAGE = "CIS hardening: users other than root have UID 0:"

HELPERS = [
    # cis_set FILE KEY LINE: comment out the lines that start with KEY, then append LINE (prior values stay visible).
    "cis_set() {",
    "  [ -f \"$1\" ] || : > \"$1\"",
    "  awk -v k=\"$2\" 'index($0, k) == 1 { print \"#\" $0; next } { print }' \"$1\" > /tmp/edgeforge-cis.tmp",
    "  cat /tmp/edgeforge-cis.tmp > \"$1\"",  # rewritten in place: the file keeps its mode and owner
    "  rm -f /tmp/edgeforge-cis.tmp",
    "  printf '%s\\n' \"$3\" >> \"$1\"",
    "}",
    # cis_key FILE KEY LINE: replace the first-column KEY line(s) with LINE, or append LINE.
    "cis_key() {",
    "  if grep -q \"^$2\" \"$1\"; then sed -i \"s|^$2.*|$3|\" \"$1\"; else printf '%s\\n' \"$3\" >> \"$1\"; fi",
    "}",
    # installed_of PACKAGE...: those of the packages that are installed (apt refuses a list with an unknown name).
    "installed_of() {",
    "  for p in \"$@\"; do",
    "    dpkg-query -W -f='${Package} ${Status}\\n' \"$p\" 2>/dev/null | awk '/ installed$/ {print $1}'",
    "  done",
    "}",
]


def _q(text):
    return shlex.quote(text)


def ubuntu_major(os_version):
    """The Ubuntu release as a number (``22`` for 22, 22.04 ...); it decides faillock/yescrypt or tally2/SHA512."""
    try:
        return int(str(os_version).split(".", maxsplit=1)[0])
    except ValueError:
        return 22


def account_checks():
    """harden_system's account rules, first: root's primary group 0; no empty password; one UID 0."""
    return [
        "say 'CIS hardening: account checks'",
        "if [ \"$(awk -F: '$1 == \"root\" {print $4}' /etc/passwd)\" != 0 ]; then usermod -g 0 root; fi",
        "empty=$(awk -F: '$2 == \"\" {print $1}' /etc/shadow | tr '\\n' ' ')",
        "if [ -n \"$empty\" ]; then",
        "  say \"%s $empty- set a password, lock them (passwd -l) or remove them in your Dockerfile "
        "customisation\" >&2" % EMPTY_PASSWORD_MESSAGE,
        "  exit 5",
        "fi",
        "roots=$(awk -F: '$3 == 0 && $1 != \"root\" {print $1}' /etc/passwd | tr '\\n' ' ')",
        "if [ -n \"$roots\" ]; then",
        "  say \"%s $roots- give them another UID or remove them\" >&2" % SECOND_ROOT_MESSAGE,
        "  exit 5",
        "fi",
    ]


def packages():
    """upgrade_packages: upgrade, the CIS packages, AppArmor and rsyslog enabled."""
    return [
        "say 'CIS hardening: packages'",
        "apt-get update",
        "apt-get upgrade -y",
        # without recommends: aide-common would pull in cron, a mailer and a mail server
        "apt-get install -y --no-install-recommends %s" % rules.CIS_PACKAGES,
        # aideinit is left to the host: a database of this stage would miss every file the provider image adds
        "systemctl enable apparmor >/dev/null 2>&1 || true",
        "systemctl enable rsyslog >/dev/null 2>&1 || true",
    ]


def sudo_and_umask():
    """configure_sudo and configure_umask."""
    lines = ["mkdir -p /etc/sudoers.d"]
    for name, text in sorted(rules.SUDOERS_D.items()):
        lines += ["printf '%%s\\n' %s > /etc/sudoers.d/%s" % (" ".join(_q(line) for line in text.split("\n")), name),
                  "chmod 0440 /etc/sudoers.d/%s" % name]
    for path in ("/etc/profile", "/etc/bash.bashrc"):
        lines.append("if [ -f %s ] && ! grep -q '^umask 027' %s; then sed -i '/^umask/d' %s; echo 'umask 027' >> %s; "
                     "fi" % (path, path, path, path))
    lines += ["echo 'umask 027' > /etc/profile.d/umask.sh", "chmod 0644 /etc/profile.d/umask.sh"]
    return lines


def sysctl_and_ssh():
    """harden_sysctl (with the core dump limit) and harden_ssh (with the shell timeout and sudo's pty)."""
    lines = ["echo >> /etc/sysctl.conf"]
    lines += ["cis_set /etc/sysctl.conf %s %s" % (_q(key), _q(line)) for key, line in rules.SYSCTL]
    lines += ["echo >> /etc/security/limits.conf", "cis_set /etc/security/limits.conf '* hard core' '* hard core 0'"]
    lines += [
        "sshd=/etc/ssh/sshd_config",
        "if [ -f \"$sshd\" ]; then",
        "  chown root:root \"$sshd\" && chmod og-rwx \"$sshd\"",
        "  echo >> \"$sshd\"",
    ]
    lines += ["  cis_set \"$sshd\" %s %s" % (_q(key), _q(line)) for key, line in rules.SSHD]
    lines += [
        "else",
        "  say 'CIS hardening: no /etc/ssh/sshd_config in the base image, SSH settings skipped'",
        "fi",
        "echo 'TMOUT=900' > /etc/profile.d/timeout.sh",
        "if [ -f /etc/sudoers ]; then echo >> /etc/sudoers; cis_set /etc/sudoers 'Defaults use_pty' "
        "'Defaults use_pty'; fi",
    ]
    return lines


def boot_and_files():
    """harden_boot (Ctrl-Alt-Del, audit=1 on the kernel command line) and harden_password_files."""
    lines = [
        "systemctl mask ctrl-alt-del.target",
        "if [ -f /etc/cos/grub.cfg ]; then",
        "  chown root:root /etc/cos/grub.cfg && chmod u-wx,go-rwx /etc/cos/grub.cfg",
        "  if [ -f /etc/cos/bootargs.cfg ]; then",
        "    sed -i 's/set baseExtraArgs=\"\"/set baseExtraArgs=\"audit=1\"/' /etc/cos/bootargs.cfg",
        "  fi",
        "fi",
    ]
    for mode, paths in rules.FILE_MODES:
        # the owner is root; shadow files keep their group (shadow on Ubuntu) so unix_chkpwd can still read them
        lines.append("for f in %s; do if [ -e \"$f\" ]; then chown root \"$f\"; chmod %s \"$f\"; fi; done"
                     % (paths, mode))
    return lines


def system():
    """The rest of harden_system: cron files, cron/at allow lists, banners, rsyslog.conf, home directories."""
    return [
        "for f in /etc/cron.daily /etc/cron.hourly /etc/cron.d /etc/cron.monthly /etc/cron.weekly /etc/crontab; do",
        "  if [ -e \"$f\" ]; then chown root:root \"$f\"; chmod og-rwx \"$f\"; fi",
        "done",
        "rm -f /etc/cron.deny /etc/at.deny",
        "for f in /etc/cron.allow /etc/at.allow; do touch \"$f\"; chown root:root \"$f\"; chmod g-wx,o-rwx \"$f\"; "
        "done",
        "for f in /etc/issue /etc/issue.net; do",
        "  [ -f \"$f\" ] || printf '%%s\\n' %s > \"$f\"" % _q(rules.BANNER),
        "  chown root:root \"$f\"; chmod 0644 \"$f\"",
        "done",
        "if [ -f /etc/rsyslog.conf ]; then chmod 0640 /etc/rsyslog.conf; fi",
        # home directories of login users: no group write, nothing for others ("/" is never a home to tighten)
        "awk -F: '$1 !~ /^(halt|sync|shutdown|nfsnobody)$/ && $7 !~ /(nologin|false)$/ {print $6}' /etc/passwd |",
        "while read -r home; do",
        "  if [ -d \"$home\" ] && [ \"$home\" != / ]; then chmod g-w,o-rwx \"$home\"; fi",
        "done",
    ]


def services():
    """disable_services and remove_services: apport/rpcbind masked, legacy and X packages removed, vim purged."""
    return [
        "for unit in %s; do systemctl disable \"$unit\" >/dev/null 2>&1 || true; done" % rules.DISABLED_SERVICES,
        "for unit in %s; do systemctl mask \"$unit\" >/dev/null 2>&1 || true; done" % rules.MASKED_UNITS,
        "purge=$(installed_of %s)" % rules.PURGED_PACKAGES,
        "if [ -n \"$purge\" ]; then say \"CIS hardening: purging $purge\"; apt-get purge -y $purge; fi",
        "remove=$(installed_of %s 'xserver-xorg*')" % rules.REMOVED_PACKAGES,
        "if [ -n \"$remove\" ]; then say \"CIS hardening: removing $remove\"; apt-get remove -y $remove; fi",
    ]


def modules_and_logs():
    """disable_modules, harden_coredump, harden_journald."""
    lines = ["mkdir -p /etc/modprobe.d"]
    for name, text in sorted(rules.MODPROBE.items()):
        lines.append("printf '%%s\\n' %s > /etc/modprobe.d/%s.conf" % (" ".join(_q(line) for line in text), name))
    lines += [
        "mkdir -p /etc/systemd/coredump.conf.d",
        "printf '%s\\n' '[Coredump]' 'Storage=none' 'ProcessSizeMax=0' "
        "> /etc/systemd/coredump.conf.d/disable-coredump.conf",
        "if [ -f /etc/systemd/journald.conf ]; then",
        "  cis_key /etc/systemd/journald.conf Compress= Compress=yes",
        "  cis_key /etc/systemd/journald.conf ForwardToSyslog= ForwardToSyslog=no",
        "fi",
    ]
    return lines


def audit():
    """harden_audit: the rule files (0640), auditd.conf rotation, auditd enabled."""
    lines = ["mkdir -p /etc/audit/rules.d"]
    for name, rule_lines in sorted(rules.AUDIT_RULES.items()):
        path = "/etc/audit/rules.d/%s" % name
        lines += ["printf '%%s\\n' %s > %s" % (" ".join(_q(line) for line in rule_lines), path),
                  "chmod 0640 %s" % path]
    lines.append("if [ -f /etc/audit/auditd.conf ]; then")
    lines += ["  sed -i 's/^%s = .*/%s = %s/' /etc/audit/auditd.conf" % (key, key, value)
              for key, value in rules.AUDITD_CONF]
    lines += ["fi", "systemctl enable auditd"]
    return lines


def banner_and_log():
    """harden_banner (motd removed) and harden_log (log modes, logrotate, sudo log file)."""
    return [
        "for f in /etc/issue /etc/issue.net; do printf '%%s\\n' %s >> \"$f\"; done" % _q(rules.BANNER),
        "rm -f /etc/motd",
        "find /var/log -type f -exec chmod g-wx,o-rwx {} + -o -type d -exec chmod g-w,o-rwx {} +",
        "if [ -f /etc/logrotate.conf ]; then cis_key /etc/logrotate.conf 'create 0640' 'create 0640 root utmp'; fi",
        "if [ -f /etc/sudoers ] && ! grep -qF 'Defaults logfile=/var/log/sudo.log' /etc/sudoers; then",
        "  echo 'Defaults logfile=/var/log/sudo.log' >> /etc/sudoers",
        "fi",
    ]


def _lockout(major):
    """Account lockout after 4 failures: pam_faillock on 22.04+, pam_tally2 on 20.04."""
    pam = "/etc/pam.d/common-auth"
    if major >= 22:
        args = rules.FAILLOCK_ARGS
        # around the first pam_unix line, as pam_faillock(8) documents: its success=1 jump lands on authsucc
        return [
            "if [ -f %s ] && ! grep -q pam_faillock.so %s; then" % (pam, pam),
            "  sed -i -e '0,/^auth.*pam_unix\\.so/s//auth required pam_faillock.so preauth silent %s\\n&/' %s"
            % (args, pam),
            "  sed -i -e '0,/^auth.*pam_unix\\.so.*/s//&\\nauth [default=die] pam_faillock.so authfail %s"
            "\\nauth sufficient pam_faillock.so authsucc %s/' %s" % (args, args, pam),
            "fi",
            "if [ -f /etc/pam.d/common-account ] && ! grep -q pam_faillock.so /etc/pam.d/common-account; then",
            "  echo 'account required pam_faillock.so' >> /etc/pam.d/common-account",
            "fi",
        ]
    return [
        "if [ -f %s ] && ! grep -q pam_tally2 %s; then" % (pam, pam),
        "  sed -i '0,/^auth.*pam_unix\\.so/s//auth required pam_tally2.so deny=4 onerr=fail unlock_time=600\\n&/' %s"
        % pam,
        "fi",
        "if [ -f /etc/pam.d/common-account ] && ! grep -q pam_tally2 /etc/pam.d/common-account; then",
        "  echo 'account required pam_tally2.so' >> /etc/pam.d/common-account",
        "fi",
    ]


def auth(os_version):
    """harden_auth: password quality, su restricted to sudo, lockout, reuse, ageing, hashing, idle accounts."""
    major = ubuntu_major(os_version)
    pwq = "/etc/security/pwquality.conf"
    lines = ["[ -f %s ] || : > %s" % (pwq, pwq)]
    lines += ["cis_key %s %s %s" % (pwq, key, _q("%s = %s" % (key, value))) for key, value in rules.PWQUALITY]
    lines += [
        "if [ -f /etc/pam.d/su ]; then sed -i '1i auth required pam_wheel.so use_uid group=sudo' /etc/pam.d/su; fi",
    ] + _lockout(major) + [
        # password reuse and quality: on the existing pam_unix line, not a second password stack
        "pw=/etc/pam.d/common-password",
        "if [ -f \"$pw\" ]; then",
        "  if ! grep -q '^password.*pam_pwquality\\.so' \"$pw\"; then",
        "    sed -i '0,/^password.*pam_unix\\.so/s//password requisite pam_pwquality.so retry=3\\n&/' \"$pw\"",
        "  fi",
        "  sed -i '/^password.*pam_unix\\.so/{/remember=/!s/$/ remember=5/}' \"$pw\"",
        "fi",
        "echo >> /etc/login.defs",
    ]
    lines += ["cis_set /etc/login.defs %s %s" % (key, _q(line)) for key, line in rules.LOGIN_DEFS]
    lines += [
        "cis_set /etc/login.defs ENCRYPT_METHOD 'ENCRYPT_METHOD %s'" % ("yescrypt" if major >= 22 else "SHA512"),
        "if [ -f /etc/default/useradd ]; then echo >> /etc/default/useradd; "
        "cis_set /etc/default/useradd INACTIVE INACTIVE=30; fi",
        "if [ -f /etc/profile ]; then echo 'readonly TMOUT=900 ; export TMOUT' >> /etc/profile; fi",
    ]
    return lines


def cis_steps(config):
    """The CIS hardening lines of the base stage script; none unless ``cis_hardening`` on Ubuntu amd64."""
    if not config.get("cis_hardening") or config.get("os_distribution") != "ubuntu" or config.get("arch") != "amd64":
        return []
    return (["# 3.3j / 3.11 CIS hardening (our own steps, the function of CanvOS's cis-harden/harden.sh)",
             "cat /etc/os-release > %s" % SAVED_OS_RELEASE, "export DEBIAN_FRONTEND=noninteractive"]
            + HELPERS + account_checks() + packages() + sudo_and_umask() + sysctl_and_ssh() + boot_and_files()
            + system() + services() + modules_and_logs() + audit() + banner_and_log() + auth(config.get("os_version"))
            + ["apt-get clean", "rm -rf /var/lib/apt/lists/*",
               # through a symlink (/etc/os-release -> ../usr/lib/os-release) the link stays and its target is restored
               "cat %s > /etc/os-release" % SAVED_OS_RELEASE, "rm -f %s" % SAVED_OS_RELEASE,
               "say 'CIS hardening done'"])
