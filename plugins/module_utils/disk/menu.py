# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot menus: GRUB configuration text of the installer ISO and of the raw disk image.

The ISO menu is our own text with the function of CanvOS v4.10.0's ``overlay/files-iso/boot/grub2/grub.cfg``: the same
titles, order, kernel arguments token by token, default entry, timeout, font and EFI "Text mode" entry. It differs
where CanvOS has a flaw: no ``search`` for ``/boot/kernel.xz`` (a file never written, so the search only fails; the
root stays the ISO, as the loader set it), a serial terminal beside the screen when the machine has a serial port
(BMC consoles and headless boxes see the menu), and no "can't find command" from GRUBs without ``hiddenentry``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

LIVE_LABEL = "COS_LIVE"
ISO_KERNEL = "/boot/kernel"
ISO_INITRD = "/boot/initrd"
ISO_MENU_TIMEOUT_STYLE = "menu"
# The kernel arguments of CanvOS's installer entries (CONFORMANCE 5.8), in order.
ISO_ARGS = ("cdroot", "root=live:CDLABEL=%s" % LIVE_LABEL, "rd.live.dir=/", "rd.live.squashimg=rootfs.squashfs",
            "net.ifnames=1", "console=tty1", "console=ttyS0", "rd.cos.disable", "vga=795", "nomodeset",
            "nodepair.enable", "selinux=0", "rd.live.overlay.overlayfs", "rd.immucore.sysrootwait=600",
            "systemd.unified_cgroup_hierarchy=1")
# The manual entry leaves the graphics mode alone and does not pair automatically.
MANUAL_DROPS = ("vga=795", "nomodeset", "nodepair.enable")
ISO_MENU = (
    ("Palette eXtended Kubernetes Edge Installer", ISO_ARGS),
    ("Palette eXtended Kubernetes Edge Installer (manual)", tuple(a for a in ISO_ARGS if a not in MANUAL_DROPS)),
    ("Palette Edge Interactive Installer", ISO_ARGS + ("interactive-install",)),
)
ISO_INTERACTIVE_ENTRY = 2
DEBUG_ARGS = ("rd.immucore.debug", "console=tty0", "rd.debug")

# The raw disk boots its recovery system live from COS_RECOVERY (or resets from it).
RAW_KERNEL = "/cOS/vmlinuz"
RAW_INITRD = "/cOS/initrd"
RAW_LIVE_ARGS = ("root=live:LABEL=COS_RECOVERY", "rd.live.dir=/cOS", "rd.live.squashimg=recovery.squashfs",
                 "rd.live.overlay.overlayfs=1")
RAW_CONSOLE_ARGS = ("console=tty1", "console=ttyS0,115200", "rd.cos.disable")
# (title, entry id (what a GRUB environment's next_entry names, see disk.oem), arguments)
RAW_MENU = (
    ("Palette eXtended Kubernetes Edge Recovery", "recovery", RAW_LIVE_ARGS + RAW_CONSOLE_ARGS),
    ("Palette eXtended Kubernetes Edge Reset", "statereset", RAW_LIVE_ARGS + RAW_CONSOLE_ARGS + ("kairos.reset",)),
)
# The OEM partition's grubenv chooses the entry (CONFORMANCE 6.6 step 1): next_entry for one boot (first boot:
# recovery; cleared once read), else saved_entry for every boot (set after the reset: registration).
RAW_NEXT_ENTRY = (
    "if search --no-floppy --label COS_OEM --set=oem; then",
    "    if [ -f (${oem})/grubenv ]; then",
    "        load_env -f (${oem})/grubenv",
    "    fi",
    '    if [ -n "${next_entry}" ]; then',
    '        set default="${next_entry}"',
    "        set next_entry=",
    "        save_env -f (${oem})/grubenv next_entry",
    '    elif [ -n "${saved_entry}" ]; then',
    '        set default="${saved_entry}"',
    "    fi",
    "fi",
)
# Entries a later stage adds: the reset copies the recovery system's /etc/kairos/branding/grubmenu.cfg to the state
# partition's /grubmenu (registration, statereset). Sourced after our own entries, so an id both define is ours.
RAW_EXTRA_MENU = (
    "if search --no-floppy --file /grubmenu --set=extra_menu; then",
    "    source (${extra_menu})/grubmenu",
    "fi",
)

