"""The ISO build script and its volume date."""

import subprocess

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import iso


def test_iso_uuid_matches_modification_date():
    value, uuid = iso.iso_uuid_date(0)
    assert value == "1970010100000000" and uuid == "1970-01-01-00-00-00-00"


PATHS = {"rootfs": "/work/rootfs", "stage": "/work/iso", "grub": "/work/grub", "output": "/out/.x.iso.partial",
         "grub_lib": "/usr/lib/grub", "work": "/work", "esp": "/work/esp"}


def test_iso_script_commands():
    parts = [{"src": "/content/0/big.zst", "offset": 0, "length": 3 * 10 ** 9, "name": "big.zst_part00"},
             {"src": "/content/0/big.zst", "offset": 3 * 10 ** 9, "length": 5, "name": "big.zst_part01"}]
    script = iso.iso_script(PATHS, "2024010100000000", parts, 3 * 1024 * 1024)
    assert "set -euo pipefail" in script
    assert "mksquashfs /work/rootfs /work/iso/rootfs.squashfs -noappend -no-progress -comp zstd" in script
    assert "-Xcompression-level 3" in script and "-processors $(nproc)" in script
    # the ESP: a FAT image of the planned size holding the staged tree (disk.esp), made before the ISO is packed
    assert "mkfs.vfat -C -n COS_GRUB /work/iso/boot/uefi.img 3072 >/dev/null" in script  # CONFORMANCE 5.4
    assert "MTOOLS_SKIP_CHECK=1 mcopy -s -i /work/iso/boot/uefi.img /work/esp/EFI ::/" in script
    assert "grub-mkstandalone" not in script and "BOOTX64.EFI" not in script
    xorriso = next(line for line in script.splitlines() if line.startswith("xorriso "))
    for fragment in ("-V COS_LIVE -J -joliet-long", "--grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img",
                     "-b boot/x86_64/loader/eltorito.img", "--efi-boot boot/uefi.img",
                     "-efi-boot-part --efi-boot-image", "--protective-msdos-label", "-o /out/.x.iso.partial",
                     "--modification-date=2024010100000000",
                     "-- -cut_out /content/0/big.zst 0 3000000000 /opt/spectrocloud/content/big.zst_part00",
                     "-cut_out /content/0/big.zst 3000000000 5 /opt/spectrocloud/content/big.zst_part01"):
        assert fragment in xorriso
    assert script.index("uefi.img 3072") < script.index("mksquashfs") < script.index("xorriso")
    assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_iso_grub_script_makes_the_bios_image_and_the_fallback_efi_grub():
    script = iso.iso_grub_script(PATHS)
    assert "-O i386-pc-eltorito" in script and "-O x86_64-efi" in script
    assert "-p /boot/grub2 " in script and "-o /work/iso/boot/x86_64/loader/eltorito.img" in script
    assert "-o /work/grub/BOOTX64.EFI" in script  # the fallback loader boot_chain plans without a signed pair
    assert "mksquashfs" not in script and "xorriso" not in script
    assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_iso_script_quotes_paths():
    paths = dict(PATHS, output="/out/it's here.iso")
    script = iso.iso_script(paths, "2024010100000000", [], 2 * 1024 * 1024)
    assert "'/out/it'\"'\"'s here.iso'" in script
    assert " -- " not in script.split("xorriso", 1)[1].split("\n", 1)[0]
