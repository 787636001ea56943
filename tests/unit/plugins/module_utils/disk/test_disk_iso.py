"""The ISO build script and its volume date."""

import hashlib
import subprocess

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import iso
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import read_sha256_file


def test_iso_uuid_matches_modification_date():
    value, uuid = iso.iso_uuid_date(0)
    assert value == "1970010100000000" and uuid == "1970-01-01-00-00-00-00"


PATHS = {"rootfs": "/work/rootfs", "stage": "/work/iso", "grub": "/work/grub", "output": "/out/.x.iso.partial",
         "checksum": "/work/iso.sha256", "grub_lib": "/usr/lib/grub", "work": "/work", "esp": "/work/esp"}


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
    xorriso = next(line for line in script.splitlines() if line.startswith("{ xorriso "))
    for fragment in ("-V COS_LIVE -J -joliet-long", "--grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img",
                     "-b boot/x86_64/loader/eltorito.img", "--efi-boot boot/uefi.img",
                     "-efi-boot-part --efi-boot-image", "--protective-msdos-label", "-o - -r /work/iso",
                     "--modification-date=2024010100000000",
                     "-- -cut_out /content/0/big.zst 0 3000000000 /opt/spectrocloud/content/big.zst_part00",
                     "-cut_out /content/0/big.zst 3000000000 5 /opt/spectrocloud/content/big.zst_part01"):
        assert fragment in xorriso
    # written once: tee puts xorriso's stream in the temporary output and openssl hashes the same bytes
    assert "2>&3 | tee /out/.x.iso.partial | openssl dgst -sha256 -r >/work/iso.sha256; } 3>&1" in xorriso
    # the BIOS core image is made beside mksquashfs and waited for before the ISO is packed
    bios = script.index("-O i386-pc-eltorito")
    assert "-o /work/iso/boot/x86_64/loader/eltorito.img" in script and "-p /boot/grub2 " in script
    assert script[bios:].split("\n", 1)[0].endswith(" &")
    assert bios < script.index("mksquashfs") < script.index('wait "$bios_image"') < script.index("xorriso")
    assert script.index("uefi.img 3072") < script.index("mksquashfs") < script.index("xorriso")
    assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_iso_grub_script_makes_the_fallback_efi_grub():
    script = iso.iso_grub_script(PATHS)
    assert "-O x86_64-efi" in script and "i386-pc" not in script
    assert "-o /work/grub/BOOTX64.EFI" in script  # the fallback loader boot_chain plans without a signed pair
    assert "mksquashfs" not in script and "xorriso" not in script
    assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_iso_script_quotes_paths():
    paths = dict(PATHS, output="/out/it's here.iso")
    script = iso.iso_script(paths, "2024010100000000", [], 2 * 1024 * 1024)
    assert "'/out/it'\"'\"'s here.iso'" in script
    assert " -- " not in script.split("xorriso", 1)[1].split("\n", 1)[0]


def test_a_failed_bios_image_stops_the_build_before_the_iso(tmp_path):
    paths = dict(PATHS, stage=str(tmp_path / "iso"), grub=str(tmp_path / "grub"), grub_lib=str(tmp_path / "no-grub"))
    text = "\n".join(["set -euo pipefail"] + iso.bios_image_commands(paths) + ['wait "$bios_image"', "echo packed"])
    proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "packed" not in proc.stdout


def _run_pack_step(tmp_path, xorriso_body):
    """The script's ISO step with ``xorriso`` replaced by a shell function (what it writes to stdout and stderr)."""
    paths = dict(PATHS, output=str(tmp_path / "out.iso"), checksum=str(tmp_path / "iso.sha256"))
    step = next(line for line in iso.iso_script(paths, "2024010100000000", [], 2 * 1024 * 1024).splitlines()
                if "xorriso " in line)
    text = "set -euo pipefail\nxorriso() { %s; }\n%s\n" % (xorriso_body, step)
    return subprocess.run(["bash", "-c", text], capture_output=True, text=True, check=False), paths


def test_the_pack_step_writes_the_iso_and_its_checksum_and_keeps_xorriso_messages(tmp_path):
    proc, paths = _run_pack_step(tmp_path, "echo 'xorriso : UPDATE : 50%' >&2; echo 'a message' >&2; "
                                           "printf 'iso bytes'")
    assert proc.returncode == 0, proc.stderr
    assert open(paths["output"], "rb").read() == b"iso bytes"
    assert read_sha256_file(paths["checksum"]) == hashlib.sha256(b"iso bytes").hexdigest()
    assert proc.stdout.splitlines() == ["a message"]  # the progress lines are dropped, the rest kept


def test_the_pack_step_fails_when_xorriso_fails(tmp_path):
    proc, _paths = _run_pack_step(tmp_path, "echo 'xorriso : FAILURE : no space' >&2; printf 'half'; return 5")
    assert proc.returncode != 0
    assert "FAILURE : no space" in proc.stdout
