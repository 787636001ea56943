# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings of the CIS hardening step (CONFORMANCE 3.11): what it writes, as data.

The values are those of the CIS Ubuntu Linux benchmark that CanvOS v4.10.0 applies; the shell that applies them is in
``provider/cis.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


CIS_PACKAGES = "auditd apparmor apparmor-utils libpam-pwquality aide aide-common vlock"
PURGED_PACKAGES = "telnet vim vim-common vim-runtime vim-tiny"
# Legacy network clients/servers, X and the CIS level 2 services: removed where installed.
REMOVED_PACKAGES = ("openbsd-inetd rsh-client rsh-redone-client nis talk ldap-utils gdm3 avahi-daemon cups rpcbind "
                    "nfs-kernel-server vsftpd apache2 nginx samba squid snmpd")
DISABLED_SERVICES = "setroubleshoot xinetd avahi-daemon cups rpcbind nfs-server bluetooth apport autofs kdump-tools"
MASKED_UNITS = "ctrl-alt-del.target apport.service rpcbind.service rpcbind.socket kdump-tools.service"

# (key a line starts with, line written); prior lines starting with the key are commented out.
SYSCTL = [("net.ipv4.conf.%s.%s" % (scope, key), "net.ipv4.conf.%s.%s=%s" % (scope, key, value))
          for key, value in (("send_redirects", 0), ("accept_source_route", 0), ("accept_redirects", 0),
                             ("secure_redirects", 0), ("log_martians", 1))
          for scope in ("all", "default")] + [
    ("net.ipv4.icmp_echo_ignore_broadcasts", "net.ipv4.icmp_echo_ignore_broadcasts=1"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "net.ipv4.icmp_ignore_bogus_error_responses=1"),
    # reverse-path filtering stays off on "all": CNIs route asymmetrically (deliberate exception, as CanvOS)
    ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.rp_filter=0"),
    ("net.ipv4.conf.default.rp_filter", "net.ipv4.conf.default.rp_filter=1"),
    ("net.ipv4.tcp_syncookies", "net.ipv4.tcp_syncookies=1"),
    ("kernel.randomize_va_space", "kernel.randomize_va_space=2"),
    ("fs.suid_dumpable", "fs.suid_dumpable=0"),
] + [("net.ipv6.conf.%s.%s" % (scope, key), "net.ipv6.conf.%s.%s=0" % (scope, key))
     for key in ("accept_redirects", "accept_source_route", "accept_ra") for scope in ("all", "default")] + [
    ("kernel.yama.ptrace_scope", "kernel.yama.ptrace_scope=1"),
    ("kernel.dmesg_restrict", "kernel.dmesg_restrict=1"),
    ("kernel.kptr_restrict", "kernel.kptr_restrict=2"),
    ("kernel.perf_event_paranoid", "kernel.perf_event_paranoid=3"),
]
# IP forwarding is left alone: Kubernetes needs it.

SSHD = [(key, "%s %s" % (key.strip(), value)) for key, value in (
    ("LogLevel ", "INFO"),
    ("PermitEmptyPasswords ", "no"),
    ("X11Forwarding ", "no"),
    ("IgnoreRhosts ", "yes"),
    ("MaxAuthTries", "4"),
    ("PermitRootLogin", "no"),
    ("ClientAliveInterval", "300"),
    ("ClientAliveCountMax", "3"),
    ("LoginGraceTime", "60"),
    ("Banner", "/etc/issue.net"),
    ("MaxStartups", "10:30:60"),
    ("MaxSessions", "10"),
    ("PermitUserEnvironment", "no"),
    ("HostbasedAuthentication", "no"),
    ("Ciphers", "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,"
                "aes128-ctr"),
    ("MACs", "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"),
    ("KexAlgorithms", "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group14-sha256,"
                      "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,ecdh-sha2-nistp521,"
                      "ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256"),
    ("GSSAPIAuthentication", "no"),
    ("UsePAM", "yes"),
    ("AllowTcpForwarding", "no"),
    ("TCPKeepAlive", "no"),
    ("AllowAgentForwarding", "no"),
    ("DisableForwarding", "yes"),
    ("PubkeyAuthentication", "yes"),
)]

SUDOERS_D = {
    "10-cis-pty": "Defaults use_pty",
    "10-cis-logfile": "Defaults logfile=/var/log/sudo.log",
    "10-cis-password": "Defaults !targetpw\nDefaults !rootpw\nDefaults !runaspw",
}

_AUID = "-F auid>=1000 -F auid!=4294967295"


def _both_arches(syscalls, key, extra=""):
    return ["-a always,exit -F arch=%s %s%s %s -k %s" % (arch, syscalls, extra, _AUID, key) for arch in ("b64", "b32")]


