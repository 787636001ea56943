"""Secure Boot: the EFI partition planned by boot_chain from the installer image's own signed shim and GRUB starts
under OVMF's Secure Boot firmware (Microsoft's keys enrolled) and the guest kernel reports Secure Boot enabled; the
same firmware refuses the builder's own unsigned GRUB, so the check can fail. Plus the arm64 boot chain, checked
structurally on Debian's arm64 packages (unpacked, never executed).

The media: the raw disk image and the ISO the raw_disk_image and installer_iso modules build from the stand-in
installer image (their EFI partitions come from boot_chain's plan), and for the refusal a copy of the raw disk whose
EFI partition holds the builder's own unsigned GRUB. The boots run two at a time, one emulated CPU each; a boot with
software emulation takes about a minute on an idle 2-core machine and more than 15 under a load average of 15-20 (see
benchmarks/RESULTS.md): the timeout is EDGEFORGE_SECURE_BOOT_TIMEOUT seconds (default 1800).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import docker
import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_chain
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.grub import efi_standalone_command
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.menu import early_grub_cfg
from tests.integration.disk_artifacts import built_iso, built_raw, installer_image, run_module

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = int(os.environ.get("EDGEFORGE_SECURE_BOOT_TIMEOUT", "1800"))
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MIB = 1024 * 1024
# where a Kairos image keeps its EFI binaries (every directory of the 5.10 search lists)
EFI_DIRS = ("/usr/lib/shim", "/usr/lib/grub/x86_64-efi-signed", "/usr/share/efi", "/boot/efi")
MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def copy_boot_files(client, image, rootfs):
    """The EFI directories of ``image``'s filesystem into ``rootfs`` (docker cp of a few directories, not an export)."""
    container = client.containers.create(image, command=["/bin/true"])
    try:
        for path in EFI_DIRS:
            try:
                chunks, _stat = container.get_archive(path)
            except docker.errors.NotFound:
                continue
            parent = os.path.join(rootfs, os.path.dirname(path).lstrip("/"))
            os.makedirs(parent, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                archive.extractall(parent, filter="tar")
    finally:
        container.remove(force=True)
    return rootfs


def esp_partition(disk):
    """(byte offset, byte size) of the EFI system partition of a GPT disk image (read with sfdisk, no loop device)."""
    table = json.loads(subprocess.run(["sfdisk", "--json", disk], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    sector = table.get("sectorsize", 512)
    part = next(p for p in table["partitions"] if p["type"].upper() == ESP_TYPE)
    return part["start"] * sector, part["size"] * sector


def disk_with_esp(source, plan, dest, work):
    """A sparse copy of the disk ``source`` whose EFI partition is the FAT image of ``plan``."""
    offset, size = esp_partition(source)
    subprocess.run(["cp", "--sparse=always", source, dest], check=True)
    esp = os.path.join(work, os.path.basename(dest) + ".esp")
    boot_chain.write_esp_image(plan, esp, size=size, label="COS_GRUB")
    subprocess.run(["dd", "if=%s" % esp, "of=%s" % dest, "bs=1M", "seek=%d" % (offset // MIB), "conv=notrunc,sparse",
                    "status=none"], check=True)
    os.unlink(esp)
    return dest


def mtools_read(disk, offset, path):
    return subprocess.run(["mtype", "-i", "%s@@%d" % (disk, offset), "::/" + path], capture_output=True, check=True,
                          env=MTOOLS_ENV).stdout


def pe_machine(data):
    """The machine field of a PE/COFF image (0x8664 x86_64, 0xaa64 arm64)."""
    pe = int.from_bytes(data[0x3c:0x40], "little")
    assert data[pe:pe + 4] == b"PE\0\0"
    return int.from_bytes(data[pe + 4:pe + 6], "little")


def builder_grub(work):
    """The builder's own unsigned GRUB (the fallback loader of the ISO and raw builds), made here with the host's
    grub-efi-amd64-bin as the builds make it: the built artifacts now carry the image's signed shim instead."""
    if not os.path.isdir("/usr/lib/grub/x86_64-efi") or not shutil.which("grub-mkstandalone"):
        pytest.skip("grub-efi-amd64-bin (scripts/install-deps.sh) makes the builder's own GRUB")
    early = os.path.join(work, "early-efi.cfg")
    with open(early, "w", encoding="utf-8") as handle:
        handle.write(early_grub_cfg("--label COS_RECOVERY", "/grub2", chain=True))
    own_grub = os.path.join(work, "builder-grub.efi")
    subprocess.run(["bash", "-c", efi_standalone_command("/usr/lib/grub", own_grub, early)], check=True,
                   capture_output=True)
    return own_grub


@pytest.fixture(scope="module")
def disks(docker_engine, standin_images, tmp_path_factory):
    raw = built_raw(docker_engine, standin_images, tmp_path_factory)
    iso = built_iso(docker_engine, standin_images, tmp_path_factory)
    assert not raw["result"].get("failed"), raw["result"].get("msg")
    assert not iso["result"].get("failed"), iso["result"].get("msg")
    source = raw["result"]["raw_path"]
    work = str(tmp_path_factory.mktemp("secure-boot"))
    rootfs = copy_boot_files(docker_engine.client, installer_image(docker_engine, standin_images),
                             os.path.join(work, "rootfs"))
    signed_plan = boot_chain.plan_esp(rootfs, "amd64", "COS_RECOVERY", "/grub2/grub.cfg")
    offset, _size = esp_partition(source)
    bare_rootfs = os.path.join(work, "bare-rootfs")  # a root filesystem without any EFI binary
    os.makedirs(bare_rootfs)
    unsigned_plan = boot_chain.plan_esp(bare_rootfs, "amd64", "COS_RECOVERY", "/grub2/grub.cfg",
                                        fallback_loader=builder_grub(work))
    return {
        "rootfs": rootfs, "signed_plan": signed_plan, "unsigned_plan": unsigned_plan, "offset": offset,
        # the raw disk and the ISO as the modules built them: their EFI partitions are the image's signed chain
        "signed": source, "iso": iso["result"]["iso_path"],
        "unsigned": disk_with_esp(source, unsigned_plan, os.path.join(work, "unsigned.raw"), work),
    }


def test_the_esp_holds_the_images_signed_shim_and_grub_and_both_configurations(disks):
    plan, disk, offset, rootfs = disks["signed_plan"], disks["signed"], disks["offset"], disks["rootfs"]
    assert plan["signed"] and plan["warnings"] == []
    assert (plan["shim"], plan["grub"]) == ("/usr/lib/shim/shimx64.efi.signed",
                                            "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
    listing = subprocess.run(["mdir", "-/", "-b", "-i", "%s@@%d" % (disk, offset), "::"], capture_output=True,
                             text=True, check=True, env=MTOOLS_ENV).stdout.split()
    assert sorted(p.lower() for p in listing if p.endswith((".efi", ".cfg"))) == [
        "::/efi/boot/bootx64.efi", "::/efi/boot/grub.cfg", "::/efi/boot/grubx64.efi", "::/efi/ubuntu/grub.cfg"]
    shim = mtools_read(disk, offset, "EFI/BOOT/bootx64.efi")
    grub = mtools_read(disk, offset, "EFI/BOOT/grubx64.efi")
    with open(os.path.join(rootfs, "usr/lib/shim/shimx64.efi.signed"), "rb") as handle:
        assert shim == handle.read()
    with open(os.path.join(rootfs, "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"), "rb") as handle:
        assert grub == handle.read()
    assert pe_machine(shim) == pe_machine(grub) == 0x8664
    config = boot_chain.chain_config("COS_RECOVERY", "/grub2/grub.cfg").encode()
    assert mtools_read(disk, offset, "EFI/BOOT/grub.cfg") == mtools_read(disk, offset, "EFI/ubuntu/grub.cfg") == config
    if shutil.which("sbverify"):  # sbsigntool (scripts/install-deps.sh): who signed what
        signers = {}
        for name, data in (("shim", shim), ("grub", grub)):
            path = os.path.join(disks["rootfs"], name + ".efi")
            with open(path, "wb") as handle:
                handle.write(data)
            signers[name] = subprocess.run(["sbverify", "--list", path], capture_output=True, text=True,
                                           check=False).stdout
        assert "Microsoft Corporation UEFI CA" in signers["shim"], signers["shim"]
        assert "Debian Secure Boot" in signers["grub"], signers["grub"]


def test_without_a_signed_pair_the_plan_warns_about_secure_boot(disks):
    plan = disks["unsigned_plan"]
    assert not plan["signed"] and "Secure Boot enabled refuse" in plan["warnings"][0]


def _boot(tmp_dir, disk, marker, timeout):
    started = time.monotonic()
    result, proc = run_module(tmp_dir, "boot_check", {
        "path": disk, "secure_boot": True, "marker": marker, "timeout": timeout, "cpus": 1,
        "log_path": os.path.join(str(tmp_dir), "console.log")})
    with open(os.path.join(str(tmp_dir), "console.log"), encoding="utf-8", errors="replace") as handle:
        console = handle.read()
    return {"result": result, "proc": proc, "console": console, "elapsed": time.monotonic() - started}


@pytest.fixture(scope="module")
def boots(disks, tmp_path_factory):
    base = tmp_path_factory.mktemp("secure-boots")
    plans = {"signed": ("login:", BOOT_TIMEOUT), "iso": ("login:", BOOT_TIMEOUT),
             "unsigned": ("Access Denied", BOOT_TIMEOUT)}
    for name in plans:
        (base / name).mkdir()
    # two at a time, one emulated CPU each (the refused boot is short)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_boot, base / name, disks[name], marker, timeout)
                   for name, (marker, timeout) in plans.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", ["signed", "iso"])
def test_secure_boot_firmware_starts_the_built_artifacts(disks, boots, name):
    """The raw disk and the ISO as the modules built them (their EFI partitions hold the image's signed shim and
    GRUB, CONFORMANCE 5.10/5.11/6.4) start under Secure Boot and the guest kernel sees it enabled."""
    boot = boots[name]
    result, console = boot["result"], boot["console"]
    assert not result.get("failed"), result.get("msg", "") + boot["proc"].stdout[-2000:]
    assert result["secure_boot"] is True and result["firmware"] == "uefi"
    assert "q35,smm=on" in result["command"]
    assert "driver=cfi.pflash01,property=secure,value=on" in result["command"]
    assert "login:" in result["marker_line"]
    assert "secureboot: Secure boot enabled" in console  # the guest kernel saw Secure Boot on
    assert "Access Denied" not in console
    print("secure boot, built %s: %.1f s to the login prompt (%.1f s with ansible-playbook)" % (
        name, result["seconds"], boot["elapsed"]))


def test_secure_boot_firmware_refuses_the_unsigned_grub(disks, boots):
    boot = boots["unsigned"]
    result, console = boot["result"], boot["console"]
    assert not result.get("failed"), result.get("msg", "") + boot["proc"].stdout[-2000:]
    assert "Access Denied" in result["marker_line"]
    assert "Linux version" not in console and "login:" not in console  # no kernel ever started
    print("secure boot, unsigned GRUB: refused after %.1f s" % result["seconds"])


# ---------------------------------------------------------------------------------------------- arm64
ARM64_PACKAGES = ("shim-signed:arm64", "grub-efi-arm64-signed:arm64")


@pytest.fixture(scope="module")
def arm64_debs(tmp_path_factory):
    """Debian's arm64 signed shim and GRUB packages (apt-get download: fetched, never installed or executed)."""
    debs = tmp_path_factory.mktemp("arm64-debs")
    proc = subprocess.run(["apt-get", "download", *ARM64_PACKAGES], cwd=str(debs), capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode != 0:
        pytest.skip("apt cannot fetch %s (scripts/install-deps.sh adds the arm64 architecture to apt): %s"
                    % (" ".join(ARM64_PACKAGES), proc.stderr.strip()[-500:]))
    found = {deb.name.split("_")[0]: str(deb) for deb in debs.glob("*_arm64.deb")}
    assert sorted(found) == ["grub-efi-arm64-signed", "shim-signed"], found
    return found


def unpack(debs, rootfs):
    os.makedirs(rootfs, exist_ok=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", deb, rootfs], check=True)
    return rootfs


def test_arm64_esp_holds_bootaa64_and_the_arm64_grub(arm64_debs, tmp_path):
    rootfs = unpack(arm64_debs.values(), str(tmp_path / "rootfs"))
    plan = boot_chain.plan_esp(rootfs, "arm64", "COS_LIVE", "/boot/grub/grub.cfg")
    assert plan["signed"] and plan["shim"] == "/usr/lib/shim/shimaa64.efi.signed"
    assert plan["grub"] == "/usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed"
    image = str(tmp_path / "efi.img")
    boot_chain.write_esp_image(plan, image)
    listing = subprocess.run(["mdir", "-/", "-b", "-i", image, "::"], capture_output=True, text=True, check=True,
                             env=MTOOLS_ENV).stdout.split()
    assert sorted(p.lower() for p in listing if p.endswith((".efi", ".cfg"))) == [
        "::/efi/boot/bootaa64.efi", "::/efi/boot/grub.cfg", "::/efi/boot/grubaa64.efi", "::/efi/ubuntu/grub.cfg"]
    shim = mtools_read(image, 0, "EFI/BOOT/bootaa64.efi")
    grub = mtools_read(image, 0, "EFI/BOOT/grubaa64.efi")
    with open(os.path.join(rootfs, plan["shim"].lstrip("/")), "rb") as handle:
        assert shim == handle.read()
    with open(os.path.join(rootfs, plan["grub"].lstrip("/")), "rb") as handle:
        assert grub == handle.read()
    assert pe_machine(shim) == pe_machine(grub) == 0xaa64  # arm64 binaries, not the builder's x86 GRUB


def test_arm64_rootfs_without_the_signed_pair_is_refused(arm64_debs, tmp_path):
    own_grub = tmp_path / "BOOTX64.EFI"
    own_grub.write_bytes(b"the builder's x86 GRUB")
    rootfs = unpack([arm64_debs["grub-efi-arm64-signed"]], str(tmp_path / "rootfs"))  # GRUB but no shim
    with pytest.raises(boot_chain.BootChainError) as err:
        boot_chain.plan_esp(rootfs, "arm64", "COS_LIVE", "/boot/grub/grub.cfg", fallback_loader=str(own_grub))
    assert str(err.value).startswith("arm64:") and "refused" in str(err.value)
    assert "found only /usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed" in str(err.value)
