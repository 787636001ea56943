# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The builder's own GRUB images (Debian's grub-pc-bin and grub-efi-amd64-bin in the disk builder image), as shell
commands: the BIOS core images and a standalone x86_64 EFI GRUB at the removable path ``EFI/BOOT/BOOTX64.EFI``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q

GRUB_LIB = "/usr/lib/grub"
GRUB_MODULES = ("part_gpt", "part_msdos", "fat", "ext2", "iso9660", "search", "search_label", "search_fs_uuid",
                "search_fs_file", "normal", "configfile", "linux", "echo", "test", "sleep", "serial", "terminal",
                "gzio", "ls", "cat", "all_video", "gfxterm", "font", "reboot", "halt", "loadenv", "minicmd")


def efi_standalone_command(lib, output, early_cfg):
    """A standalone EFI GRUB holding every module and ``early_cfg`` as its embedded /boot/grub/grub.cfg."""
    mods = " ".join(GRUB_MODULES)
    return "grub-mkstandalone -O x86_64-efi -d %s -o %s --modules=%s --install-modules=%s --locales= " \
           "--fonts= --themes= %s" % (q("%s/x86_64-efi" % lib), q(output), q(mods), q(mods + " efi_gop efi_uga"),
                                      q("boot/grub/grub.cfg=%s" % early_cfg))


def bios_core_command(lib, fmt, prefix, early_cfg, output):
    """A BIOS core image (``fmt``: i386-pc-eltorito for CDs, i386-pc for disks) with every module built in."""
    return "grub-mkimage -O %s -d %s -p %s -c %s -o %s biosdisk %s" % (
        fmt, q("%s/i386-pc" % lib), prefix, q(early_cfg), q(output), " ".join(GRUB_MODULES))
