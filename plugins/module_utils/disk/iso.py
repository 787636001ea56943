# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installer ISO: its tree (staged in Python) and the script that squashes the root filesystem and packs the ISO.

Layout (CONFORMANCE 5.4-5.12, the Kairos live layout enki writes): volume ``COS_LIVE`` with Joliet;
``/rootfs.squashfs`` (zstd, all cores); ``/boot/kernel``, ``/boot/initrd``; ``/boot/grub2/grub.cfg`` with the CanvOS
menu (disk.menu); El Torito BIOS (``/boot/x86_64/loader/eltorito.img``, GRUB i386-pc-eltorito) and EFI
(``/boot/uefi.img``, FAT ``COS_GRUB``, GRUB x86_64-efi at ``EFI/BOOT/BOOTX64.EFI``), GRUB's hybrid MBR plus a GPT ESP
entry for USB sticks; ``/files-iso/config.yaml`` = user data; content bundles cut into 3 GB parts
``<name>_partNN`` with ``xorriso -cut_out`` (no split copies, so a sparse bundle costs no disk space);
``/opt/spectrocloud/clusterconfig/spc.tgz``; ``/.edge_custom_config.yaml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.grub import (
    GRUB_LIB, bios_core_command, efi_standalone_command)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.menu import LIVE_LABEL, early_grub_cfg
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DEFAULT_SQUASHFS_LEVEL
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q, script, squashfs_command


