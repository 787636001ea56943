"""Unit tests of the ISO / raw disk planning: names, bundles and parts, GRUB menus, scripts, layout, BIOS boot code,
stamps and idempotency, root filesystem fixes. No Docker, no QEMU."""

import json
import os
import struct
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils import disk_builder as db
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


# ------------------------------------------------------------------ names and inputs
@pytest.mark.parametrize("name", ["palette-edge-installer", "edge_1.2", "A"])
def test_valid_names(name):
    assert db.validate_name("iso_name", name) == name


@pytest.mark.parametrize("name", ["", "../evil", "a b", "x;rm -rf /", "-dash", "a/b", "é", "x" * 101, "$(id)"])
def test_forbidden_names_are_refused_with_the_rule(name):
    with pytest.raises(ValidationError) as err:
        db.validate_name("iso_name", name)
    assert "iso_name" in str(err.value) and "letters, digits" in str(err.value)


def test_missing_user_data_is_an_error(tmp_path):
    with pytest.raises(ValidationError) as err:
        db.IsoRequest("img:1", str(tmp_path / "build"), user_data=str(tmp_path / "nope.yaml"))
    assert "user_data" in str(err.value) and "does not exist" in str(err.value)
    assert not (tmp_path / "build").exists()


def test_missing_content_dir_is_an_error(tmp_path):
    with pytest.raises(ValidationError) as err:
        db.IsoRequest("img:1", str(tmp_path / "build"), content_dirs=[str(tmp_path / "content-x")])
    assert "content_dir" in str(err.value) and "does not exist" in str(err.value)


def test_bundles_only_zst_for_iso_and_tar_too_for_raw(tmp_path):
    content = tmp_path / "content-1"
    content.mkdir()
    for name in ("b.zst", "a.zst", "c.tar", "readme.txt"):
        (content / name).write_bytes(b"x" * 10)
    assert [b["name"] for b in db.find_bundles([str(content)])] == ["a.zst", "b.zst"]
    assert [b["name"] for b in db.find_bundles([str(content)], (".zst", ".tar"))] == ["a.zst", "b.zst", "c.tar"]


