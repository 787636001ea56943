# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The raw disk image (CanvOS cloud image layout), built without loop devices.

GPT with 1 EFI (FAT ``COS_GRUB``, disk.esp: the image's signed shim and GRUB, else the builder's GRUB), 2 OEM
(ext2 ``COS_OEM``: user data as ``90_custom.yaml``, ``grubenv`` with ``next_entry=recovery``, ``01_reset.yaml``
that adds the state and persistent partitions at first boot), 3 RECOVERY (ext2 ``COS_RECOVERY``:
``/cOS/recovery.squashfs``, ``/cOS/vmlinuz``, ``/cOS/initrd``, ``/grub2/grub.cfg``), optional 4 CONTENT (ext4
``COS_CONTENT``: ``bundle-content/``, ``spc-config/``, ``edge-config/``), and a 1 MiB BIOS boot partition last
holding GRUB's core image. Every filesystem is made in a file of its own size (``mkfs -d`` / ``mkfs.vfat -C`` +
mtools) and copied in with ``dd conv=notrunc,sparse``, so the image stays sparse. Two phases: the squashfs and GRUB
images first (their sizes and the ESP's plan decide the partition table), then the filesystems and the disk.
The recovery squashfs gets the cloud extras of disk.cloud (boot entries, after-reset configuration, content scripts).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import cloud, esp
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.gpt import (
    MIB, install_bios_boot, plan_raw_layout, sfdisk_script)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.grub import (
    GRUB_LIB, bios_core_command, efi_standalone_command)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.menu import early_grub_cfg
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.oem import (
    ENTRY_IDS, grubenv, reset_config, state_size_mib)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DEFAULT_SQUASHFS_LEVEL
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q, script, squashfs_command
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import allocated_bytes
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.volume import image_min_root_volume_gib

FILESYSTEMS = (("oem", "COS_OEM", "ext2"), ("recovery", "COS_RECOVERY", "ext2"), ("content", "COS_CONTENT", "ext4"))


def raw_prepare_script(paths, bios_boot=True, squashfs_level=DEFAULT_SQUASHFS_LEVEL, processors=None,
                       excludes=()):
    """Raw disk, phase 1: the recovery squashfs and the GRUB images (their sizes decide the partition table).

    ``paths["pseudo"]`` (optional): mksquashfs pseudo file definitions adding the cloud extras; ``excludes``: the
    files of the tree they replace."""
    work, grub, lib = paths["work"], paths["grub"], paths["grub_lib"]
    lines = [
        "step squashfs",
        squashfs_command(paths["rootfs"], "%s/recovery/cOS/recovery.squashfs" % work, squashfs_level, processors,
                         paths.get("pseudo"), excludes),
        "step grub",
        "mkdir -p %s" % q(grub),
        efi_standalone_command(lib, "%s/BOOTX64.EFI" % grub, "%s/early-efi.cfg" % grub),
    ]
    if bios_boot:
        lines.append(bios_core_command(lib, "i386-pc", "/grub2", "%s/early-bios.cfg" % grub, "%s/core.img" % grub))
        lines.append("cp %s %s" % (q("%s/i386-pc/boot.img" % lib), q("%s/boot.img" % grub)))
    lines.append("step prepared")
    return script(lines)


def raw_assemble_script(paths, layout):
    """Raw disk, phase 2: each filesystem in a file of its partition's size, the GPT, dd at the offsets."""
    work, out = paths["work"], paths["output"]
    parts = {p["name"]: p for p in layout["partitions"]}
    lines = ["step filesystems"] + esp.image_commands("%s/efi.img" % work, "%s/esp" % work, parts["efi"]["bytes"])
    for name, label, fstype in FILESYSTEMS:
        if name in parts:
            lines.append("rm -f %s" % q("%s/%s.img" % (work, name)))
            lines.append("mkfs.%s -q -F -L %s -d %s -E root_owner=0:0 %s %dk" % (
                fstype, label, q("%s/%s" % (work, name)), q("%s/%s.img" % (work, name)), parts[name]["bytes"] // 1024))
    lines += [
        "step disk",
        "rm -f %s" % q(out),
        "truncate -s %d %s" % (layout["size"], q(out)),
        "sfdisk --quiet %s < %s" % (q(out), q("%s/sfdisk.txt" % work)),
    ]
    for name in ("efi", "oem", "recovery", "content"):
        if name in parts:
            # 64 KiB blocks: conv=sparse skips only all-zero blocks, so small ones keep the image close to its data
            lines.append("dd if=%s of=%s bs=64K seek=%d conv=notrunc,sparse status=none" % (
                q("%s/%s.img" % (work, name)), q(out), parts[name]["offset"] // (64 * 1024)))
            lines.append("rm -f %s" % q("%s/%s.img" % (work, name)))
    lines.append("step done")
    return script(lines)


def tree_bytes(root):
    """Bytes a tree occupies (allocated size, plus a little per file for its inode)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += min(stat.st_size, stat.st_blocks * 512) if stat.st_blocks else 0
            total += 256
    return total


def copy_sparse(src, dst):
    """Copy keeping holes (cp --sparse=always); a sparse test bundle stays small on disk."""
    try:
        subprocess.run(["cp", "--sparse=always", src, dst], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.copyfile(src, dst)


class RawArtifact:
    """The raw disk's steps in the shared build skeleton (disk.build.DiskBuilder)."""

    kind = "raw"

    def __init__(self, request):
        self.request = request
        self.excludes = []

    def result(self):
        return {"raw_path": self.request.output, "sha256_path": self.request.output + ".sha256"}

    @staticmethod
    def mount_dirs():
        return []

    def stage(self, ctx):
        """The trees of the OEM, recovery and content partitions, and GRUB's early configurations."""
        request = self.request
        grub, oem = os.path.join(ctx.work, "grub"), os.path.join(ctx.work, "oem")
        cos, grub2 = os.path.join(ctx.work, "recovery", "cOS"), os.path.join(ctx.work, "recovery", "grub2")
        for directory in (grub, cos, grub2, oem):
            os.makedirs(directory, exist_ok=True)
        shutil.copyfile(ctx.kernel, os.path.join(cos, "vmlinuz"))
        shutil.copyfile(ctx.initrd, os.path.join(cos, "initrd"))
        ctx.write(os.path.join(grub2, "grub.cfg"), request.grub_cfg())
        ctx.write(os.path.join(grub, "early-bios.cfg"), early_grub_cfg("--label COS_RECOVERY", "/grub2"))
        ctx.write(os.path.join(grub, "early-efi.cfg"), early_grub_cfg("--label COS_RECOVERY", "/grub2", chain=True))
        user_data = os.path.join(oem, "90_custom.yaml")
        if request.user_data:
            shutil.copyfile(request.user_data, user_data)
        else:  # CanvOS: a config holding only the header keeps Kairos from inventing its own
            ctx.write(user_data, "#cloud-config\n")
        os.chmod(user_data, 0o600)
        # the first boot takes the chosen entry once (recovery by default, as CanvOS's image)
        with open(os.path.join(oem, "grubenv"), "wb") as handle:
            handle.write(grubenv(next_entry=ENTRY_IDS[request.default_entry]))
        # the cloud extras go into the recovery squashfs only: the installer image stays the ISO's
        cloud.stage(os.path.join(ctx.work, "cloud"))
        pseudo, self.excludes = cloud.pseudo_definitions(ctx.rootfs, ctx.paths["work"] + "/cloud")
        ctx.write(os.path.join(ctx.work, "cloud.pf"), pseudo)
        if request.content_bytes():
            self._stage_content(os.path.join(ctx.work, "content"))

    def _stage_content(self, content):
        request = self.request
        for sub in ("bundle-content", "spc-config", "edge-config"):
            os.makedirs(os.path.join(content, sub), exist_ok=True)
        for bundle in request.bundles:
            copy_sparse(bundle["path"], os.path.join(content, "bundle-content", bundle["name"]))
        if request.clusterconfig:
            shutil.copyfile(request.clusterconfig, os.path.join(content, "spc-config",
                                                                os.path.basename(request.clusterconfig)))
        if request.edge_custom_config:
            shutil.copyfile(request.edge_custom_config, os.path.join(content, "edge-config",
                                                                     ".edge_custom_config.yaml"))

    def assemble(self, ctx):
        """Phase 1 (squashfs, GRUB), the partition plan, phase 2 (filesystems, disk), then the BIOS boot code."""
        request, work, w = self.request, ctx.work, ctx.paths["work"]
        script_paths = {"rootfs": ctx.tree, "work": w, "grub": w + "/grub", "output": ctx.paths["output"],
                        "grub_lib": GRUB_LIB, "pseudo": w + "/cloud.pf"}
        ctx.write(os.path.join(work, "prepare.sh"), raw_prepare_script(script_paths, request.bios_boot,
                                                                       request.squashfs_level,
                                                                       excludes=self.excludes))
        ctx.progress("building %s (kernel %s, initrd %s)" % (os.path.basename(request.output), ctx.kernel_rel,
                                                             ctx.initrd_rel))
        ctx.run(w + "/prepare.sh")
        # the ESP from the image's signed shim and GRUB (copied out before the tree is dropped), else the builder's
        # GRUB; the signed GRUB's chainload configuration loads the recovery partition's menu
        plan = esp.plan(ctx.rootfs, "COS_RECOVERY", "/grub2/grub.cfg", os.path.join(work, "grub", "BOOTX64.EFI"))
        esp.stage_tree(plan, os.path.join(work, "esp"))
        esp_bytes = esp.size_of(plan)
        for warning in plan["warnings"]:
            ctx.progress("warning: %s" % warning)
        ctx.drop_rootfs()
        layout = plan_raw_layout(esp_bytes,
                                 tree_bytes(os.path.join(work, "oem")), tree_bytes(os.path.join(work, "recovery")),
                                 request.content_bytes(), request.bios_boot)
        recovery = next(p for p in layout["partitions"] if p["name"] == "recovery")
        ctx.write(os.path.join(work, "oem", "01_reset.yaml"), reset_config(state_size_mib(recovery["bytes"])))
        ctx.write(os.path.join(work, "sfdisk.txt"), sfdisk_script(layout))
        ctx.write(os.path.join(work, "assemble.sh"), raw_assemble_script(script_paths, layout))
        ctx.progress("assembling a %d MiB disk" % (layout["size"] // MIB))
        ctx.run(w + "/assemble.sh")
        if request.bios_boot:
            bios = next(p for p in layout["partitions"] if p["name"] == "bios")
            with open(os.path.join(work, "grub", "boot.img"), "rb") as handle:
                boot_img = handle.read()
            with open(os.path.join(work, "grub", "core.img"), "rb") as handle:
                core_img = handle.read()
            install_bios_boot(ctx.tmp_output, boot_img, core_img, bios["start"])
        return {"partitions": [{k: p[k] for k in ("number", "name", "start", "size", "type")}
                               for p in layout["partitions"]],
                "esp": esp.summary(plan), "warnings": list(plan["warnings"])}

    @staticmethod
    def extras(output):
        """Result keys that describe an existing raw image: the bytes the sparse file really occupies, and the
        smallest disk it resets into at first boot (from its own partition table)."""
        return {"allocated": allocated_bytes(output), "min_root_volume_gib": image_min_root_volume_gib(output)}
