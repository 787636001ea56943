"""edgeforge.artifacts.installer_iso against the test bed: build from the stand-in installer image, inspect the ISO with
xorriso/sfdisk, idempotency, check mode, a sparse bundle over 3 GB cut into parts, and bad inputs.

(The boots of the ISO under BIOS and UEFI are in test_boot_check.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import sha256_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_chain
from tests.integration.disk_artifacts import (ESP_FILES, LOCAL_UI_FILE, SIGNED_GRUB, SIGNED_SHIM, TOKEN, built_iso,
                                              fat_files, grub_menu, image_file, installer_image, run_module,
                                              squashfs_file, tiny_image, write_inputs, xorriso_extract,
                                              xorriso_listing)
from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import remote_manifest, unique

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
    assert os.stat(result["iso_path"]).st_mode & 0o777 == 0o600  # it holds the user data and its token


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
    assert "Volume Id    : COS_LIVE" in pvd  # CONFORMANCE 5.12, and root=live:CDLABEL=COS_LIVE finds it
    toc = subprocess.run(["xorriso", "-indev", path, "-toc"], capture_output=True, text=True, check=True).stdout
    assert "Joliet" in next(line for line in toc.splitlines() if line.startswith("ISO offers"))
    files = xorriso_listing(path)
    # CONFORMANCE 5.4: the paths enki writes (the catalog is hidden)
    for name in ("/rootfs.squashfs", "/boot/kernel", "/boot/initrd", "/boot/grub2/grub.cfg",
                 "/files-iso/config.yaml", "/.edge_custom_config.yaml", "/opt/spectrocloud/clusterconfig/spc.tgz",
                 "/opt/spectrocloud/content/core-bundle.tar.zst_part00", "/boot/uefi.img",
                 "/boot/x86_64/loader/eltorito.img"):
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
    # CONFORMANCE 5.7: local-ui.tar is extracted into the root filesystem's /opt/spectrocloud, not the ISO tree
    assert "squashfs-root/opt/spectrocloud/" + LOCAL_UI_FILE in listing
    assert not [name for name in files if "local-ui" in name]
    # CONFORMANCE 5.4: /boot/kernel and /boot/initrd are the installer image's /boot/vmlinuz and /boot/initrd targets
    for iso_file, image_file in (("/boot/kernel", "/boot/vmlinuz"), ("/boot/initrd", "/boot/initrd")):
        copied = xorriso_extract(path, iso_file, str(tmp_path / os.path.basename(iso_file)))
        assert copied and copied == squashfs_file(str(tmp_path / "rootfs.squashfs"), image_file), iso_file
    esp = mdir_listing("%s@@%d" % (path, _esp_offset(_table(path))), "::/")
    assert "EFI" in esp
    assert subprocess.run(["minfo", "-i", "%s@@%d" % (path, _esp_offset(_table(path))), "::"], capture_output=True,
                          text=True, check=True).stdout.count("COS_GRUB") >= 1


def test_user_data_and_configs_embedded(iso, tmp_path):
    path = iso["result"]["iso_path"]
    inputs = iso["inputs"]
    for iso_path, source in (("/files-iso/config.yaml", inputs["user_data"]),
                             ("/.edge_custom_config.yaml", inputs["edge_custom_config"]),
                             ("/opt/spectrocloud/clusterconfig/spc.tgz", inputs["clusterconfig"])):
        with open(source, "rb") as handle:
            assert xorriso_extract(path, iso_path, str(tmp_path / os.path.basename(iso_path))) == handle.read()
    files = xorriso_listing(path)
    assert "/config.yaml" not in files  # CONFORMANCE 5.5: only under files-iso/
    user_data = xorriso_extract(path, "/files-iso/config.yaml", str(tmp_path / "ud"))
    assert user_data.startswith(b"#cloud-config") and len(user_data) <= 1000 * 1000


def test_content_bundles_become_parts(iso, tmp_path):
    """CONFORMANCE 5.6: every .zst (even a small one) becomes <name>_partNN; the parts give back the bundle."""
    path = iso["result"]["iso_path"]
    files = xorriso_listing(path)
    content = sorted(name for name in files if name.startswith("/opt/spectrocloud/content/"))
    assert content == ["/opt/spectrocloud/content/core-bundle.tar.zst_part00"]
    assert not [name for name in files if name.endswith(".zst")]
    with open(os.path.join(iso["inputs"]["content"], "core-bundle.tar.zst"), "rb") as handle:
        assert xorriso_extract(path, content[0], str(tmp_path / "part00")) == handle.read()


CANVOS_ENTRY_0 = ("cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs net.ifnames=1 "
                  "console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset nodepair.enable selinux=0 "
                  "rd.live.overlay.overlayfs rd.immucore.sysrootwait=600 systemd.unified_cgroup_hierarchy=1").split()


def test_grub_menu(iso, tmp_path):
    """CONFORMANCE 5.8: titles, argument lists token by token, order, default entry, timeout."""
    cfg = xorriso_extract(iso["result"]["iso_path"], "/boot/grub2/grub.cfg", str(tmp_path / "grub.cfg")).decode()
    menu = grub_menu(cfg)
    assert [e["title"] for e in menu["entries"]] == [
        "Palette eXtended Kubernetes Edge Installer", "Palette eXtended Kubernetes Edge Installer (manual)",
        "Palette Edge Interactive Installer"]
    assert [e["args"] for e in menu["entries"]] == [
        CANVOS_ENTRY_0, [t for t in CANVOS_ENTRY_0 if t not in ("vga=795", "nomodeset", "nodepair.enable")],
        CANVOS_ENTRY_0 + ["interactive-install"]]
    assert {(e["kernel"], e["initrd"]) for e in menu["entries"]} == {("/boot/kernel", "/boot/initrd")}
    assert (menu["default"], menu["timeout"], menu["timeout_style"]) == ("0", "5", "menu")
    assert 'hiddenentry "Text mode" --hotkey "t"' in cfg
    assert "rd.debug" not in cfg


def test_forced_interactive_debug_menu_and_user_data_over_1mb(docker_engine, tmp_path):
    """force_interactive_install, debug and a wider artifact_mode reach the built ISO; a user data over 1 MB is refused
    before any build."""
    build = tmp_path / "build"
    args = {"installer_image": tiny_image(docker_engine), "build_dir": str(build), "iso_name": "menu-options",
            "force_interactive_install": True, "debug": True, "grub_timeout": 9, "extra_cmdline": "panic=7",
            "artifact_mode": "0644"}
    result, proc = run_module(tmp_path, "installer_iso", args)
    assert not result.get("failed"), result.get("msg", "") + proc.stdout
    assert os.stat(result["iso_path"]).st_mode & 0o777 == 0o644  # widened on request
    menu = grub_menu(xorriso_extract(result["iso_path"], "/boot/grub2/grub.cfg", str(tmp_path / "g.cfg")).decode())
    assert (menu["default"], menu["timeout"]) == ("2", "9")
    assert menu["entries"][2]["args"] == CANVOS_ENTRY_0 + ["interactive-install", "rd.immucore.debug",
                                                           "console=tty0", "rd.debug", "panic=7"]
    big = tmp_path / "big-user-data"
    big.write_bytes(b"#cloud-config\n" + b"#" * (1000 * 1000))
    result, proc = run_module(tmp_path, "installer_iso", dict(args, user_data=str(big), iso_name="too-big"))
    assert result.get("failed") is True, proc.stdout
    assert "user_data" in result["msg"] and "1 MB" in result["msg"] and str(big) in result["msg"]
    assert not [name for name in os.listdir(str(build)) if name.startswith("too-big")]
    result, proc = run_module(tmp_path, "installer_iso", dict(args, artifact_mode="0755"))
    assert result.get("failed") is True and "artifact_mode" in result["msg"], proc.stdout


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


def test_esp_holds_the_images_signed_shim_and_grub(iso, docker_engine, standin_images, tmp_path):
    """CONFORMANCE 5.10/5.11: the El Torito EFI image (and the appended ESP) is the installer image's signed shim as
    the removable-media loader, its signed GRUB beside it, and the chainload configuration to the ISO's menu."""
    result = iso["result"]
    assert result["esp"]["signed"] is True and not result.get("warnings")
    assert (result["esp"]["shim"], result["esp"]["grub"]) == (SIGNED_SHIM, SIGNED_GRUB)
    image = installer_image(docker_engine, standin_images)
    xorriso_extract(result["iso_path"], "/boot/uefi.img", str(tmp_path / "uefi.img"))
    files = fat_files(str(tmp_path / "uefi.img"))
    assert sorted(files) == [p.lower() for p in ESP_FILES]
    assert files["efi/boot/bootx64.efi"] == image_file(docker_engine, image, SIGNED_SHIM)
    assert files["efi/boot/grubx64.efi"] == image_file(docker_engine, image, SIGNED_GRUB)
    config = boot_chain.chain_config("COS_LIVE", "/boot/grub2/grub.cfg").encode()
    assert files["efi/boot/grub.cfg"] == files["efi/ubuntu/grub.cfg"] == config
    # started from a CD, the signed GRUB reads $cmdpath/grub.cfg on the ISO9660 filesystem: the same configuration
    for cfg in ("/EFI/BOOT/grub.cfg", "/EFI/ubuntu/grub.cfg"):
        assert xorriso_extract(result["iso_path"], cfg, str(tmp_path / cfg.replace("/", "_"))) == config
    # the appended GPT ESP a USB stick boots from is the same image
    table = _table(result["iso_path"])
    assert fat_files("%s@@%d" % (result["iso_path"], _esp_offset(table))) == files