def iso_uuid_date(when=None):
    """xorriso --modification-date value; GRUB shows it as the ISO's UUID (YYYY-MM-DD-hh-mm-ss-cc)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when if when is not None else time.time()))
    return stamp + "00", "%s-%s-%s-%s-%s-%s-00" % (stamp[0:4], stamp[4:6], stamp[6:8], stamp[8:10], stamp[10:12],
                                                   stamp[12:14])


GRUB_DIR = "boot/grub2"
ELTORITO = "boot/x86_64/loader/eltorito.img"
ESP_IMAGE = "boot/uefi.img"
ESP_LABEL = "COS_GRUB"
USER_DATA = "files-iso/config.yaml"
EDGE_CUSTOM_CONFIG = ".edge_custom_config.yaml"
CLUSTERCONFIG = "opt/spectrocloud/clusterconfig/spc.tgz"
CONTENT_DIR = "opt/spectrocloud/content"


def iso_script(paths, iso_uuid_date_value, parts, squashfs_level=DEFAULT_SQUASHFS_LEVEL, processors=None):
    """The ISO build as shell commands.

    ``paths``: rootfs, stage (ISO tree, already holding config files, kernel, initrd and grub.cfg), grub (work dir for
    GRUB images), output (temporary ISO path), grub_lib (/usr/lib/grub). ``parts``: content_parts() with each part's
    ``src`` = the bundle's path as the script sees it.
    """
    stage, grub, lib = paths["stage"], paths["grub"], paths["grub_lib"]
    esp = "%s/%s" % (stage, ESP_IMAGE)
    lines = [
        # GRUB images and the ESP are built in the background while mksquashfs keeps every core busy
        "step squashfs",
        "mkdir -p %s %s" % (q(os.path.dirname("%s/%s" % (stage, ELTORITO))), q(grub)),
        "(",
        bios_core_command(lib, "i386-pc-eltorito", "/" + GRUB_DIR, "%s/early-bios.cfg" % grub,
                          "%s/%s" % (stage, ELTORITO)),
        efi_standalone_command(lib, "%s/BOOTX64.EFI" % grub, "%s/early-efi.cfg" % grub),
        "esp_kib=$(( $(stat -c %%s %s) / 1024 + 1024 ))" % q("%s/BOOTX64.EFI" % grub),
        "rm -f %s" % q(esp),
        "mkfs.vfat -C -n %s %s \"$esp_kib\" >/dev/null" % (ESP_LABEL, q(esp)),
        "mmd -i %s ::/EFI ::/EFI/BOOT" % q(esp),
        "mcopy -i %s %s ::/EFI/BOOT/BOOTX64.EFI" % (q(esp), q("%s/BOOTX64.EFI" % grub)),
        ") > %s 2>&1 &" % q("%s/grub.log" % grub),
        "grub_pid=$!",
        squashfs_command(paths["rootfs"], "%s/rootfs.squashfs" % stage, squashfs_level, processors),
        "step grub",
        "if ! wait \"$grub_pid\"; then cat %s; exit 1; fi" % q("%s/grub.log" % grub),
        "step iso",
        " ".join(q(c) for c in xorriso_command(paths, iso_uuid_date_value, parts))
        + " 2>&1 | grep -v -E 'UPDATE|^$' || test \"${PIPESTATUS[0]}\" = 0",
        "test -s %s" % q(paths["output"]),
        "step done",
    ]
    return script(lines)


def xorriso_command(paths, iso_uuid_date_value, parts):
    lib = paths["grub_lib"]
    cmd = ["xorriso", "-as", "mkisofs", "-iso-level", "3", "-graft-points",
           "--modification-date=%s" % iso_uuid_date_value, "-V", LIVE_LABEL, "-J", "-joliet-long",
           "-b", ELTORITO, "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
           "--grub2-boot-info", "--grub2-mbr", "%s/i386-pc/boot_hybrid.img" % lib,
           "--efi-boot", ESP_IMAGE, "-efi-boot-part", "--efi-boot-image", "--protective-msdos-label",
           "-o", paths["output"], "-r", paths["stage"]]
    if parts:
        cmd.append("--")
        for part in parts:
            cmd += ["-cut_out", part["src"], str(part["offset"]), str(part["length"]),
                    "/%s/%s" % (CONTENT_DIR, part["name"])]
    return cmd


class IsoArtifact:
    """The ISO's steps in the shared build skeleton (disk.build.DiskBuilder)."""

    kind = "iso"

    def __init__(self, request):
        self.request = request
        self.date_value = None

    def result(self):
        return {"iso_path": self.request.output, "sha256_path": self.request.output + ".sha256",
                "content_parts": [{"name": p["name"], "size": p["length"]} for p in self.request.parts]}

    def mount_dirs(self):
        """Host directories the script reads in place (the content bundles are cut straight from them)."""
        return sorted({p["dir"] for p in self.request.parts})

    def stage(self, ctx):
        """The ISO tree and GRUB's early configurations, written in the work directory."""
        request = self.request
        stage = os.path.join(ctx.work, "iso")
        grub = os.path.join(ctx.work, "grub")
        for directory in (os.path.join(stage, GRUB_DIR), grub):
            os.makedirs(directory, exist_ok=True)
        shutil.copyfile(ctx.kernel, os.path.join(stage, "boot", "kernel"))
        shutil.copyfile(ctx.initrd, os.path.join(stage, "boot", "initrd"))
        ctx.write(os.path.join(stage, GRUB_DIR, "grub.cfg"), request.grub_cfg())
        for source, target in ((request.user_data, USER_DATA), (request.edge_custom_config, EDGE_CUSTOM_CONFIG),
                               (request.clusterconfig, CLUSTERCONFIG)):
            if source:
                ctx.copy(source, os.path.join(stage, target))
        self.date_value, uuid = iso_uuid_date()
        prefix = "/" + GRUB_DIR
        ctx.write(os.path.join(grub, "early-bios.cfg"), early_grub_cfg("--fs-uuid %s" % uuid, prefix))
        ctx.write(os.path.join(grub, "early-efi.cfg"), early_grub_cfg("--fs-uuid %s" % uuid, prefix, chain=True))

    def assemble(self, ctx):
        """Squash, make the GRUB images and pack the ISO at ``ctx.tmp_output``."""
        w = ctx.paths["work"]
        parts = [dict(p, src="%s/%s" % (ctx.paths["content"][p["dir"]], os.path.basename(p["path"])))
                 for p in self.request.parts]
        ctx.write(os.path.join(ctx.work, "build.sh"), iso_script(
            {"rootfs": ctx.tree, "stage": w + "/iso", "grub": w + "/grub", "output": ctx.paths["output"],
             "grub_lib": GRUB_LIB}, self.date_value, parts, self.request.squashfs_level))
        ctx.progress("building %s (kernel %s, initrd %s, %d content parts)" % (
            os.path.basename(self.request.output), ctx.kernel_rel, ctx.initrd_rel, len(parts)))
        ctx.run(w + "/build.sh")
        return {}

    @staticmethod
    def extras(_output):
        """Result keys that describe an existing ISO (none beyond size and checksum)."""
        return {}