def test_duplicate_bundle_names_are_refused(tmp_path):
    for sub in ("c1", "c2"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.zst").write_bytes(b"1")
    with pytest.raises(ValidationError, match="unique"):
        db.find_bundles([str(tmp_path / "c1"), str(tmp_path / "c2")])


def test_parts_follow_canvos_names_and_3gb_limit():
    bundles = [{"path": "/c/big.zst", "name": "big.zst", "size": 7 * 10 ** 9, "dir": "/c"},
               {"path": "/c/small.zst", "name": "small.zst", "size": 5, "dir": "/c"},
               {"path": "/c/exact.zst", "name": "exact.zst", "size": 3 * 10 ** 9, "dir": "/c"}]
    parts = db.content_parts(bundles)
    assert [(p["name"], p["offset"], p["length"]) for p in parts] == [
        ("big.zst_part00", 0, 3 * 10 ** 9), ("big.zst_part01", 3 * 10 ** 9, 3 * 10 ** 9),
        ("big.zst_part02", 6 * 10 ** 9, 10 ** 9), ("small.zst_part00", 0, 5), ("exact.zst_part00", 0, 3 * 10 ** 9)]
    assert all(p["length"] < 4 * 1024 ** 3 for p in parts)


# ------------------------------------------------------------------ GRUB
def test_iso_menu_has_the_canvos_entries_and_the_kairos_live_cmdline():
    cfg = db.iso_grub_cfg()
    titles = [line.split('"')[1] for line in cfg.splitlines() if line.startswith("menuentry")]
    assert titles == ["Palette eXtended Kubernetes Edge Installer",
                      "Palette eXtended Kubernetes Edge Installer (manual)", "Palette Edge Interactive Installer"]
    assert "set default=0" in cfg
    linux = [line for line in cfg.splitlines() if line.strip().startswith("linux ")]
    assert len(linux) == 3
    for line in linux:
        assert "root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs" in line
        assert "console=ttyS0" in line
        assert "rd.debug" not in line
    assert "install-mode" in linux[0] and "install-mode" not in linux[1]
    assert "interactive-install" in linux[2]


def test_force_interactive_and_debug():
    cfg = db.IsoRequest("img:1", "/tmp/x", force_interactive_install=True, debug=True).grub_cfg()
    assert "set default=2" in cfg
    for line in cfg.splitlines():
        if line.strip().startswith("linux "):
            assert line.endswith("rd.immucore.debug console=tty0 rd.debug")


def test_raw_menu_boots_recovery_live():
    cfg = db.raw_grub_cfg()
    assert "root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs" in cfg
    assert "($root)/cOS/vmlinuz" in cfg and "($root)/cOS/initrd" in cfg
    assert "set default=0" in cfg
    assert "set default=1" in db.RawRequest("i:1", "/tmp/x", default_entry="reset").grub_cfg()


def test_early_config():
    assert db.early_grub_cfg("--label COS_RECOVERY", "/grub2") == (
        "search --no-floppy --label COS_RECOVERY --set=root\nset prefix=($root)/grub2\n")
    assert db.early_grub_cfg("--fs-uuid X", "/boot/grub", chain=True).endswith(
        "configfile ($root)/boot/grub/grub.cfg\n")


def test_iso_uuid_matches_modification_date():
    value, uuid = db.iso_uuid_date(0)
    assert value == "1970010100000000" and uuid == "1970-01-01-00-00-00-00"


# ------------------------------------------------------------------ scripts
PATHS = {"rootfs": "/work/rootfs", "stage": "/work/iso", "grub": "/work/grub", "output": "/out/.x.iso.partial",
         "grub_lib": "/usr/lib/grub", "work": "/work"}


def test_iso_script_commands():
    parts = [{"src": "/content/0/big.zst", "offset": 0, "length": 3 * 10 ** 9, "name": "big.zst_part00"},
             {"src": "/content/0/big.zst", "offset": 3 * 10 ** 9, "length": 5, "name": "big.zst_part01"}]
    script = db.iso_script(PATHS, "2024010100000000", parts)
    assert "set -euo pipefail" in script
    assert "mksquashfs /work/rootfs /work/iso/rootfs.squashfs -noappend -no-progress -comp zstd" in script
    assert "-Xcompression-level 3" in script and "-processors $(nproc)" in script
    assert "-O i386-pc-eltorito" in script and "-O x86_64-efi" in script
    assert "mcopy -i /work/iso/efi.img /work/grub/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI" in script
    xorriso = next(line for line in script.splitlines() if line.startswith("xorriso "))
    for fragment in ("-V COS_LIVE", "--grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img", "--efi-boot efi.img",
                     "-efi-boot-part --efi-boot-image", "--protective-msdos-label", "-o /out/.x.iso.partial",
                     "--modification-date=2024010100000000",
                     "-- -cut_out /content/0/big.zst 0 3000000000 /opt/spectrocloud/content/big.zst_part00",
                     "-cut_out /content/0/big.zst 3000000000 5 /opt/spectrocloud/content/big.zst_part01"):
        assert fragment in xorriso
    # GRUB images are made while mksquashfs runs, and a failure there still fails the build
    assert script.index("grub_pid=$!") < script.index("mksquashfs") < script.index('wait "$grub_pid"')
    assert subprocess.run(["bash", "-n"], input=script.encode(), check=False).returncode == 0


def test_iso_script_quotes_paths():
    paths = dict(PATHS, output="/out/it's here.iso")
    script = db.iso_script(paths, "2024010100000000", [])
    assert "'/out/it'\"'\"'s here.iso'" in script
    assert " -- " not in script.split("xorriso", 1)[1].split("\n", 1)[0]


def test_raw_layout_alignment_and_sizes():
    mib = db.MIB
    layout = db.plan_raw_layout(5 * mib, 10 * 1024, 300 * mib, content_bytes=1000 * mib)
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
    assert parts[4]["bytes"] == mib and parts[4]["type"] == db.GPT_BIOS_BOOT
    assert layout["size"] == parts[-1]["offset"] + parts[-1]["bytes"] + mib
    no_content = db.plan_raw_layout(5 * mib, 1, 300 * mib, 0, bios_boot=False)
    assert [p["name"] for p in no_content["partitions"]] == ["efi", "oem", "recovery"]


def test_sfdisk_script_and_raw_scripts(tmp_path):
    layout = db.plan_raw_layout(5 * db.MIB, 1, 100 * db.MIB, 0)
    text = db.sfdisk_script(layout)
    assert text.startswith("label: gpt\n")
    assert 'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="efi"' in text
    prep = db.raw_prepare_script(PATHS)
    assert "/work/recovery/cOS/recovery.squashfs" in prep and "-O i386-pc " in prep
    assembled = db.raw_assemble_script(PATHS, layout)
    assert "mkfs.vfat -C -n COS_GRUB" in assembled
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
    sectors = db.install_bios_boot(str(disk), bytes(boot), core, 4000)
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
    with pytest.raises(db.DiskBuildError):
        db.install_bios_boot(str(disk), b"x" * 100, b"c" * 512, 2)
    with pytest.raises(db.DiskBuildError, match="1 MiB"):
        db.install_bios_boot(str(disk), b"x" * 512, b"c" * (2 * 1024 * 1024), 2)


# ------------------------------------------------------------------ stamps and idempotency
def test_digest_changes_with_inputs(tmp_path):
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\n")
    request = db.IsoRequest("img:1", str(tmp_path / "b"), user_data=str(user_data))
    first = request.digest("sha256:aaa", "container")
    assert first == request.digest("sha256:aaa", "container")
    assert first != request.digest("sha256:bbb", "container")
    user_data.write_text("#cloud-config\nstylus: {}\n")
    assert first != request.digest("sha256:aaa", "container")
    assert first != db.IsoRequest("img:1", str(tmp_path / "b"), user_data=str(user_data), debug=True).digest(
        "sha256:aaa", "container")


def test_up_to_date_needs_stamp_checksum_and_content(tmp_path):
    out = tmp_path / "x.iso"
    out.write_bytes(b"iso bytes")
    assert not db.up_to_date(str(out), "d1")
    db.write_checksum_and_stamp(str(out), "d1")
    sha_line = (tmp_path / "x.iso.sha256").read_text()
    assert sha_line.endswith("  x.iso\n") and len(sha_line.split()[0]) == 64
    assert subprocess.run(["sha256sum", "-c", "x.iso.sha256"], cwd=str(tmp_path), capture_output=True,
                          check=False).returncode == 0
    assert db.up_to_date(str(out), "d1")
    assert not db.up_to_date(str(out), "d2")
    out.write_bytes(b"iso bytes changed")
    assert not db.up_to_date(str(out), "d1")
    with pytest.raises(db.DiskBuildError, match="does not match"):
        db.verify_checksum_file(str(out))
    stamp = json.loads((tmp_path / ".x.iso.edgeforge-inputs").read_text())
    assert stamp["inputs"] == "d1"


# ------------------------------------------------------------------ root filesystem
def test_resolve_in_root_keeps_absolute_links_inside(tmp_path):
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.1").write_bytes(b"kernel")
    os.symlink("/boot/vmlinuz-6.1", str(root / "boot" / "vmlinuz"))
    os.symlink("boot/vmlinuz", str(root / "vmlinuz"))
    assert db.resolve_in_root(str(root), "/vmlinuz") == str(root / "boot" / "vmlinuz-6.1")
    os.symlink("/../../../../etc/passwd", str(root / "escape"))
    assert db.resolve_in_root(str(root), "/escape").startswith(str(root))


def test_find_boot_files(tmp_path):
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.1.0").write_bytes(b"k")
    (root / "boot" / "initrd.img-6.1.0").write_bytes(b"i")
    (kernel_rel, kernel), (initrd_rel, initrd) = db.find_boot_files(str(root))
    assert kernel_rel == "/boot/vmlinuz-6.1.0" and initrd_rel == "/boot/initrd.img-6.1.0"
    (root / "boot" / "vmlinuz").write_bytes(b"kk")
    assert db.find_boot_files(str(root))[0][0] == "/boot/vmlinuz"
    with pytest.raises(db.DiskBuildError, match="no initrd"):
        db.find_boot_files(str(root), initrd_path="/nothing")


def test_fix_exported_rootfs(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / ".dockerenv").write_text("")
    (root / "dev" / "console").write_text("")
    for name in ("hostname", "hosts", "resolv.conf"):
        (root / "etc" / name).write_text("")
    db.fix_exported_rootfs(str(root))
    assert not (root / ".dockerenv").exists() and not (root / "dev" / "console").exists()
    assert (root / "etc" / "hostname").read_text() == "localhost\n"
    assert "127.0.0.1\tlocalhost" in (root / "etc" / "hosts").read_text()
    assert (root / "etc" / "resolv.conf").exists()


def test_shipped_dockerfile_is_the_one_the_modules_build():
    with open(os.path.join(REPO, "files", "builder", "Dockerfile"), encoding="utf-8") as handle:
        assert handle.read() == db.BUILDER_DOCKERFILE
    for package in ("xorriso", "grub-pc-bin", "grub-efi-amd64-bin", "mtools", "squashfs-tools", "dosfstools",
                    "e2fsprogs", "fdisk"):
        assert package in db.BUILDER_DOCKERFILE


def test_builder_tag_follows_the_recipe():
    assert db.builder_tag().startswith("edgeforge-disk-builder:")
    assert db.builder_tag("debian:bookworm-slim") != db.builder_tag("debian:trixie-slim")


def test_auroraboot_builder_is_explained():
    with pytest.raises(ValidationError, match="auroraboot"):
        db.DiskBuilder(None, builder="auroraboot")


def test_host_runner_returns_when_the_script_ends_and_reports_failures(tmp_path):
    import time
    script = tmp_path / "ok.sh"
    # a background job started after the heartbeat must not make the runner wait for the heartbeat
    script.write_text(db.SCRIPT_HEAD + "( sleep 0.2 ) &\nbg=$!\nstep one\necho hello\nwait \"$bg\"\n")
    steps = []
    runner = db.ScriptRunner("host", progress=steps.append)
    started = time.monotonic()
    runner.run(str(script), {}, str(tmp_path / "logs" / "build.log"))
    assert time.monotonic() - started < 20
    assert steps == ["build step: one"]
    assert "hello" in (tmp_path / "logs" / "build.log").read_text()
    failing = tmp_path / "bad.sh"
    failing.write_text(db.SCRIPT_HEAD + "step squashfs\necho 'mksquashfs: no space left' >&2\nexit 3\n")
    with pytest.raises(db.DiskBuildError) as err:
        runner.run(str(failing), {})
    assert "step 'squashfs' (exit code 3)" in str(err.value) and "no space left" in str(err.value)