def _table(path):
    return json.loads(subprocess.run(["sfdisk", "-J", path], capture_output=True, text=True, check=True).stdout)


def mdir_listing(image, directory):
    return subprocess.run(["mdir", "-b", "-i", image, directory], capture_output=True, text=True, check=True).stdout


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
    # the tiny image has no signed shim and GRUB: the builder's own GRUB is made first and becomes the loader
    assert result["esp"]["signed"] is False and "Secure Boot" in result["warnings"][0]
    assert result["esp"]["files"][0] == "EFI/BOOT/bootx64.efi"
    assert result["content_parts"] == [{"name": "big-bundle.tar.zst_part00", "size": 3 * 10 ** 9},
                                       {"name": "big-bundle.tar.zst_part01", "size": 200 * 10 ** 6}]
    iso_path = str(build / "big-content.iso")
    assert result["sha256"] == sha256_file(iso_path)  # taken as xorriso wrote the 3.2 GB, matches the file
    files = xorriso_listing(iso_path)
    assert files["/opt/spectrocloud/content/big-bundle.tar.zst_part00"] == 3 * 10 ** 9
    assert files["/opt/spectrocloud/content/big-bundle.tar.zst_part01"] == 200 * 10 ** 6
    assert "/opt/spectrocloud/content/big-bundle.tar.zst" not in files
    assert "/files-iso/config.yaml" not in files  # no user data given, none invented
    head = subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso_path, "-extract_cut",
                           "/opt/spectrocloud/content/big-bundle.tar.zst_part00", "0", "8", str(tmp_path / "head")],
                          capture_output=True, check=True)
    assert head.returncode == 0 and (tmp_path / "head").read_bytes() == b"\x28\xb5\x2f\xfdHEAD"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso_path, "-extract_cut",
                    "/opt/spectrocloud/content/big-bundle.tar.zst_part01", str(200 * 10 ** 6 - 4), "4",
                    str(tmp_path / "tail")], capture_output=True, check=True)
    assert (tmp_path / "tail").read_bytes() == b"TAIL"
    os.unlink(iso_path)


