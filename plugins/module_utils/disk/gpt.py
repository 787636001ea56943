# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The raw disk's partition table, and GRUB's BIOS boot code written into a plain file (no loop device)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError

MIB = 1024 * 1024
SECTOR = 512
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_BIOS_BOOT = "21686148-6E49-6E6F-744E-656564454649"


def mib_up(value):
    """``value`` bytes rounded up to whole MiB."""
    return -(-int(value) // MIB) * MIB


def plan_raw_layout(esp_bytes, oem_bytes, recovery_bytes, content_bytes=0, bios_boot=True):
    """Partition table of the raw disk: list of dicts {number, name, start, size, type} in sectors, plus the size.

    1 MiB alignment; every partition is at least its data plus headroom; GPT backup needs the last 33 sectors.
    """
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


def read_gpt(path):
    """The partitions of a GPT disk image: [{"name", "start", "end"}] in bytes (end exclusive), in table order."""
    with open(path, "rb") as disk:
        disk.seek(SECTOR)
        header = disk.read(92)
        if len(header) < 92 or header[:8] != b"EFI PART":
            raise DiskBuildError("%s has no GPT header" % path)
        entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
        disk.seek(entries_lba * SECTOR)
        table = disk.read(count * entry_size)
    parts = []
    for index in range(len(table) // entry_size):
        entry = table[index * entry_size:(index + 1) * entry_size]
        if entry[:16] == b"\0" * 16:  # unused entry
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le").split("\0", 1)[0]
        parts.append({"name": name, "start": first * SECTOR, "end": (last + 1) * SECTOR})
    return parts
