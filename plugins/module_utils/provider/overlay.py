# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stock overlay: files every provider image (its ``/etc`` part) and the installer image (all of it) carry.

These are our own files with the function of CanvOS v4.10.0's ``overlay/files`` (CONFORMANCE 3.1b, 3.10, 4.4, 5.1).
Two of them are data whose content is the function (the installer title line, the empty hardware list), so they
are byte-identical to CanvOS's; the others are written here. A user overlay (``overlay_dir``) is copied after them,
so a user file of the same path wins.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# Kairos (>= 3.3) refuses to install or reset without an admin user unless this empty sentinel exists (3.10).
NOUSERS = ""

# rsyslog: the Palette agent's audit messages (facility local7, severity notice, a tag holding "stylus-audit") go to
# their own log in an RFC 5424 layout and nowhere else (4.4).
RSYSLOG_STYLUS = """\
# Palette Edge audit trail: audit messages of the Palette agent get a log file of their own.
template(name="PaletteEdgeAudit" type="string"
         string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% - %msg%\\n")
if ($syslogfacility-text == "local7" and $syslogseverity-text == "notice"
    and $syslogtag contains "stylus-audit") then {
    action(type="omfile" file="/var/log/stylus-audit.log" template="PaletteEdgeAudit")
    stop
}
"""

# logrotate for that log: yearly, two old copies, compressed, dated, at most 100M, rsyslog reopens it (4.4).
LOGROTATE_STYLUS = """\
# Palette Edge audit trail rotation.
/var/log/stylus-audit.log {
    yearly
    rotate 2
    compress
    dateext
    dateformat -%d-%m-%Y
    maxsize 100M
    su root root
    postrotate
        systemctl kill -s HUP rsyslog.service >/dev/null 2>&1 || true
    endscript
}
"""

# The title the interactive installer shows (4.4); its content is the function, so it is CanvOS's line.
INTERACTIVE_INSTALL_TEXT = "Palette Edge Interactive Installer\n"

# Hardware specification overrides the Palette agent reads; none by default (3.1b).
HARDWARE_SPECS = "[]\n"

# Called by the Palette agent with a percentage; exits non-zero when the disk check fails (5.1). It compares the
# same figure as CanvOS's script (df's use% of /var) against the argument, so the agent sees the same answer.
CHECK_DISK_SIZE = """\
#!/bin/sh
# Disk check for the Palette agent: CHECK_DISK_SIZE <percent>; exit 1 when the /var figure is below it.
set -eu
required=${1:?usage: check-disk-size.sh <percent>}
figure=$(df --output=pcent /var | tail -n 1 | tr -d '% ')
if [ "$figure" -lt "$required" ]; then
    echo "Not enough free disk, required: $required. Free: $figure"
    exit 1
fi
echo "Free disk ok, required: $required. Free: $figure"
"""

# path in the image -> (text, mode). The /etc part goes into provider images, all of it into the installer image.
STOCK_FILES = {
    "etc/kairos/.nousers": (NOUSERS, 0o644),
    "etc/rsyslog.d/49-stylus.conf": (RSYSLOG_STYLUS, 0o644),
    "etc/logrotate.d/stylus.conf": (LOGROTATE_STYLUS, 0o644),
    "etc/kairos/branding/interactive_install_text": (INTERACTIVE_INSTALL_TEXT, 0o644),
    "etc/spectrocloud/custom-hardware-specs-lookup.json": (HARDWARE_SPECS, 0o644),
    "opt/spectrocloud/bin/check-disk-size.sh": (CHECK_DISK_SIZE, 0o755),
    "Readme.txt": ("", 0o644),
}


def stock_files(prefix, etc_only=False):
    """({context path: bytes}, {context path: mode}) of the stock overlay under ``prefix/`` in a build context."""
    files = {}
    modes = {}
    for path, (text, mode) in sorted(STOCK_FILES.items()):
        if etc_only and not path.startswith("etc/"):
            continue
        rel = "%s/%s" % (prefix, path[len("etc/"):] if etc_only else path)
        files[rel] = text.encode("utf-8")
        if mode != 0o644:
            modes[rel] = mode
    return files, modes
