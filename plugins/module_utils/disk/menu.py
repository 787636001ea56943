# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot menus: GRUB configuration text of the installer ISO and of the raw disk image.

Our own text with the function of CanvOS's ``overlay/files-iso/boot/grub2/grub.cfg`` (the ISO) and of the recovery
menu of its cloud image (the raw disk).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

LIVE_LABEL = "COS_LIVE"

# Menu entries of CanvOS's overlay/files-iso GRUB configuration: (title, extra kernel arguments).
ISO_MENU = (
    ("Palette eXtended Kubernetes Edge Installer", "install-mode"),
    ("Palette eXtended Kubernetes Edge Installer (manual)", ""),
    ("Palette Edge Interactive Installer", "install-mode interactive-install"),
)
DEBUG_ARGS = "rd.immucore.debug console=tty0 rd.debug"
# rd.live.overlay.overlayfs=1: a squashfs holding the root directly (Kairos layout) is mounted with a RAM overlay.
ISO_LIVE_ARGS = ("cdroot root=live:CDLABEL=%s rd.live.dir=/ rd.live.squashimg=rootfs.squashfs "
                 "rd.live.overlay.overlayfs=1" % LIVE_LABEL)
RAW_LIVE_ARGS = ("root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs "
                 "rd.live.overlay.overlayfs=1")
CONSOLE_ARGS = "console=tty1 console=ttyS0,115200 rd.cos.disable"
RAW_MENU = (
    ("Palette eXtended Kubernetes Edge Recovery", ""),
    ("Palette eXtended Kubernetes Edge Reset", "kairos.reset"),
)


def iso_grub_cfg(default_entry=0, timeout=5, debug=False, extra_args=""):
    """The ISO's /boot/grub/grub.cfg: the CanvOS menu with the Kairos live command line."""
    lines = [
        "# Palette Edge installer (built by edgeforge.artifacts)",
        "set default=%d" % int(default_entry),
        "set timeout=%d" % int(timeout),
        "set timeout_style=menu",
        "serial --unit=0 --speed=115200",
        "terminal_input console serial",
        "terminal_output console serial",
        "",
    ]
    for title, args in ISO_MENU:
        cmdline = " ".join(part for part in (ISO_LIVE_ARGS, CONSOLE_ARGS, args, extra_args,
                                             DEBUG_ARGS if debug else "") if part)
        lines += [
            'menuentry "%s" --class os --unrestricted {' % title,
            "    echo Loading kernel...",
            "    linux ($root)/boot/kernel %s" % cmdline,
            "    echo Loading initrd...",
            "    initrd ($root)/boot/initrd",
            "}",
            "",
        ]
    return "\n".join(lines)


def raw_grub_cfg(default_entry=0, timeout=5, debug=False, extra_args=""):
    """COS_RECOVERY:/grub2/grub.cfg of the raw disk: boot the recovery system (or reset from it)."""
    lines = [
        "# Palette Edge disk image (built by edgeforge.artifacts)",
        "set default=%d" % int(default_entry),
        "set timeout=%d" % int(timeout),
        "serial --unit=0 --speed=115200",
        "terminal_input console serial",
        "terminal_output console serial",
        "",
    ]
    for title, args in RAW_MENU:
        cmdline = " ".join(part for part in (RAW_LIVE_ARGS, CONSOLE_ARGS, args, extra_args,
                                             DEBUG_ARGS if debug else "") if part)
        lines += [
            'menuentry "%s" --class os --unrestricted {' % title,
            "    search --no-floppy --label COS_RECOVERY --set=root",
            "    echo Loading kernel...",
            "    linux ($root)/cOS/vmlinuz %s" % cmdline,
            "    echo Loading initrd...",
            "    initrd ($root)/cOS/initrd",
            "}",
            "",
        ]
    return "\n".join(lines)


def early_grub_cfg(search, prefix, chain=False):
    """The configuration embedded in a GRUB image: find the boot filesystem, point the prefix at it.

    ``chain`` adds an explicit configfile (needed by grub-mkstandalone, whose own prefix is its memdisk).
    """
    lines = ["search --no-floppy %s --set=root" % search, "set prefix=($root)%s" % prefix]
    if chain:
        lines.append("configfile ($root)%s/grub.cfg" % prefix)
    return "\n".join(lines) + "\n"
