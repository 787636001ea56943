# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installer ISO and raw disk images from an installer image, built without privileges or loop devices.

Flow (both artifacts):

1. Validate the inputs (names, files, directories) before anything is written, so a bad input leaves nothing behind.
2. Compute an inputs digest (installer image id, options, user data, bundles, builder recipe). If the output, its
   ``.sha256`` and the stamp beside it all agree with that digest, nothing is rebuilt (changed=false).
3. Export the installer image's root filesystem through the Docker engine (create a container, never start it,
   stream ``export`` into ``tar -x``), then undo what Docker adds (``/.dockerenv``, empty hostname/hosts/resolv.conf).
4. Write a shell script (generated here, so the commands are unit-tested) and run it in the builder image (a Debian
   image the collection builds from :data:`BUILDER_DOCKERFILE`, cached by a label holding the recipe's digest) with the
   work directory, the output directory and the content directories bind-mounted; or on the host (``builder=host``).
5. Python finishes what needs byte-level care (BIOS boot code for the raw disk), checks the result, writes the
   ``sha256sum`` file and renames the temporary output over the final name.

ISO layout (Kairos live layout): volume ``COS_LIVE``; ``/rootfs.squashfs`` (zstd, all cores); ``/boot/kernel``,
``/boot/initrd``; ``/boot/grub/grub.cfg`` with the CanvOS menu; El Torito BIOS (GRUB i386-pc-eltorito) and EFI
(``/efi.img``, FAT, GRUB x86_64-efi at ``EFI/BOOT/BOOTX64.EFI``), GRUB's hybrid MBR plus a GPT ESP entry for USB sticks;
``/config.yaml`` = user data; content bundles cut into 3 GB parts with ``xorriso -cut_out`` (no split copies, so a
sparse bundle costs no disk space); ``/opt/spectrocloud/clusterconfig/spc.tgz``; ``/.edge_custom_config.yaml``.

Raw disk layout (CanvOS cloud image): GPT with 1 EFI (FAT ``COS_GRUB``), 2 OEM (ext2 ``COS_OEM``, user data as
``90_custom.yaml``), 3 RECOVERY (ext2 ``COS_RECOVERY``: ``/cOS/recovery.squashfs``, ``/cOS/vmlinuz``, ``/cOS/initrd``,
``/grub2/grub.cfg``), optional 4 CONTENT (ext4 ``COS_CONTENT``: ``bundle-content/``, ``spc-config/``, ``edge-config/``),
and a 1 MiB BIOS boot partition last holding GRUB's core image. Every filesystem is made in a file of its own size
(``mkfs -d`` / ``mkfs.vfat -C`` + mtools) and copied in with ``dd conv=notrunc,sparse``, so the image stays sparse.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
import threading
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, atomic_write, sha256_file)

MIB = 1024 * 1024
SECTOR = 512

LIVE_LABEL = "COS_LIVE"
DEFAULT_ISO_NAME = "palette-edge-installer"
# zstd level 3 squashes about five times faster than mksquashfs's default (15) for ~10 % more bytes.
DEFAULT_SQUASHFS_LEVEL = 3
DEFAULT_BUILDER_BASE = "debian:bookworm-slim"
BUILDER_REPOSITORY = "edgeforge-disk-builder"
BUILDER_LABEL = "io.edgeforge.disk-builder.recipe"
BUILDERS = ("container", "host", "auroraboot")
AURORABOOT_IMAGE = "quay.io/kairos/auroraboot:v0.6.4"
# CanvOS runs `split --bytes=3GB` on every bundle: ISO 9660 stores a file in extents below 4 GiB.
CONTENT_PART_BYTES = 3 * 1000 ** 3
# An ISO name becomes a file name and part of a shell command: letters, digits and . _ - only.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_ALLOWED = ("1-100 characters: letters, digits, '.', '_' and '-', starting with a letter or digit "
                "(no '/', spaces or shell characters)")

BUILDER_PACKAGES = ("xorriso", "grub-pc-bin", "grub-efi-amd64-bin", "grub-common", "mtools", "squashfs-tools",
                    "dosfstools", "e2fsprogs", "fdisk", "zstd")

BUILDER_DOCKERFILE = """\
# The edgeforge.artifacts disk builder: the tools that turn an installer image's root filesystem into an
# installer ISO or a raw disk image, without privileges, loop devices or mounts.
# Built by the collection itself (edgeforge.artifacts.installer_iso / raw_disk_image) and cached by its recipe label.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \\
 && apt-get install -y --no-install-recommends %s \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
LABEL io.edgeforge.role="disk-builder"
CMD ["/bin/bash"]
""" % " ".join(BUILDER_PACKAGES)

GRUB_MODULES = ("part_gpt", "part_msdos", "fat", "ext2", "iso9660", "search", "search_label", "search_fs_uuid",
                "search_fs_file", "normal", "configfile", "linux", "echo", "test", "sleep", "serial", "terminal",
                "gzio", "ls", "cat", "all_video", "gfxterm", "font", "reboot", "halt", "loadenv", "minicmd")

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

GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_BIOS_BOOT = "21686148-6E49-6E6F-744E-656564454649"


class DiskBuildError(EdgeforgeError):
    """Building an ISO or raw image failed; the message names the step and the last lines of its output."""


class MissingImageError(DiskBuildError):
    """The installer image is not in the Docker engine."""


# ---------------------------------------------------------------------------------------------- validation
def validate_name(param, value):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError(param, value, NAME_ALLOWED)
    return value


def check_file(param, path, what):
    """An optional input file: None/empty means absent; a given path must be a readable regular file."""
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.isfile(path):
        raise ValidationError(param, path, "%s: the file does not exist (give an existing file or leave it unset)"
                              % what)
    if not os.access(path, os.R_OK):
        raise ValidationError(param, path, "%s: the file is not readable" % what)
    return path


def find_bundles(content_dirs, suffixes=(".zst",)):
    """Content bundles in the given directories (CanvOS: content-*/*.zst for the ISO, .zst and .tar for raw images).

    A directory that does not exist is an error (CanvOS silently ignores a mistyped one). Returns a sorted list of
    dicts {path, name, size}; two bundles with the same file name are an error (they would overwrite each other).
    """
    bundles = []
    seen = {}
    for directory in content_dirs or []:
        if not directory:
            continue
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        if not os.path.isdir(directory):
            raise ValidationError("content_dir", directory,
                                  "a directory holding content bundles (*.zst); this one does not exist")
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not os.path.isfile(path) or not name.endswith(tuple(suffixes)):
                continue
            if name in seen:
                raise ValidationError("content_dir", path, "bundle file names must be unique; %s is also in %s"
                                      % (name, seen[name]))
            seen[name] = directory
            bundles.append({"path": path, "name": name, "size": os.path.getsize(path), "dir": directory})
    return bundles


