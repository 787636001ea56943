# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The EFI system partition (ESP) of the ISO and the raw disk, as the build scripts make it.

disk.boot_chain plans the ESP from the installer image's root filesystem: its signed shim (``EFI/BOOT/bootx64.efi``)
and signed GRUB, or, when the image has no signed pair, the builder's own unsigned GRUB with a warning. The planned
files are staged as a tree in the work directory (the root filesystem may be gone by the time the FAT image is made,
and the builder container sees only the work directory), and the script copies that tree into the FAT image.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.boot_chain import (
    esp_size, has_signed_pair, plan_esp)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q

# the builder's own GRUB (the fallback loader) is x86_64, and the build requests are amd64 images
ARCH = "amd64"
ESP_LABEL = "COS_GRUB"


def plan(rootfs, search_label, config_path, fallback_loader, arch=ARCH):
    """boot_chain's plan for ``rootfs``; the chainload configuration hands over to ``config_path`` on the filesystem
    labelled ``search_label``. Raises boot_chain.BootChainError when no loader can be planned (arm64 without a signed
    pair)."""
    return plan_esp(rootfs, arch, search_label, config_path, fallback_loader=fallback_loader)


def needs_fallback(rootfs, arch=ARCH):
    """True when the image has no signed shim and GRUB pair, so the plan takes the builder's GRUB."""
    return not has_signed_pair(rootfs, arch)


def stage_tree(esp_plan, tree):
    """Copy (or write) the plan's files under ``tree`` (a host directory, emptied first) at their ESP paths."""
    shutil.rmtree(tree, ignore_errors=True)
    for entry in esp_plan["files"]:
        target = os.path.join(tree, *entry["path"].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if "content" in entry:
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(entry["content"])
        else:
            shutil.copyfile(entry["source"], target)
    return tree


def stage_configs(esp_plan, tree):
    """Write the plan's chainload configurations under ``tree`` too (the ISO's own filesystem): started from a CD,
    the signed GRUB's ``$cmdpath`` is the ISO9660 filesystem, not the El Torito FAT image, so it reads
    ``/EFI/BOOT/grub.cfg`` there."""
    for entry in esp_plan["files"]:
        if "content" in entry:
            target = os.path.join(tree, *entry["path"].split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(entry["content"])


def image_commands(image, tree, size):
    """Shell commands that make the FAT image ``image`` of ``size`` bytes holding the staged ``tree`` (script paths);
    mcopy -s copies the tree's ``EFI`` directory with every file in it."""
    return [
        "rm -f %s" % q(image),
        "mkfs.vfat -C -n %s %s %d >/dev/null" % (ESP_LABEL, q(image), size // 1024),
        "MTOOLS_SKIP_CHECK=1 mcopy -s -i %s %s ::/" % (q(image), q("%s/EFI" % tree)),
    ]


def summary(esp_plan):
    """What the build result says about the ESP: signed or not, and which binaries of the image it holds."""
    return {"signed": esp_plan["signed"], "shim": esp_plan["shim"], "grub": esp_plan["grub"],
            "files": [entry["path"] for entry in esp_plan["files"]]}


def size_of(esp_plan, minimum=0):
    return esp_size(esp_plan, minimum)
