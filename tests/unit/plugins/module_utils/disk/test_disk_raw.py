"""The raw disk: partition plan, sfdisk input, build scripts, BIOS boot code written into a file."""

import struct
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import gpt
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import raw
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError


PATHS = {"rootfs": "/work/rootfs", "stage": "/work/iso", "grub": "/work/grub", "output": "/out/.x.iso.partial",
         "grub_lib": "/usr/lib/grub", "work": "/work"}


def test_raw_layout_alignment_and_sizes():
    mib = gpt.MIB
    layout = gpt.plan_raw_layout(5 * mib, 10 * 1024, 300 * mib, content_bytes=1000 * mib)
    parts = layout["partitions"]
    assert [p["name"] for p in parts] == ["efi", "oem", "recovery", "content", "bios"]
    assert [p["number"] for p in parts] == [1, 2, 3, 4, 5]
    assert parts[0]["start"] == 2048
    for first, second in zip(parts, parts[1:]):
        assert first["start"] + first["size"] == second["start"]
    for part in parts:
        assert part["start"] % 2048 == 0 and part["size"] % 2048 == 0
    assert parts[2]["bytes"] >= 300 * mib * 1.1
    assert parts[3]["bytes"] >= 1000 * mib * 1.2 + 100 * mib
    assert parts[4]["bytes"] == mib and parts[4]["type"] == gpt.GPT_BIOS_BOOT
    assert layout["size"] == parts[-1]["offset"] + parts[-1]["bytes"] + mib
    no_content = gpt.plan_raw_layout(5 * mib, 1, 300 * mib, 0, bios_boot=False)
    assert [p["name"] for p in no_content["partitions"]] == ["efi", "oem", "recovery"]


def test_sfdisk_script_and_raw_scripts(tmp_path):
    layout = gpt.plan_raw_layout(5 * gpt.MIB, 1, 100 * gpt.MIB, 0)
    text = gpt.sfdisk_script(layout)
    assert text.startswith("label: gpt\n")
    assert 'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="efi"' in text
    prep = raw.raw_prepare_script(PATHS)
    assert "/work/recovery/cOS/recovery.squashfs" in prep and "-O i386-pc " in prep
    assembled = raw.raw_assemble_script(PATHS, layout)
    assert "mkfs.vfat -C -n COS_GRUB /work/efi.img %d >/dev/null" % (layout["partitions"][0]["bytes"] // 1024) \
        in assembled
    assert "MTOOLS_SKIP_CHECK=1 mcopy -s -i /work/efi.img /work/esp/EFI ::/" in assembled  # disk.esp's staged tree
    assert "BOOTX64.EFI" not in assembled and "early-efi.cfg" not in assembled
    assert "mkfs.ext2 -q -F -L COS_OEM -d /work/oem" in assembled
    assert "mkfs.ext2 -q -F -L COS_RECOVERY -d /work/recovery" in assembled
    assert "COS_CONTENT" not in assembled
    assert "dd if=/work/recovery.img of=/out/.x.iso.partial bs=64K seek=%d conv=notrunc,sparse" % (
        layout["partitions"][2]["offset"] // 65536) in assembled
    for script in (prep, assembled):
        assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_install_bios_boot_patches_mbr_and_blocklist(tmp_path):
    disk = tmp_path / "disk.raw"
    mbr = bytearray(512)
    mbr[440:446] = b"SIGNAT"
    mbr[446:510] = b"P" * 64
    mbr[510:512] = b"\x55\xaa"
    disk.write_bytes(bytes(mbr) + b"\0" * (4 * 1024 * 1024))
    boot = bytearray(range(256)) * 2
    core = b"C" * 1000
    sectors = gpt.install_bios_boot(str(disk), bytes(boot), core, 4000)
    data = disk.read_bytes()
    assert sectors == 2
    assert data[0:3] == bytes(boot[0:3])
    assert data[0x03:0x5a] == b"\0" * (0x5a - 3)  # BPB kept from the disk
    assert struct.unpack("<Q", data[0x5c:0x64])[0] == 4000
    assert data[0x66:0x68] == b"\x90\x90"
    assert data[440:512] == bytes(mbr[440:512])  # signature, partition table, boot flag untouched
    core_on_disk = data[4000 * 512:4000 * 512 + 1024]
    assert struct.unpack("<QHH", core_on_disk[500:512]) == (4001, 1, 0x820)
    assert core_on_disk[512:1000] == b"C" * 488


def test_install_bios_boot_refuses_bad_inputs(tmp_path):
    disk = tmp_path / "d"
    disk.write_bytes(b"\0" * 4096)
    with pytest.raises(DiskBuildError):
        gpt.install_bios_boot(str(disk), b"x" * 100, b"c" * 512, 2)
    with pytest.raises(DiskBuildError, match="1 MiB"):
        gpt.install_bios_boot(str(disk), b"x" * 512, b"c" * (2 * 1024 * 1024), 2)