SERIAL = (
    "if serial --unit=0 --speed=115200; then",
    "    terminal_input console serial",
    "    terminal_output console serial",
    "fi",
)


def kernel_args(args, debug=False, extra_args=""):
    """One entry's arguments: its own, then the debug ones (CanvOS appends them), then the user's."""
    return " ".join(list(args) + (list(DEBUG_ARGS) if debug else []) + ([extra_args] if extra_args else []))


def _entry(title, kernel, initrd, cmdline, search=None, entry_id=None):
    lines = ['menuentry "%s"%s --class os --unrestricted {' % (title, " --id %s" % entry_id if entry_id else "")]
    if search:
        lines.append("    search --no-floppy %s --set=root" % search)
    return lines + [
        "    echo Loading kernel...",
        "    linux ($root)%s %s" % (kernel, cmdline),
        "    echo Loading initrd...",
        "    initrd ($root)%s" % initrd,
        "}",
        "",
    ]


def iso_grub_cfg(default_entry=0, timeout=5, debug=False, extra_args="", kernel=ISO_KERNEL, initrd=ISO_INITRD):
    """The ISO's /boot/grub2/grub.cfg (CONFORMANCE 5.8)."""
    lines = [
        "# Palette Edge installer boot menu (edgeforge.artifacts)",
        "set default=%d" % int(default_entry),
        "set timeout=%d" % int(timeout),
        "set timeout_style=%s" % ISO_MENU_TIMEOUT_STYLE,
    ] + list(SERIAL) + [
        'if [ "${grub_platform}" = "efi" ]; then',
        "    echo \"Press 't' to show the boot menu on this console\"",
        "fi",
        "set font=($root)/boot/${grub_cpu}/loader/grub2/fonts/unicode.pf2",
        'if [ -f "${font}" ]; then',
        '    loadfont "${font}"',
        "fi",
        "",
    ]
    for title, args in ISO_MENU:
        lines += _entry(title, kernel, initrd, kernel_args(args, debug, extra_args))
    lines += [
        "# GRUBs without the hiddenentry command (Debian's signed one) would print \"can't find command\": they",
        "# call this quiet function instead (a command of that name, where there is one, comes first)",
        "function hiddenentry {",
        "    set textmode_entry=none",
        "}",
        'if [ "${grub_platform}" = "efi" ]; then',
        '    hiddenentry "Text mode" --hotkey "t" {',
        "        set textmode=true",
        "        terminal_output console",
        "    }",
        "fi",
    ]
    return "\n".join(lines) + "\n"


def raw_grub_cfg(default_entry=0, timeout=5, debug=False, extra_args="", kernel=RAW_KERNEL, initrd=RAW_INITRD):
    """COS_RECOVERY:/grub2/grub.cfg of the raw disk: boot the recovery system (or reset from it), or the entry the OEM
    grubenv names, which may be one of a ``/grubmenu`` found on any partition."""
    lines = [
        "# Palette Edge disk image boot menu (edgeforge.artifacts)",
        "set default=%d" % int(default_entry),
        "set timeout=%d" % int(timeout),
    ] + list(SERIAL) + list(RAW_NEXT_ENTRY) + [""]
    for title, entry_id, args in RAW_MENU:
        lines += _entry(title, kernel, initrd, kernel_args(args, debug, extra_args), "--label COS_RECOVERY", entry_id)
    return "\n".join(lines + list(RAW_EXTRA_MENU)) + "\n"


def early_grub_cfg(search, prefix, chain=False):
    """The configuration embedded in a GRUB image: find the boot filesystem, point the prefix at it.

    ``chain`` adds an explicit configfile (needed by grub-mkstandalone, whose own prefix is its memdisk).
    """
    lines = ["search --no-floppy %s --set=root" % search, "set prefix=($root)%s" % prefix]
    if chain:
        lines.append("configfile ($root)%s/grub.cfg" % prefix)
    return "\n".join(lines) + "\n"
