"""The ESP wiring of the ISO and the raw disk (disk.esp): boot_chain's plan staged as a tree, the FAT image made by
the same shell commands the build scripts run."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_chain, esp

SHIM = "usr/lib/shim/shimx64.efi.signed"
GRUB = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def _file(root, rel, data):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


@pytest.fixture(name="fallback")
def fallback_loader(tmp_path):
    return _file(tmp_path, "grub/BOOTX64.EFI", b"the builder's own GRUB")


def test_signed_pair_is_planned_and_staged(tmp_path, fallback):
    rootfs = tmp_path / "rootfs"
    _file(rootfs, SHIM, b"signed shim")
    _file(rootfs, GRUB, b"signed grub")
    plan = esp.plan(str(rootfs), "COS_LIVE", "/boot/grub2/grub.cfg", fallback)
    assert plan["signed"] and plan["warnings"] == []
    assert not esp.needs_fallback(str(rootfs))  # the ISO build then skips making the builder's GRUB
    tree = esp.stage_tree(plan, str(tmp_path / "esp"))

    def read(rel):
        with open(os.path.join(tree, rel), "rb") as handle:
            return handle.read()
    assert read("EFI/BOOT/bootx64.efi") == b"signed shim" and read("EFI/BOOT/grubx64.efi") == b"signed grub"
    config = boot_chain.chain_config("COS_LIVE", "/boot/grub2/grub.cfg").encode()
    assert read("EFI/BOOT/grub.cfg") == read("EFI/ubuntu/grub.cfg") == config
    assert b"search --no-floppy --label COS_LIVE" in config and b"configfile ($root)/boot/grub2/grub.cfg" in config
    assert esp.summary(plan) == {"signed": True, "shim": "/" + SHIM, "grub": "/" + GRUB, "files": [
        "EFI/BOOT/bootx64.efi", "EFI/BOOT/grubx64.efi", "EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg"]}


def test_without_a_signed_pair_the_builders_grub_is_the_loader_with_a_warning(tmp_path, fallback):
    rootfs = tmp_path / "rootfs"
    _file(rootfs, SHIM, b"shim alone")
    plan = esp.plan(str(rootfs), "COS_RECOVERY", "/grub2/grub.cfg", fallback)
    assert not plan["signed"] and "Secure Boot enabled refuse" in plan["warnings"][0]
    assert esp.needs_fallback(str(rootfs))
    tree = esp.stage_tree(plan, str(tmp_path / "esp"))
    with open(os.path.join(tree, "EFI/BOOT/bootx64.efi"), "rb") as handle:
        assert handle.read() == b"the builder's own GRUB"
    assert not os.path.exists(os.path.join(tree, "EFI/BOOT/grubx64.efi"))


def test_arm64_without_a_signed_pair_is_refused(tmp_path, fallback):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with pytest.raises(boot_chain.BootChainError, match="^arm64: .*refused"):
        esp.plan(str(rootfs), "COS_LIVE", "/boot/grub2/grub.cfg", fallback, arch="arm64")


def test_stage_tree_replaces_an_earlier_tree(tmp_path, fallback):
    stale = _file(tmp_path, "esp/EFI/BOOT/stale.efi", b"x")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    esp.stage_tree(esp.plan(str(rootfs), "COS_LIVE", "/boot/grub2/grub.cfg", fallback), str(tmp_path / "esp"))
    assert not os.path.exists(stale)


@pytest.mark.skipif(not (shutil.which("mkfs.vfat") and shutil.which("mtype")), reason="dosfstools and mtools")
def test_image_commands_make_a_fat_image_holding_the_tree(tmp_path, fallback):
    rootfs = tmp_path / "rootfs"
    _file(rootfs, SHIM, b"signed shim")
    _file(rootfs, GRUB, b"signed grub")
    plan = esp.plan(str(rootfs), "COS_LIVE", "/boot/grub2/grub.cfg", fallback)
    tree = esp.stage_tree(plan, str(tmp_path / "esp"))
    image = str(tmp_path / "uefi.img")
    size = esp.size_of(plan)
    commands = esp.image_commands(image, tree, size)
    assert commands[1] == "mkfs.vfat -C -n COS_GRUB %s %d >/dev/null" % (image, size // 1024)
    subprocess.run(["bash", "-euc", "\n".join(commands)], check=True)
    assert os.path.getsize(image) == size
    for rel, data in (("EFI/BOOT/bootx64.efi", b"signed shim"), ("EFI/BOOT/grubx64.efi", b"signed grub")):
        assert subprocess.run(["mtype", "-i", image, "::/" + rel], capture_output=True, check=True,
                              env=MTOOLS_ENV).stdout == data
    label = subprocess.run(["mlabel", "-s", "-i", image, "::"], capture_output=True, text=True, check=True,
                           env=MTOOLS_ENV).stdout
    assert "COS_GRUB" in label


def test_stage_configs_writes_only_the_chainload_configurations(tmp_path, fallback):
    rootfs = tmp_path / "rootfs"
    _file(rootfs, SHIM, b"signed shim")
    _file(rootfs, GRUB, b"signed grub")
    plan = esp.plan(str(rootfs), "COS_LIVE", "/boot/grub2/grub.cfg", fallback)
    esp.stage_configs(plan, str(tmp_path / "iso"))
    found = sorted(os.path.relpath(os.path.join(d, f), str(tmp_path / "iso"))
                   for d, _dirs, files in os.walk(str(tmp_path / "iso")) for f in files)
    assert found == ["EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg"]
    with open(str(tmp_path / "iso" / "EFI" / "BOOT" / "grub.cfg"), encoding="utf-8") as handle:
        assert handle.read() == boot_chain.chain_config("COS_LIVE", "/boot/grub2/grub.cfg")
