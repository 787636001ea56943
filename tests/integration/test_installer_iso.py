"""edgeforge.artifacts.installer_iso against the test bed: build from the stand-in installer image, inspect the ISO with
xorriso/sfdisk, idempotency, check mode, a sparse bundle over 3 GB cut into parts, and bad inputs.

(The boots of the ISO under BIOS and UEFI are in test_boot_check.py.)"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration.disk_artifacts import (TOKEN, built_iso, run_module, tiny_image, write_inputs,
                                              xorriso_extract, xorriso_listing)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def iso(docker_engine, standin_images, tmp_path_factory):
    return built_iso(docker_engine, standin_images, tmp_path_factory)


def test_build_succeeds_and_reports(iso):
    result = iso["result"]
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["iso_path"] == os.path.join(iso["args"]["build_dir"], "palette-edge-installer.iso")
    assert result["build_files"][:2] == ["logs", "palette-edge-installer.iso"] or \
        "palette-edge-installer.iso" in result["build_files"]
    assert "palette-edge-installer.iso.sha256" in result["build_files"]
    assert result["kernel"] == "/boot/vmlinuz" and result["initrd"] == "/boot/initrd"
    assert [p["name"] for p in result["content_parts"]] == ["core-bundle.tar.zst_part00"]
    build = os.listdir(iso["args"]["build_dir"])
    assert not [name for name in build if "partial" in name or name.startswith(".edgeforge-work")]


def test_checksum_file_is_sha256sum_format(iso):
    build = iso["args"]["build_dir"]
    check = subprocess.run(["sha256sum", "-c", "palette-edge-installer.iso.sha256"], cwd=build, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "palette-edge-installer.iso: OK"
    assert iso["result"]["sha256"] == open(os.path.join(build, "palette-edge-installer.iso.sha256"),
                                           encoding="utf-8").read().split()[0]


def test_volume_label_and_files(iso, tmp_path):
    path = iso["result"]["iso_path"]
    pvd = subprocess.run(["xorriso", "-indev", path, "-pvd_info"], capture_output=True, text=True, check=True).stdout
    assert "Volume Id    : COS_LIVE" in pvd
    files = xorriso_listing(path)
    for name in ("/rootfs.squashfs", "/boot/kernel", "/boot/initrd", "/boot/grub/grub.cfg", "/config.yaml",
                 "/.edge_custom_config.yaml", "/opt/spectrocloud/clusterconfig/spc.tgz",
                 "/opt/spectrocloud/content/core-bundle.tar.zst_part00", "/efi.img",
                 "/boot/grub/i386-pc/eltorito.img"):
        assert name in files, sorted(files)
    assert not [name for name in files if name.endswith(".tar") or name.endswith("notes.txt")]
    assert files["/opt/spectrocloud/content/core-bundle.tar.zst_part00"] == os.path.getsize(
        os.path.join(iso["inputs"]["content"], "core-bundle.tar.zst"))
    squash = xorriso_extract(path, "/rootfs.squashfs", str(tmp_path / "rootfs.squashfs"))
    assert squash[:4] == b"hsqs"
    unsquash = subprocess.run(["unsquashfs", "-s", str(tmp_path / "rootfs.squashfs")], capture_output=True, text=True,
                              check=True).stdout
    assert "Compression zstd" in unsquash
    listing = subprocess.run(["unsquashfs", "-l", str(tmp_path / "rootfs.squashfs")], capture_output=True, text=True,
                             check=True).stdout
    assert "squashfs-root/etc/systemd/system/edgeforge-boot-ok.service" in listing
    assert "squashfs-root/etc/kairos/branding" in listing  # the stylus framework is in the installer image
    assert "squashfs-root/.dockerenv" not in listing


def test_user_data_and_configs_embedded(iso, tmp_path):
    path = iso["result"]["iso_path"]
    inputs = iso["inputs"]
    for iso_path, source in (("/config.yaml", inputs["user_data"]),
                             ("/.edge_custom_config.yaml", inputs["edge_custom_config"]),
                             ("/opt/spectrocloud/clusterconfig/spc.tgz", inputs["clusterconfig"])):
        with open(source, "rb") as handle:
            assert xorriso_extract(path, iso_path, str(tmp_path / os.path.basename(iso_path))) == handle.read()


def test_grub_menu(iso, tmp_path):
    cfg = xorriso_extract(iso["result"]["iso_path"], "/boot/grub/grub.cfg", str(tmp_path / "grub.cfg")).decode()
    assert 'menuentry "Palette eXtended Kubernetes Edge Installer"' in cfg
    assert 'menuentry "Palette eXtended Kubernetes Edge Installer (manual)"' in cfg
    assert 'menuentry "Palette Edge Interactive Installer"' in cfg
    assert "set default=0" in cfg
    assert "root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs" in cfg
    assert "rd.debug" not in cfg


def test_boot_records_bios_uefi_and_hybrid_tables(iso):
    path = iso["result"]["iso_path"]
    report = subprocess.run(["xorriso", "-indev", path, "-report_el_torito", "plain", "-report_system_area", "plain"],
                            capture_output=True, text=True, check=True).stdout
    assert "El Torito boot img :   1  BIOS  y" in report
    assert "El Torito boot img :   2  UEFI  y" in report
    assert "grub2-mbr" in report and "GPT" in report
    table = json.loads(subprocess.run(["sfdisk", "-J", path], capture_output=True, text=True, check=True).stdout)
    types = [part["type"] for part in table["partitiontable"]["partitions"]]
    assert table["partitiontable"]["label"] == "gpt"
    assert "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in types  # the ESP a USB boot under UEFI finds
    with open(path, "rb") as handle:
        mbr = handle.read(512)
    assert mbr[510:512] == b"\x55\xaa" and any(mbr[:440])  # GRUB's hybrid MBR boot code
    esp = subprocess.run(["mdir", "-b", "-i", "%s@@%d" % (path, _esp_offset(table)), "::/EFI/BOOT"],
                         capture_output=True, text=True, check=True).stdout
    assert "BOOTX64.EFI" in esp.upper()


def _esp_offset(table):
    part = next(p for p in table["partitiontable"]["partitions"]
                if p["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    return part["start"] * 512


def test_token_never_printed(iso):
    assert TOKEN not in iso["proc"].output  # -vvv run: module arguments and results are printed
    assert TOKEN not in json.dumps(iso["result"])
    logs = os.path.join(iso["args"]["build_dir"], "logs")
    for name in os.listdir(logs):
        with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as handle:
            assert TOKEN not in handle.read(), name


def test_second_run_changes_nothing_and_check_mode_agrees(iso):
    before = os.stat(iso["result"]["iso_path"])
    result, proc = run_module(iso["work"], "installer_iso", iso["args"], check=True)
    assert result["changed"] is False, proc.stdout
    result, proc = run_module(iso["work"], "installer_iso", iso["args"])
    assert result["changed"] is False, proc.stdout
    assert result["sha256"] == iso["result"]["sha256"]
    after = os.stat(iso["result"]["iso_path"])
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_changed_input_is_seen_in_check_mode(iso):
    args = dict(iso["args"], debug=True)
    result, _proc = run_module(iso["work"], "installer_iso", args, check=True)
    assert result["changed"] is True
    assert "sha256" not in result or result["sha256"] == iso["result"]["sha256"]
    assert os.path.getsize(iso["result"]["iso_path"]) == iso["result"]["size"]


def test_bundle_over_3gb_is_cut_into_parts(docker_engine, tmp_path):
    """A 3.2 GB bundle (a sparse file) becomes part00 (3 GB) + part01 (the rest), mapped from the bundle."""
    content = tmp_path / "content-big"
    content.mkdir()
    bundle = content / "big-bundle.tar.zst"
    size = 3 * 10 ** 9 + 200 * 10 ** 6
    with open(bundle, "wb") as handle:
        handle.write(b"\x28\xb5\x2f\xfdHEAD")
        handle.truncate(size)
        handle.seek(size - 4)
        handle.write(b"TAIL")
    assert os.stat(bundle).st_blocks * 512 < 10 * 2 ** 20  # sparse: the test costs no disk space for the input
    build = tmp_path / "build"
    args = {"installer_image": tiny_image(docker_engine), "build_dir": str(build), "content_dir": [str(content)],
            "iso_name": "big-content", "grub_timeout": 0}
    result, proc = run_module(tmp_path, "installer_iso", args)
    assert not result.get("failed"), result.get("msg", "") + proc.stdout
    assert result["content_parts"] == [{"name": "big-bundle.tar.zst_part00", "size": 3 * 10 ** 9},
                                       {"name": "big-bundle.tar.zst_part01", "size": 200 * 10 ** 6}]
    iso_path = str(build / "big-content.iso")
    files = xorriso_listing(iso_path)
    assert files["/opt/spectrocloud/content/big-bundle.tar.zst_part00"] == 3 * 10 ** 9
    assert files["/opt/spectrocloud/content/big-bundle.tar.zst_part01"] == 200 * 10 ** 6
    assert "/opt/spectrocloud/content/big-bundle.tar.zst" not in files
    assert "/config.yaml" not in files  # no user data given, none invented
    head = subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso_path, "-extract_cut",
                           "/opt/spectrocloud/content/big-bundle.tar.zst_part00", "0", "8", str(tmp_path / "head")],
                          capture_output=True, check=True)
    assert head.returncode == 0 and (tmp_path / "head").read_bytes() == b"\x28\xb5\x2f\xfdHEAD"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso_path, "-extract_cut",
                    "/opt/spectrocloud/content/big-bundle.tar.zst_part01", str(200 * 10 ** 6 - 4), "4",
                    str(tmp_path / "tail")], capture_output=True, check=True)
    assert (tmp_path / "tail").read_bytes() == b"TAIL"
    os.unlink(iso_path)


@pytest.mark.parametrize("case", ["missing_user_data", "missing_content_dir", "bad_iso_name"])
def test_bad_input_fails_clearly_and_leaves_nothing(docker_engine, tmp_path, case):
    inputs = write_inputs(str(tmp_path / "inputs"))
    build = tmp_path / "build"
    args = {"installer_image": tiny_image(docker_engine), "build_dir": str(build),
            "user_data": inputs["user_data"], "content_dir": [inputs["content"]]}
    expected = {
        "missing_user_data": ("user_data", str(tmp_path / "inputs" / "user-data-typo"), "does not exist"),
        "missing_content_dir": ("content_dir", str(tmp_path / "content-typo"), "does not exist"),
        "bad_iso_name": ("iso_name", "edge installer;rm -rf", "letters, digits"),
    }[case]
    if case == "missing_content_dir":
        args["content_dir"] = [expected[1]]
    else:
        args[expected[0]] = expected[1]
    result, proc = run_module(tmp_path, "installer_iso", args)
    assert result.get("failed") is True, proc.stdout
    assert expected[0] in result["msg"] and expected[2] in result["msg"], result["msg"]
    assert expected[1] in result["msg"]
    assert not build.exists() or os.listdir(str(build)) == [], os.listdir(str(build))
