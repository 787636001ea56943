# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installer ISO: its tree (staged in Python) and the script that squashes the root filesystem and packs the ISO.

Layout (CONFORMANCE 5.4-5.12, the Kairos live layout enki writes): volume ``COS_LIVE`` with Joliet;
``/rootfs.squashfs`` (zstd, all cores); ``/boot/kernel``, ``/boot/initrd``; ``/boot/grub2/grub.cfg`` with the CanvOS
menu (disk.menu); El Torito BIOS (``/boot/x86_64/loader/eltorito.img``, GRUB i386-pc-eltorito) and EFI
(``/boot/uefi.img``, FAT ``COS_GRUB``, disk.esp: the image's signed shim at ``EFI/BOOT/bootx64.efi`` and its signed
GRUB beside it, else the builder's GRUB x86_64-efi; the chainload ``grub.cfg`` also at ``/EFI/BOOT/`` and
``/EFI/ubuntu/`` of the ISO's own filesystem, where the signed GRUB started from a CD looks), GRUB's hybrid MBR
plus a GPT ESP entry for USB sticks; ``/files-iso/config.yaml`` = user data; content bundles cut into 3 GB parts
``<name>_partNN`` with ``xorriso -cut_out`` (no split copies, so a sparse bundle costs no disk space);
``/opt/spectrocloud/clusterconfig/spc.tgz``; ``/.edge_custom_config.yaml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import esp
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.grub import (
    GRUB_LIB, bios_core_command, efi_standalone_command)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.menu import LIVE_LABEL, early_grub_cfg
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DEFAULT_SQUASHFS_LEVEL
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q, script, squashfs_command
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import read_sha256_file


def iso_uuid_date(when=None):
    """xorriso --modification-date value; GRUB shows it as the ISO's UUID (YYYY-MM-DD-hh-mm-ss-cc)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when if when is not None else time.time()))
    return stamp + "00", "%s-%s-%s-%s-%s-%s-00" % (stamp[0:4], stamp[4:6], stamp[6:8], stamp[8:10], stamp[10:12],
                                                   stamp[12:14])


GRUB_DIR = "boot/grub2"
ELTORITO = "boot/x86_64/loader/eltorito.img"
ESP_IMAGE = "boot/uefi.img"
USER_DATA = "files-iso/config.yaml"
EDGE_CUSTOM_CONFIG = ".edge_custom_config.yaml"
CLUSTERCONFIG = "opt/spectrocloud/clusterconfig/spc.tgz"
CONTENT_DIR = "opt/spectrocloud/content"


def iso_grub_script(paths):
    """The builder's standalone EFI GRUB: the ESP's fallback loader when the installer image has no signed shim and
    GRUB (boot_chain plans the ESP with it, so it is made before the plan)."""
    grub = paths["grub"]
    return script(["step grub-efi", "mkdir -p %s" % q(grub),
                   efi_standalone_command(paths["grub_lib"], "%s/BOOTX64.EFI" % grub, "%s/early-efi.cfg" % grub)])


def bios_image_commands(paths):
    """The El Torito BIOS core image, made in the background while mksquashfs runs (GRUB compresses it: a fifth of
    a second that would otherwise add to the build)."""
    stage, grub = paths["stage"], paths["grub"]
    return [
        "mkdir -p %s" % q(os.path.dirname("%s/%s" % (stage, ELTORITO))),
        "%s &" % bios_core_command(paths["grub_lib"], "i386-pc-eltorito", "/" + GRUB_DIR, "%s/early-bios.cfg" % grub,
                                   "%s/%s" % (stage, ELTORITO)),
        "bios_image=$!",
    ]


def iso_script(paths, iso_uuid_date_value, parts, esp_bytes, squashfs_level=DEFAULT_SQUASHFS_LEVEL,
               processors=None):
    """The ISO build as shell commands.

    ``paths``: rootfs, stage (ISO tree, already holding config files, kernel, initrd and grub.cfg), grub (GRUB's
    early configurations), esp (the ESP's staged tree, disk.esp), output (temporary ISO path), checksum (the ISO's
    SHA-256 as ``<hex> *stdin``), grub_lib (/usr/lib/grub).
    ``esp_bytes``: the ESP image's size. ``parts``: content_parts() with each part's ``src`` = the bundle's path as
    the script sees it.
    """
    lines = bios_image_commands(paths) + ["step esp"] + esp.image_commands(
        "%s/%s" % (paths["stage"], ESP_IMAGE), paths["esp"], esp_bytes) + [
        "step squashfs",
        squashfs_command(paths["rootfs"], "%s/rootfs.squashfs" % paths["stage"], squashfs_level, processors),
        "step grub-bios",
        'wait "$bios_image"',
        "step iso",
        # hashed as it is written (tee to openssl, beside xorriso on another core) instead of read again afterwards;
        # xorriso's messages go through fd 3, without its progress lines
        "{ %s 2>&3 | tee %s | openssl dgst -sha256 -r >%s; } 3>&1 | grep -v -E 'UPDATE|^$' "
        "|| test \"${PIPESTATUS[0]}\" = 0" % (
            " ".join(q(c) for c in xorriso_command(paths, iso_uuid_date_value, parts)), q(paths["output"]),
            q(paths["checksum"])),
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
           "-o", "-", "-r", paths["stage"]]
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
        """The ESP's plan (signed shim and GRUB of the image, else the builder's GRUB, made first), then squash and
        pack the ISO at ``ctx.tmp_output`` (its checksum, taken as it was written, in ``ctx.written_sha256``)."""
        w = ctx.paths["work"]
        paths = {"rootfs": ctx.tree, "stage": w + "/iso", "grub": w + "/grub", "esp": w + "/esp",
                 "output": ctx.paths["output"], "checksum": w + "/iso.sha256", "grub_lib": GRUB_LIB}
        if esp.needs_fallback(ctx.rootfs):  # one more script run (a container start) only when it is used
            ctx.write(os.path.join(ctx.work, "grub.sh"), iso_grub_script(paths))
            ctx.run(w + "/grub.sh")
        # the signed GRUB's chainload configuration finds the ISO by its volume label and loads its menu
        plan = esp.plan(ctx.rootfs, LIVE_LABEL, "/%s/grub.cfg" % GRUB_DIR,
                        os.path.join(ctx.work, "grub", "BOOTX64.EFI"))
        esp.stage_tree(plan, os.path.join(ctx.work, "esp"))
        esp.stage_configs(plan, os.path.join(ctx.work, "iso"))
        for warning in plan["warnings"]:
            ctx.progress("warning: %s" % warning)
        parts = [dict(p, src="%s/%s" % (ctx.paths["content"][p["dir"]], os.path.basename(p["path"])))
                 for p in self.request.parts]
        ctx.write(os.path.join(ctx.work, "build.sh"), iso_script(paths, self.date_value, parts, esp.size_of(plan),
                                                                 self.request.squashfs_level))
        ctx.progress("building %s (kernel %s, initrd %s, %d content parts)" % (
            os.path.basename(self.request.output), ctx.kernel_rel, ctx.initrd_rel, len(parts)))
        ctx.run(w + "/build.sh")
        ctx.written_sha256 = read_sha256_file(os.path.join(ctx.work, "iso.sha256"))
        return {"esp": esp.summary(plan), "warnings": list(plan["warnings"])}

    @staticmethod
    def extras(_output):
        """Result keys that describe an existing ISO (none beyond size and checksum)."""
        return {}