_ACCESS = "-S creat -S open -S openat -S truncate -S ftruncate"
AUDIT_RULES = {
    "audit.rules": ["-D", "-b 8192", "--backlog_wait_time 60000", "-f 1"],
    "50-time-change.rules": [
        "-a always,exit -F arch=b64 -S adjtimex -S settimeofday -k time-change",
        "-a always,exit -F arch=b32 -S adjtimex -S settimeofday -S stime -k time-change",
        "-a always,exit -F arch=b64 -S clock_settime -k time-change",
        "-a always,exit -F arch=b32 -S clock_settime -k time-change",
        "-w /etc/localtime -p wa -k time-change",
    ],
    "50-identity.rules": ["-w %s -p wa -k identity" % path for path in (
        "/etc/group", "/etc/passwd", "/etc/gshadow", "/etc/shadow", "/etc/security/opasswd")],
    "50-access.rules": [line for code in ("EACCES", "EPERM")
                        for line in _both_arches(_ACCESS, "access", " -F exit=-%s" % code)],
    "50-delete.rules": _both_arches("-S unlink -S unlinkat -S rename -S renameat", "delete"),
    "50-mounts.rules": _both_arches("-S mount", "mounts"),
    "50-scope.rules": ["-w /etc/sudoers -p wa -k scope", "-w /etc/sudoers.d/ -p wa -k scope"],
    "50-actions.rules": ["-a always,exit -F arch=%s -C euid!=uid -F euid=0 %s -S execve -k actions" % (arch, _AUID)
                         for arch in ("b64", "b32")],
    "50-modules.rules": ["-w /sbin/insmod -p x -k modules", "-w /sbin/rmmod -p x -k modules",
                         "-w /sbin/modprobe -p x -k modules",
                         "-a always,exit -F arch=b64 -S init_module -S delete_module -k modules"],
    "50-system-locale.rules": [
        "-a always,exit -F arch=b64 -S sethostname -S setdomainname -k system-locale",
        "-a always,exit -F arch=b32 -S sethostname -S setdomainname -k system-locale",
    ] + ["-w %s -p wa -k system-locale" % path
         for path in ("/etc/issue", "/etc/issue.net", "/etc/hosts", "/etc/network")],
    "50-MAC-policy.rules": ["-w /etc/apparmor/ -p wa -k MAC-policy"],
    "50-logins.rules": ["-w /var/log/%s -p wa -k logins" % name for name in ("faillog", "lastlog", "tallylog")],
    "50-perm_mod.rules": (_both_arches("-S chmod -S fchmod -S fchmodat", "perm_mod")
                          + _both_arches("-S chown -S fchown -S fchownat -S lchown", "perm_mod")
                          + _both_arches("-S setxattr -S lsetxattr -S fsetxattr -S removexattr -S lremovexattr "
                                         "-S fremovexattr", "perm_mod")),
    "50-session.rules": ["-w %s -p wa -k session" % path
                         for path in ("/var/run/utmp", "/var/log/wtmp", "/var/log/btmp")],
    "99-finalize.rules": ["-e 2"],  # the rules become immutable until reboot
}

# auditd.conf: rotate at 100 MB, keep 10 logs, warn and rotate instead of stopping when space runs low.
AUDITD_CONF = [("max_log_file", "100"), ("max_log_file_action", "ROTATE"), ("num_logs", "10"),
               ("space_left", "250"), ("space_left_action", "SYSLOG"), ("admin_space_left", "100"),
               ("admin_space_left_action", "ROTATE"), ("disk_full_action", "ROTATE"),
               ("disk_error_action", "SYSLOG")]

# Network protocols and file systems an edge host never loads; squashfs and udf stay (Kairos boots from them).
MODPROBE = {
    "dccp": ["install dccp /bin/true"],
    "sctp": ["install sctp /bin/true"],
    "rds": ["install rds /bin/true"],
    "tipc": ["install tipc /bin/true"],
    "cramfs": ["install cramfs /bin/false", "blacklist cramfs"],
    "freevxfs": ["install freevxfs /bin/true", "blacklist freevxfs"],
    "jffs2": ["install jffs2 /bin/true", "blacklist jffs2"],
    "hfs": ["install hfs /bin/true", "blacklist hfs"],
    "hfsplus": ["install hfsplus /bin/true", "blacklist hfsplus"],
}

PWQUALITY = [("minlen", "14"), ("minclass", "4"), ("difok", "2"), ("dictcheck", "0"), ("maxrepeat", "3")]
LOGIN_DEFS = [("PASS_MIN_DAYS", "PASS_MIN_DAYS 1"), ("PASS_MAX_DAYS", "PASS_MAX_DAYS 365"),
              ("PASS_WARN_AGE", "PASS_WARN_AGE 7")]
FAILLOCK_ARGS = "audit deny=4 fail_interval=900 unlock_time=600"
BANNER = "Authorised users only. All activity on this system may be monitored and reported."

# Password and group files: (mode, paths).
FILE_MODES = [("644", "/etc/passwd /etc/passwd- /etc/group /etc/group-"), ("640", "/etc/shadow"),
              ("000", "/etc/shadow- /etc/gshadow /etc/gshadow-")]
