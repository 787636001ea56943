"""Unit tests of the ESP plan (which EFI binaries, under which names, which chainload configurations) on fake root
filesystems in temporary directories, and of the FAT image written from it with the real mtools."""

import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_chain as bc

DEBIAN_SHIM = "/usr/lib/shim/shimx64.efi.signed"
DEBIAN_GRUB = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"


def tree(root, files):
    """Create ``files`` ({rootfs path: bytes}) under ``root``; return its path as a string."""
    for path, data in files.items():
        host = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "wb") as handle:
            handle.write(data)
    return str(root)


def by_path(plan):
    return {entry["path"]: entry for entry in plan["files"]}


def test_debian_amd64_rootfs_gives_shim_grub_and_both_configurations(tmp_path):
    rootfs = tree(tmp_path, {DEBIAN_SHIM: b"shim", DEBIAN_GRUB: b"grub", "/usr/lib/shim/shimx64.efi": b"unsigned"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_RECOVERY", "/grub2/grub.cfg")
    assert plan["signed"] is True and plan["warnings"] == []
    assert (plan["shim"], plan["grub"]) == (DEBIAN_SHIM, DEBIAN_GRUB)
    files = by_path(plan)
    assert list(files) == ["EFI/BOOT/bootx64.efi", "EFI/BOOT/grubx64.efi", "EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg"]
    assert files["EFI/BOOT/bootx64.efi"]["source"] == os.path.join(rootfs, DEBIAN_SHIM.lstrip("/"))
    assert files["EFI/BOOT/grubx64.efi"]["role"] == "grub"
    assert files["EFI/BOOT/grub.cfg"]["content"] == files["EFI/ubuntu/grub.cfg"]["content"] == bc.chain_config(
        "COS_RECOVERY", "/grub2/grub.cfg")


def test_search_order_is_the_conformance_list(tmp_path):
    rootfs = tree(tmp_path, {DEBIAN_SHIM: b"1", "/usr/lib/shim/shimx64.efi.signed.latest": b"2",
                             "/usr/lib/shim/shimx64.efi.dualsigned": b"3", DEBIAN_GRUB: b"g",
                             "/boot/efi/EFI/fedora/grubx64.efi": b"f"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    assert plan["shim"] == "/usr/lib/shim/shimx64.efi.dualsigned" and plan["grub"] == DEBIAN_GRUB
    tree(tmp_path, {"/usr/share/efi/x86_64/shim.efi": b"s", "/usr/share/efi/x86_64/grub.efi": b"s"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg", shim_alias=True)
    assert plan["shim"] == "/usr/share/efi/x86_64/shim.efi"
    # openSUSE's shim loads grub.efi: the GRUB keeps its own name, shim its own beside bootx64.efi
    assert list(by_path(plan))[:3] == ["EFI/BOOT/bootx64.efi", "EFI/BOOT/shim.efi", "EFI/BOOT/grub.efi"]


def test_vendor_paths_of_rpm_distributions(tmp_path):
    rootfs = tree(tmp_path, {"/boot/efi/EFI/rocky/shim.efi": b"s", "/boot/efi/EFI/almalinux/grubx64.efi": b"g"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg", shim_alias=True)
    assert plan["signed"] and list(by_path(plan))[:3] == ["EFI/BOOT/bootx64.efi", "EFI/BOOT/shim.efi",
                                                          "EFI/BOOT/grubx64.efi"]


def test_symlinks_resolve_inside_the_rootfs_and_broken_ones_are_skipped(tmp_path):
    rootfs = tree(tmp_path, {"/usr/lib/shim/real-shim": b"shim", DEBIAN_GRUB: b"grub"})
    shim_dir = os.path.join(rootfs, "usr/lib/shim")
    os.symlink("/usr/lib/shim/gone", os.path.join(shim_dir, "shimx64.efi.signed.latest"))  # broken: skipped
    os.symlink("/usr/lib/shim/real-shim", os.path.join(shim_dir, "shimx64.efi.signed"))  # absolute: in the rootfs
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    assert plan["shim"] == DEBIAN_SHIM
    assert by_path(plan)["EFI/BOOT/bootx64.efi"]["source"] == os.path.join(shim_dir, "real-shim")
    os.symlink("loop", os.path.join(shim_dir, "loop"))
    os.symlink("../shim/./real-shim", os.path.join(shim_dir, "relative"))
    os.symlink("/../../../../etc/passwd", os.path.join(shim_dir, "escape"))  # never the host's file
    assert bc.find_first(rootfs, ["/usr/lib/shim/loop", "/usr/lib/shim/escape"]) == (None, None)
    assert bc.find_first(rootfs, ["/usr/lib/shim/loop", "/usr/lib/shim/relative"]) == (
        "/usr/lib/shim/relative", os.path.join(shim_dir, "real-shim"))


def test_amd64_without_signed_pair_takes_the_builder_grub_with_a_warning(tmp_path):
    own = tmp_path / "BOOTX64.EFI"
    own.write_bytes(b"builder grub")
    rootfs = tree(tmp_path / "root", {"/etc/os-release": b"x"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg", fallback_loader=str(own))
    assert plan["signed"] is False and plan["shim"] is None
    assert by_path(plan)["EFI/BOOT/bootx64.efi"] == {"path": "EFI/BOOT/bootx64.efi", "role": "grub",
                                                     "source": str(own)}
    assert "EFI/BOOT/grub.cfg" in by_path(plan)
    assert len(plan["warnings"]) == 1 and "Secure Boot enabled refuse" in plan["warnings"][0]
    assert DEBIAN_SHIM in plan["warnings"][0]


def test_half_a_pair_is_named_in_the_warning(tmp_path):
    own = tmp_path / "BOOTX64.EFI"
    own.write_bytes(b"builder grub")
    rootfs = tree(tmp_path / "root", {DEBIAN_SHIM: b"shim"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg", fallback_loader=str(own))
    assert not plan["signed"] and "found only %s" % DEBIAN_SHIM in plan["warnings"][0]


def test_amd64_without_signed_pair_or_fallback_is_an_error(tmp_path):
    rootfs = tree(tmp_path, {DEBIAN_GRUB: b"grub"})
    with pytest.raises(bc.BootChainError, match="no fallback boot loader"):
        bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    with pytest.raises(ValidationError, match="fallback_loader"):
        bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg", fallback_loader=str(tmp_path / "none"))


def test_arm64_debian_rootfs(tmp_path):
    rootfs = tree(tmp_path, {"/usr/lib/shim/shimaa64.efi.signed": b"shim",
                             "/usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed": b"grub",
                             DEBIAN_SHIM: b"x86 shim", DEBIAN_GRUB: b"x86 grub"})
    plan = bc.plan_esp(rootfs, "arm64", "COS_LIVE", "/boot/grub/grub.cfg")
    assert plan["signed"] and list(by_path(plan)) == ["EFI/BOOT/bootaa64.efi", "EFI/BOOT/grubaa64.efi",
                                                      "EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg"]
    assert by_path(plan)["EFI/BOOT/bootaa64.efi"]["source"].endswith("shimaa64.efi.signed")


def test_arm64_without_signed_pair_is_refused_even_with_a_fallback(tmp_path):
    own = tmp_path / "BOOTX64.EFI"
    own.write_bytes(b"x86 builder grub")
    rootfs = tree(tmp_path / "root", {DEBIAN_SHIM: b"x86 shim", DEBIAN_GRUB: b"x86 grub",
                                      "/usr/lib/shim/shimaa64.efi.signed": b"arm shim"})
    with pytest.raises(bc.BootChainError) as err:
        bc.plan_esp(rootfs, "arm64", "COS_LIVE", "/boot/grub/grub.cfg", fallback_loader=str(own))
    message = str(err.value)
    assert message.startswith("arm64:") and "refused" in message and "grubaa64.efi.signed" in message
    assert "found only /usr/lib/shim/shimaa64.efi.signed" in message


def test_bad_arguments(tmp_path):
    with pytest.raises(ValidationError, match="arch: 'x86_64'"):
        bc.plan_esp(str(tmp_path), "x86_64", "COS_LIVE", "/boot/grub/grub.cfg")
    with pytest.raises(ValidationError, match="rootfs"):
        bc.plan_esp(str(tmp_path / "none"), "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    with pytest.raises(ValidationError, match="search_label"):
        bc.chain_config("COS LIVE", "/boot/grub/grub.cfg")
    with pytest.raises(ValidationError, match="config_path"):
        bc.chain_config("COS_LIVE", "boot/grub/grub.cfg")


def test_chain_config_text():
    text = bc.chain_config("COS_RECOVERY", "/etc/cos/grub.cfg")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["search --no-floppy --label COS_RECOVERY --set=root", "set prefix=($root)/etc/cos",
                     "configfile ($root)/etc/cos/grub.cfg"]


def test_esp_names():
    assert bc.esp_name("/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed") == "grubx64.efi"
    assert bc.esp_name("/usr/lib/shim/shimx64.efi.signed.latest") == "shimx64.efi"
    assert bc.esp_name("/usr/lib/shim/shimaa64.efi.dualsigned") == "shimaa64.efi"
    assert bc.esp_name("/usr/share/efi/x86_64/grub.efi") == "grub.efi"


def test_size_and_commands(tmp_path):
    rootfs = tree(tmp_path / "root", {DEBIAN_SHIM: b"s" * 3 * bc.MIB, DEBIAN_GRUB: b"g" * 10})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    assert bc.esp_size(plan) == 5 * bc.MIB  # 3 MiB + 3 clusters + 1 MiB, rounded up
    assert bc.esp_size(plan, minimum=64 * bc.MIB) == 64 * bc.MIB
    commands = bc.esp_commands(plan, "/x.img", "COS_GRUB", str(tmp_path))
    assert commands[0] == ["mformat", "-i", "/x.img", "-v", "COS_GRUB", "::"]
    assert [c[3] for c in commands[1:4]] == ["::/EFI", "::/EFI/BOOT", "::/EFI/ubuntu"]
    assert commands[4] == ["mcopy", "-i", "/x.img", os.path.join(rootfs, DEBIAN_SHIM.lstrip("/")),
                           "::/EFI/BOOT/bootx64.efi"]
    config = commands[6][3]
    with open(config, encoding="utf-8") as handle:
        assert handle.read() == bc.chain_config("COS_LIVE", "/boot/grub/grub.cfg")


def _mtools_read(image, path):
    return subprocess.run(["mtype", "-i", image, "::/" + path], capture_output=True, check=True,
                          env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout


def test_write_esp_image_with_mtools(tmp_path):
    rootfs = tree(tmp_path / "root", {DEBIAN_SHIM: os.urandom(70000), DEBIAN_GRUB: os.urandom(5000)})
    plan = bc.plan_esp(rootfs, "amd64", "COS_RECOVERY", "/grub2/grub.cfg")
    out = tmp_path / "out" / "efi.img"
    messages = []
    result = bc.write_esp_image(plan, str(out), label="COS_GRUB", progress=messages.append)
    assert result == {"path": str(out), "size": 2 * bc.MIB, "files": [e["path"] for e in plan["files"]]}
    assert out.stat().st_size == 2 * bc.MIB and "signed shim and GRUB" in messages[0]
    assert _mtools_read(str(out), "EFI/BOOT/bootx64.efi") == open(by_path(plan)["EFI/BOOT/bootx64.efi"]["source"],
                                                                  "rb").read()
    assert _mtools_read(str(out), "EFI/BOOT/grubx64.efi") == open(by_path(plan)["EFI/BOOT/grubx64.efi"]["source"],
                                                                  "rb").read()
    for path in bc.CONFIG_PATHS:
        assert _mtools_read(str(out), path).decode() == bc.chain_config("COS_RECOVERY", "/grub2/grub.cfg")
    label = subprocess.run(["mlabel", "-s", "-i", str(out), "::"], capture_output=True, text=True, check=True,
                           env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout
    assert "COS_GRUB" in label
    assert os.listdir(str(tmp_path / "out")) == ["efi.img"]  # no temporary file left


def test_write_esp_image_refuses_a_small_size_and_leaves_nothing_on_failure(tmp_path):
    rootfs = tree(tmp_path / "root", {DEBIAN_SHIM: b"s", DEBIAN_GRUB: b"g"})
    plan = bc.plan_esp(rootfs, "amd64", "COS_LIVE", "/boot/grub/grub.cfg")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValidationError, match="size"):
        bc.write_esp_image(plan, str(out / "efi.img"), size=bc.MIB)
    with pytest.raises(ValidationError, match="label"):
        bc.write_esp_image(plan, str(out / "efi.img"), label="A-LABEL-TOO-LONG")
    plan["files"].append({"path": "EFI/BOOT/extra.efi", "role": "grub", "source": str(tmp_path / "gone.efi")})
    with pytest.raises(bc.BootChainError, match="gone.efi for EFI/BOOT/extra.efi is missing"):
        bc.write_esp_image(plan, str(out / "efi.img"))
    assert os.listdir(str(out)) == []


def test_a_failing_mtools_command_is_reported(tmp_path):
    image = tmp_path / "efi.img"
    image.write_bytes(b"")
    with pytest.raises(bc.BootChainError, match=r"mcopy failed on .*efi.img \(rc 1\): .*boot sector"):
        bc._mtools(["mcopy", "-i", str(image), str(tmp_path / "gone.efi"), "::/a"], str(image))