def content_parts(bundles, part_bytes=CONTENT_PART_BYTES):
    """How each bundle is cut for the ISO: CanvOS names every piece ``<name>_partNN`` (even a single one)."""
    parts = []
    for bundle in bundles:
        count = max(1, -(-bundle["size"] // part_bytes))
        for index in range(count):
            offset = index * part_bytes
            length = min(part_bytes, bundle["size"] - offset)
            parts.append({"bundle": bundle["name"], "path": bundle["path"], "dir": bundle["dir"],
                          "name": "%s_part%02d" % (bundle["name"], index), "offset": offset, "length": length})
    return parts


# ---------------------------------------------------------------------------------------------- GRUB
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


def iso_uuid_date(when=None):
    """xorriso --modification-date value; GRUB shows it as the ISO's UUID (YYYY-MM-DD-hh-mm-ss-cc)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when if when is not None else time.time()))
    return stamp + "00", "%s-%s-%s-%s-%s-%s-00" % (stamp[0:4], stamp[4:6], stamp[6:8], stamp[8:10], stamp[10:12],
                                                   stamp[12:14])


# ---------------------------------------------------------------------------------------------- build scripts
def _q(value):
    return shlex.quote(str(value))


SCRIPT_HEAD = """\
#!/bin/bash
# Generated by edgeforge.artifacts (disk_builder.py); runs in the disk builder image or on the host.
set -euo pipefail
step() { echo "edgeforge-step: $*"; }
# a line a minute keeps the engine's log stream (and its read timeout) alive during long silent steps
( while sleep 60 </dev/null >/dev/null 2>&1; do echo "edgeforge-alive"; done ) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT
"""


def squashfs_commands(rootfs, output, compression_level=None, processors=None):
    cmd = ["mksquashfs", rootfs, output, "-noappend", "-no-progress", "-comp", "zstd", "-b", "1M"]
    if compression_level:
        cmd += ["-Xcompression-level", str(int(compression_level))]
    cmd += ["-processors", str(int(processors)) if processors else "$(nproc)"]
    # keep the mount points, drop anything a container runtime left inside them
    cmd += ["-wildcards", "-e", "proc/*", "sys/*", "dev/*", "run/*", "tmp/*"]
    return " ".join(c if c.startswith("$(") else _q(c) for c in cmd)


def iso_script(paths, iso_uuid_date_value, parts, squashfs_level=DEFAULT_SQUASHFS_LEVEL, processors=None):
    """The ISO build as shell commands.

    ``paths``: rootfs, stage (ISO tree, already holding config files, kernel, initrd and grub.cfg), grub (work dir for
    GRUB images), output (temporary ISO path), grub_lib (/usr/lib/grub). ``parts``: content_parts() with each part's
    ``src`` = the bundle's path as the script sees it.
    """
    stage, grub, lib = paths["stage"], paths["grub"], paths["grub_lib"]
    mods = " ".join(GRUB_MODULES)
    lines = [SCRIPT_HEAD]
    # GRUB images and the ESP are built in the background while mksquashfs keeps every core busy
    lines.append("step squashfs")
    lines.append("mkdir -p %s %s" % (_q("%s/boot/grub/i386-pc" % stage), _q(grub)))
    lines.append("(")
    lines.append("grub-mkimage -O i386-pc-eltorito -d %s -p /boot/grub -c %s -o %s biosdisk %s" % (
        _q("%s/i386-pc" % lib), _q("%s/early-bios.cfg" % grub), _q("%s/boot/grub/i386-pc/eltorito.img" % stage),
        mods))
    lines.append("grub-mkstandalone -O x86_64-efi -d %s -o %s --modules=%s --install-modules=%s --locales= "
                 "--fonts= --themes= %s" % (
                     _q("%s/x86_64-efi" % lib), _q("%s/BOOTX64.EFI" % grub), _q(mods), _q(mods + " efi_gop efi_uga"),
                     _q("boot/grub/grub.cfg=%s/early-efi.cfg" % grub)))
    lines.append("esp_kib=$(( $(stat -c %%s %s) / 1024 + 1024 ))" % _q("%s/BOOTX64.EFI" % grub))
    lines.append("rm -f %s" % _q("%s/efi.img" % stage))
    lines.append("mkfs.vfat -C -n EFI %s \"$esp_kib\" >/dev/null" % _q("%s/efi.img" % stage))
    lines.append("mmd -i %s ::/EFI ::/EFI/BOOT" % _q("%s/efi.img" % stage))
    lines.append("mcopy -i %s %s ::/EFI/BOOT/BOOTX64.EFI" % (_q("%s/efi.img" % stage), _q("%s/BOOTX64.EFI" % grub)))
    lines.append(") > %s 2>&1 &" % _q("%s/grub.log" % grub))
    lines.append("grub_pid=$!")
    lines.append(squashfs_commands(paths["rootfs"], "%s/rootfs.squashfs" % stage, squashfs_level, processors))
    lines.append("step grub")
    lines.append("if ! wait \"$grub_pid\"; then cat %s; exit 1; fi" % _q("%s/grub.log" % grub))
    lines.append("step iso")
    xorriso = ["xorriso", "-as", "mkisofs", "-iso-level", "3", "-graft-points",
               "--modification-date=%s" % iso_uuid_date_value, "-V", LIVE_LABEL,
               "-b", "boot/grub/i386-pc/eltorito.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
               "--grub2-boot-info", "--grub2-mbr", "%s/i386-pc/boot_hybrid.img" % lib,
               "--efi-boot", "efi.img", "-efi-boot-part", "--efi-boot-image", "--protective-msdos-label",
               "-o", paths["output"], "-r", stage]
    if parts:
        xorriso.append("--")
        for part in parts:
            xorriso += ["-cut_out", part["src"], str(part["offset"]), str(part["length"]),
                        "/opt/spectrocloud/content/%s" % part["name"]]
    lines.append(" ".join(_q(c) for c in xorriso) + " 2>&1 | grep -v -E 'UPDATE|^$' || test \"${PIPESTATUS[0]}\" = 0")
    lines.append("test -s %s" % _q(paths["output"]))
    lines.append("step done")
    return "\n".join(lines) + "\n"


def plan_raw_layout(esp_bytes, oem_bytes, recovery_bytes, content_bytes=0, bios_boot=True):
    """Partition table of the raw disk: list of dicts {number, name, start, size, type} in sectors, plus the size.

    1 MiB alignment; every partition is at least its data plus headroom; GPT backup needs the last 33 sectors.
    """
    def mib_up(value):
        return -(-int(value) // MIB) * MIB

    sizes = [
        ("efi", max(64 * MIB, mib_up(esp_bytes * 1.2 + 8 * MIB)), GPT_ESP),
        ("oem", max(64 * MIB, mib_up(oem_bytes * 1.2 + 16 * MIB)), GPT_LINUX),
        ("recovery", mib_up(recovery_bytes * 1.1 + 64 * MIB), GPT_LINUX),
    ]
    if content_bytes:
        # add-content-partition.sh: bundles + 20 % + 100 MiB
        sizes.append(("content", mib_up(content_bytes * 1.2 + 100 * MIB), GPT_LINUX))
    if bios_boot:
        sizes.append(("bios", MIB, GPT_BIOS_BOOT))
    start = MIB
    parts = []
    for number, (name, size, ptype) in enumerate(sizes, start=1):
        parts.append({"number": number, "name": name, "start": start // SECTOR, "size": size // SECTOR,
                      "type": ptype, "offset": start, "bytes": size})
        start += size
    total = start + MIB
    return {"partitions": parts, "size": total}


def sfdisk_script(layout):
    lines = ["label: gpt", "unit: sectors", "first-lba: 2048", ""]
    for part in layout["partitions"]:
        lines.append('start=%d, size=%d, type=%s, name="%s"' % (part["start"], part["size"], part["type"],
                                                                part["name"]))
    return "\n".join(lines) + "\n"


def raw_prepare_script(paths, bios_boot=True, squashfs_level=DEFAULT_SQUASHFS_LEVEL, processors=None):
    """Raw disk, phase 1: the recovery squashfs and the GRUB images (their sizes decide the partition table)."""
    work, grub, lib = paths["work"], paths["grub"], paths["grub_lib"]
    mods = " ".join(GRUB_MODULES)
    lines = [SCRIPT_HEAD]
    lines.append("step squashfs")
    lines.append(squashfs_commands(paths["rootfs"], "%s/recovery/cOS/recovery.squashfs" % work, squashfs_level,
                                   processors))
    lines.append("step grub")
    lines.append("mkdir -p %s" % _q(grub))
    lines.append("grub-mkstandalone -O x86_64-efi -d %s -o %s --modules=%s --install-modules=%s --locales= "
                 "--fonts= --themes= %s" % (
                     _q("%s/x86_64-efi" % lib), _q("%s/BOOTX64.EFI" % grub), _q(mods), _q(mods + " efi_gop efi_uga"),
                     _q("boot/grub/grub.cfg=%s/early-efi.cfg" % grub)))
    if bios_boot:
        lines.append("grub-mkimage -O i386-pc -d %s -p /grub2 -c %s -o %s biosdisk %s" % (
            _q("%s/i386-pc" % lib), _q("%s/early-bios.cfg" % grub), _q("%s/core.img" % grub), mods))
        lines.append("cp %s %s" % (_q("%s/i386-pc/boot.img" % lib), _q("%s/boot.img" % grub)))
    lines.append("step prepared")
    return "\n".join(lines) + "\n"


def raw_assemble_script(paths, layout):
    """Raw disk, phase 2: each filesystem in a file of its partition's size, the GPT, dd at the offsets."""
    work, grub, out = paths["work"], paths["grub"], paths["output"]
    parts = {p["name"]: p for p in layout["partitions"]}
    lines = [SCRIPT_HEAD]
    lines.append("step filesystems")
    efi = parts["efi"]
    lines.append("rm -f %s" % _q("%s/efi.img" % work))
    lines.append("mkfs.vfat -C -n COS_GRUB %s %d >/dev/null" % (_q("%s/efi.img" % work), efi["bytes"] // 1024))
    lines.append("mmd -i %s ::/EFI ::/EFI/BOOT" % _q("%s/efi.img" % work))
    lines.append("mcopy -i %s %s ::/EFI/BOOT/BOOTX64.EFI" % (_q("%s/efi.img" % work), _q("%s/BOOTX64.EFI" % grub)))
    lines.append("mcopy -i %s %s ::/EFI/BOOT/grub.cfg" % (_q("%s/efi.img" % work), _q("%s/early-efi.cfg" % grub)))
    for name, label, fstype in (("oem", "COS_OEM", "ext2"), ("recovery", "COS_RECOVERY", "ext2"),
                                ("content", "COS_CONTENT", "ext4")):
        if name not in parts:
            continue
        lines.append("rm -f %s" % _q("%s/%s.img" % (work, name)))
        lines.append("mkfs.%s -q -F -L %s -d %s -E root_owner=0:0 %s %dk" % (
            fstype, label, _q("%s/%s" % (work, name)), _q("%s/%s.img" % (work, name)), parts[name]["bytes"] // 1024))
    lines.append("step disk")
    lines.append("rm -f %s" % _q(out))
    lines.append("truncate -s %d %s" % (layout["size"], _q(out)))
    lines.append("sfdisk --quiet %s < %s" % (_q(out), _q("%s/sfdisk.txt" % work)))
    for name in ("efi", "oem", "recovery", "content"):
        if name not in parts:
            continue
        # 64 KiB blocks: conv=sparse skips only all-zero blocks, so small ones keep the image close to its data
        lines.append("dd if=%s of=%s bs=64K seek=%d conv=notrunc,sparse status=none" % (
            _q("%s/%s.img" % (work, name)), _q(out), parts[name]["offset"] // (64 * 1024)))
        lines.append("rm -f %s" % _q("%s/%s.img" % (work, name)))
    lines.append("step done")
    return "\n".join(lines) + "\n"


def install_bios_boot(disk_path, boot_img, core_img, core_lba):
    """What grub-bios-setup does for a GPT disk with a BIOS boot partition, on a plain file.

    boot.img goes into the MBR's code area (the partition table and disk signature stay), patched with the LBA of
    core.img and the hard-disk drive-check workaround; core.img goes at ``core_lba`` with its first blocklist
    (sectors after the first, loaded at segment 0x820) filled in.
    """
    if len(boot_img) != SECTOR:
        raise DiskBuildError("boot.img must be %d bytes, got %d" % (SECTOR, len(boot_img)))
    core = bytearray(core_img)
    if len(core) % SECTOR:
        core += b"\0" * (SECTOR - len(core) % SECTOR)
    sectors = len(core) // SECTOR
    if sectors > MIB // SECTOR:
        raise DiskBuildError("GRUB core image is %d bytes; the BIOS boot partition holds 1 MiB" % len(core))
    with open(disk_path, "r+b") as disk:
        disk.seek(0)
        mbr = bytearray(disk.read(SECTOR))
        new = bytearray(boot_img)
        new[0x03:0x5a] = mbr[0x03:0x5a]  # BIOS parameter block stays as it is
        new[0x5c:0x64] = struct.pack("<Q", core_lba)  # GRUB_BOOT_MACHINE_KERNEL_SECTOR
        new[0x66:0x68] = b"\x90\x90"  # GRUB_BOOT_MACHINE_DRIVE_CHECK: trust the BIOS drive number (hard disk)
        mbr[0:440] = new[0:440]
        disk.seek(0)
        disk.write(bytes(mbr))
        # diskboot.img's blocklist sits at the end of core.img's first sector: start(8) len(2) segment(2)
        core[SECTOR - 12:SECTOR] = struct.pack("<QHH", core_lba + 1, sectors - 1, 0x820)
        disk.seek(core_lba * SECTOR)
        disk.write(bytes(core))
    return sectors


# ---------------------------------------------------------------------------------------------- digests, stamps
def inputs_digest(parts):
    """A stable digest of everything that decides the output (dicts/lists of JSON-able values)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def file_fingerprint(path):
    """Small files are hashed; large ones (content bundles) are identified by size and modification time."""
    if not path:
        return None
    stat = os.stat(path)
    if stat.st_size <= 64 * MIB:
        return {"sha256": sha256_file(path), "size": stat.st_size}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def stamp_path(output_path):
    return os.path.join(os.path.dirname(output_path), ".%s.edgeforge-inputs" % os.path.basename(output_path))


def read_sha256_file(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read().split()[0]
    except (OSError, IndexError):
        return None


def sha256_line(digest, filename):
    """The sha256sum format: '<hex>  <name>' (two spaces, text mode)."""
    return "%s  %s\n" % (digest, filename)


def up_to_date(output_path, digest, verify=True):
    """True when the output, its .sha256 and the stamp agree with ``digest`` (and the file matches its checksum)."""
    stamp = stamp_path(output_path)
    sha_path = output_path + ".sha256"
    if not (os.path.isfile(output_path) and os.path.isfile(sha_path) and os.path.isfile(stamp)):
        return False
    try:
        with open(stamp, "r", encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError):
        return False
    written = read_sha256_file(sha_path)
    if recorded.get("inputs") != digest or not written or recorded.get("sha256") != written:
        return False
    if verify and sha256_file(output_path) != written:
        return False
    return True


def write_checksum_and_stamp(output_path, digest):
    checksum = sha256_file(output_path)
    atomic_write(output_path + ".sha256", sha256_line(checksum, os.path.basename(output_path)))
    atomic_write(stamp_path(output_path), json.dumps({"inputs": digest, "sha256": checksum}, sort_keys=True) + "\n")
    return checksum


def verify_checksum_file(output_path):
    """Re-read the artifact and compare with its .sha256 file (what `sha256sum -c` does)."""
    written = read_sha256_file(output_path + ".sha256")
    actual = sha256_file(output_path)
    if written != actual:
        raise DiskBuildError("%s does not match its checksum file (%s != %s)" % (output_path, actual, written))
    return actual


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


# ---------------------------------------------------------------------------------------------- rootfs
def resolve_in_root(rootfs, path, max_links=20):
    """Resolve ``path`` (absolute, as the image sees it) inside ``rootfs``, following symlinks within the root."""
    parts = [p for p in path.split("/") if p]
    resolved = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if part == ".":
            continue
        candidate = os.path.join(rootfs, *(resolved + [part]))
        if os.path.islink(candidate):
            links += 1
            if links > max_links:
                raise DiskBuildError("too many symbolic links resolving %s in the image" % path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(rootfs, *resolved)


KERNEL_CANDIDATES = ("/boot/vmlinuz", "/vmlinuz", "/boot/kernel")
INITRD_CANDIDATES = ("/boot/initrd", "/initrd.img", "/boot/initramfs.img", "/boot/initrd.img")


def find_boot_files(rootfs, kernel_path=None, initrd_path=None):
    """Kernel and initrd of the image (Kairos images: /boot/vmlinuz and /boot/initrd, usually symlinks)."""
    def pick(given, candidates, globs, what):
        options = [given] if given else list(candidates)
        for option in options:
            real = resolve_in_root(rootfs, option)
            if os.path.isfile(real) and os.path.getsize(real) > 0:
                return option, real
        if not given:
            boot = os.path.join(rootfs, "boot")
            if os.path.isdir(boot):
                for name in sorted(os.listdir(boot), reverse=True):
                    if name.startswith(globs):
                        real = resolve_in_root(rootfs, "/boot/" + name)
                        if os.path.isfile(real) and os.path.getsize(real) > 0:
                            return "/boot/" + name, real
        raise DiskBuildError("the installer image has no %s (looked for %s); set %s_path to where it is"
                             % (what, ", ".join(options), "kernel" if what == "kernel" else "initrd"))

    return (pick(kernel_path, KERNEL_CANDIDATES, ("vmlinuz-",), "kernel"),
            pick(initrd_path, INITRD_CANDIDATES, ("initrd.img-", "initramfs-"), "initrd"))


HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def fix_exported_rootfs(rootfs, hostname="localhost"):
    """Undo Docker's traces in an exported container filesystem."""
    for rel in (".dockerenv", "dev/console"):
        path = os.path.join(rootfs, rel)
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
    etc = os.path.join(rootfs, "etc")
    if not os.path.isdir(etc):
        return
    for name, content in (("hostname", hostname + "\n"), ("hosts", HOSTS), ("resolv.conf", "")):
        path = os.path.join(etc, name)
        if os.path.islink(path):
            continue
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(path, 0o644)


def export_rootfs(engine, image, dest, progress=None):
    """Export ``image``'s filesystem into ``dest`` through a never-started container. Returns bytes streamed."""
    api = engine.api
    os.makedirs(dest, exist_ok=True)
    container = api.create_container(image, command=["/bin/sh"], labels={"io.edgeforge.role": "rootfs-export"})
    cid = container["Id"]
    streamed = 0
    try:
        proc = subprocess.Popen(["tar", "-x", "-C", dest, "--numeric-owner", "-p", "--xattrs",
                                 "--xattrs-include=*"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        next_report = 256 * MIB
        try:
            for chunk in api.export(cid, chunk_size=4 * MIB):
                proc.stdin.write(chunk)
                streamed += len(chunk)
                if progress and streamed >= next_report:
                    progress("export %s: %d MiB" % (image, streamed // MIB))
                    next_report += 256 * MIB
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        if proc.wait() != 0:
            raise DiskBuildError("extracting the filesystem of %s failed: %s" % (image, err.strip()[-2000:]))
    finally:
        try:
            api.remove_container(cid, force=True)
        except Exception:  # pylint: disable=broad-except
            pass
    fix_exported_rootfs(dest)
    if progress:
        progress("export %s: done, %d MiB" % (image, streamed // MIB))
    return streamed


# ---------------------------------------------------------------------------------------------- builder
def builder_recipe_digest(base_image=DEFAULT_BUILDER_BASE):
    return hashlib.sha256((BUILDER_DOCKERFILE + "\n" + base_image).encode("utf-8")).hexdigest()


def builder_tag(base_image=DEFAULT_BUILDER_BASE):
    return "%s:%s" % (BUILDER_REPOSITORY, builder_recipe_digest(base_image)[:12])


def ensure_builder_image(engine, base_image=DEFAULT_BUILDER_BASE, proxies=None, log_path=None, progress=None):
    """Build the builder image unless one with the same recipe label exists. Returns (tag, built?)."""
    tag = builder_tag(base_image)
    digest = builder_recipe_digest(base_image)
    found = engine.image(tag)
    if found and ((found.get("Config") or {}).get("Labels") or {}).get(BUILDER_LABEL) == digest:
        return tag, False
    if progress:
        progress("building the disk builder image %s from %s" % (tag, base_image))
    context = tempfile.mkdtemp(prefix="edgeforge-builder-")
    try:
        with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
            handle.write(BUILDER_DOCKERFILE)
        buildargs = {"BASE_IMAGE": base_image}
        for key, value in (proxies or {}).items():
            if value:
                buildargs[key] = value
        engine.build(context, tag, buildargs=buildargs, labels={BUILDER_LABEL: digest}, log_path=log_path,
                     progress=progress, label="disk builder")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag, True


def _remove_container(api, cid):
    try:
        api.remove_container(cid, force=True)
    except Exception:  # pylint: disable=broad-except
        pass


class ScriptRunner:
    """Runs a generated script in the builder container (default) or on the host; keeps the output's last lines."""

    def __init__(self, mode="container", engine=None, image=None, progress=None, timeout=7200):
        self.mode = mode
        self.engine = engine
        self.image = image
        self.progress = progress
        self.timeout = timeout
        self.removers = []

    def join(self):
        """Wait for the background container removals (call before returning to the user)."""
        for remover in self.removers:
            remover.join(timeout=60)
        self.removers = []

    def run(self, script_path, mounts, log_path=None):
        """``mounts``: {host_path: (container_path, "ro"|"rw")}; the script must use container paths."""
        tail = []
        if log_path:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        log = open(log_path, "a", encoding="utf-8") if log_path else None  # pylint: disable=consider-using-with

        def line_out(line):
            line = line.rstrip("\n")
            if line == "edgeforge-alive":
                return
            tail.append(line)
            del tail[:-40]
            if log:
                log.write(line + "\n")
                log.flush()
            if self.progress and line.startswith("edgeforge-step: "):
                self.progress("build step: %s" % line[len("edgeforge-step: "):])

        try:
            if self.mode == "host":
                proc = subprocess.Popen(["bash", script_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        universal_newlines=True)
                for line in proc.stdout:
                    line_out(line)
                code = proc.wait()
            else:
                code = self._run_container(script_path, mounts, line_out)
        finally:
            if log:
                log.close()
        if code != 0:
            step = next((t for t in reversed(tail) if t.startswith("edgeforge-step: ")), "edgeforge-step: start")
            raise DiskBuildError("the disk build failed at step '%s' (exit code %s); last lines:\n%s" % (
                step[len("edgeforge-step: "):], code, "\n".join(tail[-20:])))

    def _run_container(self, script_path, mounts, line_out):
        api = self.engine.api
        binds = {host: {"bind": target, "mode": mode} for host, (target, mode) in mounts.items()}
        host_config = api.create_host_config(binds=binds)
        container = api.create_container(self.image, command=["/bin/bash", script_path], host_config=host_config,
                                         labels={"io.edgeforge.role": "disk-build"}, working_dir="/")
        cid = container["Id"]
        try:
            api.start(cid)
            buffer = ""
            for chunk in api.logs(cid, stream=True, follow=True):
                buffer += chunk.decode("utf-8", "replace")
                while "\n" in buffer:
                    line, buffer = buffer.split("\n", 1)
                    line_out(line)
            if buffer:
                line_out(buffer)
            result = api.wait(cid, timeout=self.timeout)
            return result.get("StatusCode", 1)
        finally:
            # the container has stopped (or failed to start): remove it without keeping the build waiting
            remover = threading.Thread(target=_remove_container, args=(api, cid))
            remover.start()
            self.removers.append(remover)


# ---------------------------------------------------------------------------------------------- requests
class IsoRequest:
    """Everything an ISO build needs, validated at construction (nothing is written before that)."""

    def __init__(self, installer_image, build_dir, iso_name=DEFAULT_ISO_NAME, user_data=None, content_dirs=None,
                 clusterconfig=None, edge_custom_config=None, force_interactive_install=False, debug=False,
                 grub_timeout=5, extra_cmdline="", kernel_path=None, initrd_path=None, squashfs_level=DEFAULT_SQUASHFS_LEVEL,
                 content_part_bytes=CONTENT_PART_BYTES):
        if not installer_image:
            raise ValidationError("installer_image", installer_image, "the installer image reference is required")
        self.installer_image = installer_image
        self.iso_name = validate_name("iso_name", iso_name or DEFAULT_ISO_NAME)
        if not build_dir:
            raise ValidationError("build_dir", build_dir, "a directory path is required")
        self.build_dir = os.path.abspath(os.path.expanduser(build_dir))
        if os.path.exists(self.build_dir) and not os.path.isdir(self.build_dir):
            raise ValidationError("build_dir", self.build_dir, "must be a directory")
        self.user_data = check_file("user_data", user_data, "the user-data file")
        self.clusterconfig = check_file("clusterconfig", clusterconfig, "the cluster definition (spc.tgz)")
        self.edge_custom_config = check_file("edge_custom_config", edge_custom_config, "the edge custom config")
        self.bundles = find_bundles(content_dirs, (".zst",))
        self.part_bytes = int(content_part_bytes)
        if self.part_bytes < MIB or self.part_bytes >= 4 * 1024 ** 3:
            raise ValidationError("content_part_bytes", content_part_bytes, "between 1 MiB and 4 GiB - 1")
        self.parts = content_parts(self.bundles, self.part_bytes)
        self.force_interactive_install = bool(force_interactive_install)
        self.debug = bool(debug)
        self.grub_timeout = int(grub_timeout)
        if self.grub_timeout < 0 or self.grub_timeout > 600:
            raise ValidationError("grub_timeout", grub_timeout, "0-600 seconds")
        self.extra_cmdline = extra_cmdline or ""
        if "\n" in self.extra_cmdline or '"' in self.extra_cmdline:
            raise ValidationError("extra_cmdline", extra_cmdline, "kernel arguments on one line, without quotes")
        self.kernel_path = kernel_path
        self.initrd_path = initrd_path
        self.squashfs_level = squashfs_level

    @property
    def output(self):
        return os.path.join(self.build_dir, self.iso_name + ".iso")

    def grub_cfg(self):
        return iso_grub_cfg(2 if self.force_interactive_install else 0, self.grub_timeout, self.debug,
                            self.extra_cmdline)

    def digest(self, image_id, builder):
        return inputs_digest({
            "kind": "iso", "format": 1, "image": image_id, "name": self.iso_name, "grub": self.grub_cfg(),
            "user_data": file_fingerprint(self.user_data), "clusterconfig": file_fingerprint(self.clusterconfig),
            "edge_custom_config": file_fingerprint(self.edge_custom_config),
            "bundles": [(b["name"], file_fingerprint(b["path"])) for b in self.bundles], "part_bytes": self.part_bytes,
            "kernel": self.kernel_path, "initrd": self.initrd_path, "squashfs_level": self.squashfs_level,
            "builder": builder, "recipe": builder_recipe_digest() if builder == "container" else "host"})


class RawRequest:
    """A raw disk image build, validated at construction."""

    def __init__(self, installer_image, build_dir, raw_name=DEFAULT_ISO_NAME, user_data=None, content_dirs=None,
                 clusterconfig=None, edge_custom_config=None, debug=False, grub_timeout=5, extra_cmdline="",
                 kernel_path=None, initrd_path=None, squashfs_level=DEFAULT_SQUASHFS_LEVEL, bios_boot=True, default_entry="recovery"):
        if not installer_image:
            raise ValidationError("installer_image", installer_image, "the installer image reference is required")
        self.installer_image = installer_image
        self.raw_name = validate_name("raw_name", raw_name or DEFAULT_ISO_NAME)
        self.build_dir = os.path.abspath(os.path.expanduser(build_dir))
        if os.path.exists(self.build_dir) and not os.path.isdir(self.build_dir):
            raise ValidationError("build_dir", self.build_dir, "must be a directory")
        self.user_data = check_file("user_data", user_data, "the user-data file")
        self.clusterconfig = check_file("clusterconfig", clusterconfig, "the cluster definition (spc.tgz)")
        self.edge_custom_config = check_file("edge_custom_config", edge_custom_config, "the edge custom config")
        self.bundles = find_bundles(content_dirs, (".zst", ".tar"))
        self.debug = bool(debug)
        self.grub_timeout = int(grub_timeout)
        self.extra_cmdline = extra_cmdline or ""
        if "\n" in self.extra_cmdline or '"' in self.extra_cmdline:
            raise ValidationError("extra_cmdline", extra_cmdline, "kernel arguments on one line, without quotes")
        self.kernel_path = kernel_path
        self.initrd_path = initrd_path
        self.squashfs_level = squashfs_level
        self.bios_boot = bool(bios_boot)
        if default_entry not in ("recovery", "reset"):
            raise ValidationError("default_entry", default_entry, "one of recovery, reset")
        self.default_entry = default_entry

    @property
    def output(self):
        return os.path.join(self.build_dir, self.raw_name + ".raw")

    def grub_cfg(self):
        return raw_grub_cfg(1 if self.default_entry == "reset" else 0, self.grub_timeout, self.debug,
                            self.extra_cmdline)

    def content_bytes(self):
        total = sum(b["size"] for b in self.bundles)
        for path in (self.clusterconfig, self.edge_custom_config):
            if path:
                total += os.path.getsize(path)
        return total if (self.bundles or self.clusterconfig or self.edge_custom_config) else 0

    def digest(self, image_id, builder):
        return inputs_digest({
            "kind": "raw", "format": 1, "image": image_id, "name": self.raw_name, "grub": self.grub_cfg(),
            "user_data": file_fingerprint(self.user_data), "clusterconfig": file_fingerprint(self.clusterconfig),
            "edge_custom_config": file_fingerprint(self.edge_custom_config),
            "bundles": [(b["name"], file_fingerprint(b["path"])) for b in self.bundles],
            "kernel": self.kernel_path, "initrd": self.initrd_path, "squashfs_level": self.squashfs_level,
            "bios_boot": self.bios_boot, "builder": builder,
            "recipe": builder_recipe_digest() if builder == "container" else "host"})


# ---------------------------------------------------------------------------------------------- orchestration
class DiskBuilder:
    """Builds ISO and raw images. ``engine``: a docker_engine.DockerEngine (needed for the export and the builder)."""

    def __init__(self, engine, builder="container", builder_base_image=DEFAULT_BUILDER_BASE, proxies=None,
                 progress=None, keep_work=False):
        if builder not in BUILDERS:
            raise ValidationError("builder", builder, "one of %s" % ", ".join(BUILDERS))
        if builder == "auroraboot":
            raise ValidationError("builder", builder, "auroraboot runs the upstream AuroraBoot image and is only "
                                  "available through the role's documented command (it cannot be tested offline); "
                                  "use container (default) or host")
        self.engine = engine
        self.builder = builder
        self.builder_base_image = builder_base_image or DEFAULT_BUILDER_BASE
        self.proxies = proxies or {}
        self.progress = progress or (lambda message: None)
        self.keep_work = keep_work

    # -- helpers
    def image_id(self, reference):
        found = self.engine.image(reference)
        if not found:
            raise MissingImageError("the installer image %s is not in the Docker engine; build it first "
                                    "(edgeforge.artifacts.provider_image builds palette-installer-image:<tag>)"
                                    % reference)
        return found["Id"]

    def _work_dir(self, build_dir, name):
        # beside the output (same filesystem: the exported root filesystem is large), hidden, removed afterwards
        return tempfile.mkdtemp(prefix=".edgeforge-work-%s-" % name, dir=build_dir)

    def _log_path(self, build_dir, name):
        return os.path.join(build_dir, "logs", "%s.build.log" % name)

    def _runner(self, log_path):
        if self.builder == "host":
            return ScriptRunner("host", progress=self.progress)
        image, _built = ensure_builder_image(self.engine, self.builder_base_image, self.proxies, log_path,
                                             self.progress)
        return ScriptRunner("container", engine=self.engine, image=image, progress=self.progress)

    def _paths(self, work, output_tmp, extra_dirs):
        """Script paths and bind mounts. Container: /work, /out, /content/N; host: the real paths."""
        if self.builder == "host":
            return {"work": work, "out": os.path.dirname(output_tmp), "output": output_tmp,
                    "content": {d: d for d in extra_dirs}}, {}
        mounts = {work: ("/work", "rw"), os.path.dirname(output_tmp): ("/out", "rw")}
        content = {}
        for index, directory in enumerate(extra_dirs):
            content[directory] = "/content/%d" % index
            mounts[directory] = (content[directory], "ro")
        return {"work": "/work", "out": "/out", "output": "/out/" + os.path.basename(output_tmp),
                "content": content}, mounts

    # -- ISO
    def iso_plan(self, request):
        image_id = self.image_id(request.installer_image)
        digest = request.digest(image_id, self.builder)
        return image_id, digest, up_to_date(request.output, digest)

    def build_iso(self, request, check_mode=False, force=False, rootfs=None):
        """Build the ISO. ``rootfs``: an already exported tree of the installer image to use (kept as it is)."""
        image_id, digest, current = self.iso_plan(request)
        result = {"iso_path": request.output, "sha256_path": request.output + ".sha256", "inputs_digest": digest,
                  "content_parts": [{"name": p["name"], "size": p["length"]} for p in request.parts]}
        if current and not force:
            result.update(changed=False, sha256=read_sha256_file(request.output + ".sha256"),
                          size=os.path.getsize(request.output))
            return result
        result["changed"] = True
        if check_mode:
            return result
        os.makedirs(request.build_dir, exist_ok=True)
        log_path = self._log_path(request.build_dir, request.iso_name + ".iso")
        work = self._work_dir(request.build_dir, request.iso_name)
        started = time.time()
        runner = None
        try:
            runner = self._runner(log_path)
            mounts_extra = []
            if rootfs:
                rootfs = os.path.abspath(rootfs)
                mounts_extra.append(rootfs)
            else:
                rootfs = os.path.join(work, "rootfs")
                self.progress("exporting the filesystem of %s" % request.installer_image)
                export_rootfs(self.engine, request.installer_image, rootfs, self.progress)
            boot_files = find_boot_files(rootfs, request.kernel_path, request.initrd_path)
            (kernel_rel, kernel), (initrd_rel, initrd) = boot_files
            stage = os.path.join(work, "iso")
            grub = os.path.join(work, "grub")
            for directory in (os.path.join(stage, "boot", "grub"), grub):
                os.makedirs(directory, exist_ok=True)
            shutil.copyfile(kernel, os.path.join(stage, "boot", "kernel"))
            shutil.copyfile(initrd, os.path.join(stage, "boot", "initrd"))
            with open(os.path.join(stage, "boot", "grub", "grub.cfg"), "w", encoding="utf-8") as handle:
                handle.write(request.grub_cfg())
            if request.user_data:
                shutil.copyfile(request.user_data, os.path.join(stage, "config.yaml"))
                os.chmod(os.path.join(stage, "config.yaml"), 0o600)
            if request.edge_custom_config:
                shutil.copyfile(request.edge_custom_config, os.path.join(stage, ".edge_custom_config.yaml"))
            if request.clusterconfig:
                os.makedirs(os.path.join(stage, "opt", "spectrocloud", "clusterconfig"), exist_ok=True)
                shutil.copyfile(request.clusterconfig, os.path.join(stage, "opt", "spectrocloud", "clusterconfig",
                                                                    "spc.tgz"))
            date_value, uuid = iso_uuid_date()
            with open(os.path.join(grub, "early-bios.cfg"), "w", encoding="utf-8") as handle:
                handle.write(early_grub_cfg("--fs-uuid %s" % uuid, "/boot/grub"))
            with open(os.path.join(grub, "early-efi.cfg"), "w", encoding="utf-8") as handle:
                handle.write(early_grub_cfg("--fs-uuid %s" % uuid, "/boot/grub", chain=True))
            tmp_output = os.path.join(request.build_dir, ".%s.iso.%s.partial" % (
                request.iso_name, os.path.basename(work).rsplit("-", 1)[-1]))
            paths, mounts = self._paths(work, tmp_output, sorted({p["dir"] for p in request.parts}) + mounts_extra)
            w = paths["work"]
            parts = [dict(p, src="%s/%s" % (paths["content"][p["dir"]], os.path.basename(p["path"])))
                     for p in request.parts]
            tree = paths["content"][rootfs] if mounts_extra else w + "/rootfs"
            script = iso_script({"rootfs": tree, "stage": w + "/iso", "grub": w + "/grub",
                                 "output": paths["output"], "grub_lib": "/usr/lib/grub"}, date_value, parts,
                                request.squashfs_level)
            with open(os.path.join(work, "build.sh"), "w", encoding="utf-8") as handle:
                handle.write(script)
            self.progress("building %s (kernel %s, initrd %s, %d content parts)" % (
                os.path.basename(request.output), kernel_rel, initrd_rel, len(parts)))
            try:
                runner.run(w + "/build.sh", mounts, log_path)
                if not os.path.isfile(tmp_output) or os.path.getsize(tmp_output) == 0:
                    raise DiskBuildError("the ISO build produced no file")
                checksum = sha256_file(tmp_output)  # what is on disk, read back once
                os.replace(tmp_output, request.output)
            finally:
                if os.path.exists(tmp_output):
                    os.unlink(tmp_output)
            atomic_write(request.output + ".sha256", sha256_line(checksum, os.path.basename(request.output)))
            atomic_write(stamp_path(request.output), json.dumps({"inputs": digest, "sha256": checksum},
                                                                sort_keys=True) + "\n")
            if read_sha256_file(request.output + ".sha256") != checksum:
                raise DiskBuildError("the checksum file %s.sha256 could not be written correctly" % request.output)
        finally:
            if not self.keep_work:
                shutil.rmtree(work, ignore_errors=True)
            if runner:
                runner.join()
        result.update(sha256=checksum, size=os.path.getsize(request.output), seconds=round(time.time() - started, 1),
                      kernel=kernel_rel, initrd=initrd_rel, log_path=log_path)
        self.progress("%s: sha256 %s" % (request.output, checksum))
        return result

    # -- raw
    def build_raw(self, request, check_mode=False, force=False):
        image_id = self.image_id(request.installer_image)
        digest = request.digest(image_id, self.builder)
        result = {"raw_path": request.output, "sha256_path": request.output + ".sha256", "inputs_digest": digest}
        if up_to_date(request.output, digest) and not force:
            result.update(changed=False, sha256=read_sha256_file(request.output + ".sha256"),
                          size=os.path.getsize(request.output), allocated=allocated_bytes(request.output))
            return result
        result["changed"] = True
        if check_mode:
            return result
        os.makedirs(request.build_dir, exist_ok=True)
        log_path = self._log_path(request.build_dir, request.raw_name + ".raw")
        work = self._work_dir(request.build_dir, request.raw_name)
        started = time.time()
        runner = None
        try:
            runner = self._runner(log_path)
            rootfs = os.path.join(work, "rootfs")
            self.progress("exporting the filesystem of %s" % request.installer_image)
            export_rootfs(self.engine, request.installer_image, rootfs, self.progress)
            boot_files = find_boot_files(rootfs, request.kernel_path, request.initrd_path)
            (kernel_rel, kernel), (initrd_rel, initrd) = boot_files
            grub = os.path.join(work, "grub")
            cos = os.path.join(work, "recovery", "cOS")
            grub2 = os.path.join(work, "recovery", "grub2")
            oem = os.path.join(work, "oem")
            for directory in (grub, cos, grub2, oem):
                os.makedirs(directory, exist_ok=True)
            shutil.copyfile(kernel, os.path.join(cos, "vmlinuz"))
            shutil.copyfile(initrd, os.path.join(cos, "initrd"))
            with open(os.path.join(grub2, "grub.cfg"), "w", encoding="utf-8") as handle:
                handle.write(request.grub_cfg())
            with open(os.path.join(grub, "early-bios.cfg"), "w", encoding="utf-8") as handle:
                handle.write(early_grub_cfg("--label COS_RECOVERY", "/grub2"))
            with open(os.path.join(grub, "early-efi.cfg"), "w", encoding="utf-8") as handle:
                handle.write(early_grub_cfg("--label COS_RECOVERY", "/grub2", chain=True))
            user_data = os.path.join(oem, "90_custom.yaml")
            if request.user_data:
                shutil.copyfile(request.user_data, user_data)
            else:  # CanvOS: a config holding only the header keeps Kairos from inventing its own
                with open(user_data, "w", encoding="utf-8") as handle:
                    handle.write("#cloud-config\n")
            os.chmod(user_data, 0o600)
            content_bytes = request.content_bytes()
            if content_bytes:
                content = os.path.join(work, "content")
                for sub in ("bundle-content", "spc-config", "edge-config"):
                    os.makedirs(os.path.join(content, sub), exist_ok=True)
                for bundle in request.bundles:
                    _copy_sparse(bundle["path"], os.path.join(content, "bundle-content", bundle["name"]))
                if request.clusterconfig:
                    shutil.copyfile(request.clusterconfig, os.path.join(
                        content, "spc-config", os.path.basename(request.clusterconfig)))
                if request.edge_custom_config:
                    shutil.copyfile(request.edge_custom_config, os.path.join(
                        content, "edge-config", ".edge_custom_config.yaml"))
            tmp_output = os.path.join(request.build_dir, ".%s.raw.%s.partial" % (
                request.raw_name, os.path.basename(work).rsplit("-", 1)[-1]))
            paths, mounts = self._paths(work, tmp_output, [])
            w = paths["work"]
            script_paths = {"rootfs": w + "/rootfs", "work": w, "grub": w + "/grub", "output": paths["output"],
                            "grub_lib": "/usr/lib/grub"}
            with open(os.path.join(work, "prepare.sh"), "w", encoding="utf-8") as handle:
                handle.write(raw_prepare_script(script_paths, request.bios_boot, request.squashfs_level))
            self.progress("building %s (kernel %s, initrd %s)" % (os.path.basename(request.output), kernel_rel,
                                                                  initrd_rel))
            try:
                runner.run(w + "/prepare.sh", mounts, log_path)
                shutil.rmtree(rootfs, ignore_errors=True)
                layout = plan_raw_layout(os.path.getsize(os.path.join(grub, "BOOTX64.EFI")), _tree_bytes(oem),
                                         _tree_bytes(os.path.join(work, "recovery")), content_bytes,
                                         request.bios_boot)
                with open(os.path.join(work, "sfdisk.txt"), "w", encoding="utf-8") as handle:
                    handle.write(sfdisk_script(layout))
                with open(os.path.join(work, "assemble.sh"), "w", encoding="utf-8") as handle:
                    handle.write(raw_assemble_script(script_paths, layout))
                self.progress("assembling a %d MiB disk" % (layout["size"] // MIB))
                runner.run(w + "/assemble.sh", mounts, log_path)
                if request.bios_boot:
                    bios = next(p for p in layout["partitions"] if p["name"] == "bios")
                    with open(os.path.join(grub, "boot.img"), "rb") as handle:
                        boot_img = handle.read()
                    with open(os.path.join(grub, "core.img"), "rb") as handle:
                        core_img = handle.read()
                    install_bios_boot(tmp_output, boot_img, core_img, bios["start"])
                checksum = sha256_file(tmp_output)
                os.replace(tmp_output, request.output)
            finally:
                if os.path.exists(tmp_output):
                    os.unlink(tmp_output)
            atomic_write(request.output + ".sha256", sha256_line(checksum, os.path.basename(request.output)))
            atomic_write(stamp_path(request.output), json.dumps({"inputs": digest, "sha256": checksum},
                                                                sort_keys=True) + "\n")
            verify_checksum_file(request.output)
        finally:
            if not self.keep_work:
                shutil.rmtree(work, ignore_errors=True)
            if runner:
                runner.join()
        result.update(sha256=checksum, size=os.path.getsize(request.output),
                      allocated=allocated_bytes(request.output), seconds=round(time.time() - started, 1),
                      partitions=[{k: p[k] for k in ("number", "name", "start", "size", "type")}
                                  for p in layout["partitions"]],
                      kernel=kernel_rel, initrd=initrd_rel, log_path=log_path)
        return result


def _tree_bytes(root):
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


def _copy_sparse(src, dst):
    """Copy keeping holes (cp --sparse=always); a sparse test bundle stays small on disk."""
    try:
        subprocess.run(["cp", "--sparse=always", src, dst], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.copyfile(src, dst)