@pytest.mark.parametrize("case", ["missing_user_data", "missing_content_dir", "bad_iso_name", "missing_local_ui"])
def test_bad_input_fails_clearly_and_leaves_nothing(docker_engine, tmp_path, case):
    inputs = write_inputs(str(tmp_path / "inputs"))
    build = tmp_path / "build"
    args = {"installer_image": tiny_image(docker_engine), "build_dir": str(build),
            "user_data": inputs["user_data"], "content_dir": [inputs["content"]]}
    expected = {
        "missing_user_data": ("user_data", str(tmp_path / "inputs" / "user-data-typo"), "does not exist"),
        "missing_content_dir": ("content_dir", str(tmp_path / "content-typo"), "does not exist"),
        "bad_iso_name": ("iso_name", "edge installer;rm -rf", "letters, digits"),
        "missing_local_ui": ("local_ui", str(tmp_path / "local-ui-typo.tar"), "does not exist"),
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


def _iso_role_playbook(path, variables, out):
    """A play running the installer_iso role with ``variables``, keeping installer_iso_result in ``out``."""
    lines = ["- hosts: localhost", "  connection: local", "  gather_facts: false", "  vars:",
             '    ansible_python_interpreter: "{{ ansible_playbook_python }}"']
    lines += ["    %s: %s" % (name, json.dumps(value)) for name, value in variables.items()]
    lines += ["  roles:", "    - role: edgeforge.artifacts.installer_iso", "  tasks:",
              "    - name: Keep the result fact for the test", "      ansible.builtin.copy:",
              '        content: "{{ installer_iso_result | to_json }}"', "        dest: %s" % json.dumps(str(out)),
              '        mode: "0600"', "      changed_when: false  # the test's own file: not the role's change",
              "      check_mode: false"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _layer_files(registry, name, manifest):
    """{path: bytes} of every regular file in the image's layers, fetched from the registry's blob API."""
    files = {}
    for layer in manifest["layers"]:
        status, _headers, blob = registry.api("/v2/%s/blobs/%s" % (name, layer["digest"]))
        assert status == 200, status
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name] = tar.extractfile(member).read()
    return files


def test_the_iso_pushed_as_an_image(docker_engine, auth_registry, tmp_path):
    """CONFORMANCE 5.16: with installer_iso_push_image the role puts the ISO into a scratch image holding only
    /disk/<ISO_NAME>.iso, pushes it as <registry>/<repo>/<ISO_NAME>:<IMAGE_TAG> with the registry's credentials
    (never printed), and a second run builds and sends nothing. The layer, read through the registry's API, holds
    the very ISO."""
    iso_name, repo = unique("iso-image"), unique("ubuntu")
    build, out = tmp_path / "build", tmp_path / "result.json"
    variables = {
        "build_config_plan": {"config": {"iso_name": iso_name, "image_registry": auth_registry.host,
                                         "image_repo": repo},
                              "installer_image": "palette-installer-image:v4.9.21-isoimage"},
        "build_dir": str(build), "user_data_path": "", "installer_iso_installer_image": tiny_image(docker_engine),
        "installer_iso_push_image": True, "installer_iso_registry_username": auth_registry.username,
        "installer_iso_registry_password": auth_registry.password}
    playbook = _iso_role_playbook(tmp_path / "iso-image.yml", variables, out)
    env = {"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / ".docker")}
    checked = run_playbook(playbook, env=env, check=True)  # nothing built yet: reported, nothing built or pushed
    assert checked.rc == 0, checked.output[-4000:]
    assert json.loads(out.read_text())["image"]["status"] == "would_push"
    assert auth_registry.tags("%s/%s" % (repo, iso_name)) == [] and not (build / (iso_name + ".iso")).exists()
    first = run_playbook(playbook, env=env, verbosity=3)
    assert first.rc == 0, first.output[-4000:]
    assert auth_registry.password not in first.output
    reference = "%s/%s/%s:v4.9.21-isoimage" % (auth_registry.host, repo, iso_name)
    image = json.loads(out.read_text())["image"]
    assert image["reference"] == reference and image["status"] == "pushed"
    digest, manifest = remote_manifest(auth_registry, reference)
    assert digest == image["digest"]
    files = _layer_files(auth_registry, "%s/%s" % (repo, iso_name), manifest)
    assert list(files) == ["disk/%s.iso" % iso_name]  # a scratch image: the ISO and nothing else
    with open(build / (iso_name + ".iso"), "rb") as handle:
        iso_sha = hashlib.sha256(handle.read()).hexdigest()
    assert hashlib.sha256(files["disk/%s.iso" % iso_name]).hexdigest() == iso_sha
    assert auth_registry.tags("%s/%s" % (repo, iso_name)) == ["v4.9.21-isoimage"]  # the temporary tag never left
    local = [tag for img in docker_engine.client.images.list(name="%s/%s/%s" % (auth_registry.host, repo, iso_name))
             for tag in img.tags]
    assert local == [reference]
    assert not [n for n in os.listdir(build) if n.startswith(".edgeforge")]

    second = run_playbook(playbook, env=env)
    assert second.rc == 0, second.output[-4000:]
    assert json.loads(out.read_text())["image"]["status"] == "skipped"
    assert "changed=0" in second.stdout.replace(" ", "")
    docker_engine.client.api.remove_image(reference, noprune=False)
