"""edgeforge.artifacts.raw_disk_image against the test bed: the GPT layout, filesystem labels and contents (read with
sfdisk, mtools and e2fsprogs at partition offsets, no mounts), BIOS boot code, sparseness, checksum, idempotency.

(The boots of the raw image under BIOS and UEFI are in test_boot_check.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_chain
from tests.integration.disk_artifacts import (ESP_FILES, LOCAL_UI_FILE, SIGNED_GRUB, SIGNED_SHIM, TOKEN, built_raw,
                                              fat_files, first_boot_min_gib, image_file, installer_image, run_module,
                                              tiny_image)
from tests.integration.helpers import run_playbook

pytestmark = pytest.mark.integration

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
BIOS_BOOT = "21686148-6E49-6E6F-744E-656564454649"


@pytest.fixture(scope="module")
def raw(docker_engine, standin_images, tmp_path_factory):
    return built_raw(docker_engine, standin_images, tmp_path_factory)


def _table(path):
    return json.loads(subprocess.run(["sfdisk", "-J", path], capture_output=True, text=True,
                                     check=True).stdout)["partitiontable"]


def _offset(path, name):
    part = next(p for p in _table(path)["partitions"] if p.get("name") == name)
    return part["start"] * 512


def _debugfs(path, offset, command):
    return subprocess.run(["debugfs", "-R", command, "%s?offset=%d" % (path, offset)], capture_output=True,
                          check=True).stdout


def _label(path, offset):
    return subprocess.run(["e2label", "%s?offset=%d" % (path, offset)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_build_succeeds(raw):
    result = raw["result"]
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["raw_path"] == os.path.join(raw["args"]["build_dir"], "edge-cloud.raw")
    check = subprocess.run(["sha256sum", "-c", "edge-cloud.raw.sha256"], cwd=raw["args"]["build_dir"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and check.stdout.strip() == "edge-cloud.raw: OK"
    assert not [n for n in os.listdir(raw["args"]["build_dir"]) if "partial" in n or "work" in n]
    assert os.stat(result["raw_path"]).st_mode & 0o777 == 0o600  # it holds the user data and its token


def test_partition_table(raw):
    table = _table(raw["result"]["raw_path"])
    assert table["label"] == "gpt"
    parts = table["partitions"]
    expected = [("efi", ESP), ("oem", LINUX), ("recovery", LINUX), ("content", LINUX), ("bios", BIOS_BOOT)]
    assert [(p["name"], p["type"]) for p in parts] == expected
    assert parts[0]["start"] == 2048
    assert all(p["start"] % 2048 == 0 for p in parts)
    assert [p["node"][-1] for p in parts] == ["1", "2", "3", "4", "5"]
    assert raw["result"]["partitions"][2]["name"] == "recovery"


def test_efi_partition(raw):
    path = raw["result"]["raw_path"]
    image = "%s@@%d" % (path, _offset(path, "efi"))
    info = subprocess.run(["minfo", "-i", image, "::"], capture_output=True, text=True, check=True).stdout
    assert "COS_GRUB" in info
    listing = subprocess.run(["mdir", "-b", "-i", image, "::/EFI/BOOT"], capture_output=True, text=True,
                             check=True).stdout.upper()
    assert "BOOTX64.EFI" in listing and "GRUB.CFG" in listing
    efi = subprocess.run(["mtype", "-i", image, "::/EFI/BOOT/BOOTX64.EFI"], capture_output=True, check=True).stdout
    assert efi[:2] == b"MZ"  # a PE/COFF UEFI application


def test_efi_partition_holds_the_images_signed_shim_and_grub(raw, docker_engine, standin_images, tmp_path):
    """CONFORMANCE 6.4: partition 1 (cut out with dd) is the installer image's signed shim as the removable-media
    loader, its signed GRUB beside it, and the chainload configuration to the recovery partition's menu."""
    result, path = raw["result"], raw["result"]["raw_path"]
    assert result["esp"]["signed"] is True and not result.get("warnings")
    part = _table(path)["partitions"][0]
    esp = str(tmp_path / "efi.img")
    subprocess.run(["dd", "if=%s" % path, "of=%s" % esp, "bs=512", "skip=%d" % part["start"],
                    "count=%d" % part["size"], "status=none"], check=True)
    files = fat_files(esp)
    assert sorted(files) == [p.lower() for p in ESP_FILES]
    image = installer_image(docker_engine, standin_images)
    assert files["efi/boot/bootx64.efi"] == image_file(docker_engine, image, SIGNED_SHIM)
    assert files["efi/boot/grubx64.efi"] == image_file(docker_engine, image, SIGNED_GRUB)
    config = boot_chain.chain_config("COS_RECOVERY", "/grub2/grub.cfg").encode()
    assert files["efi/boot/grub.cfg"] == files["efi/ubuntu/grub.cfg"] == config


def test_oem_holds_the_user_data(raw):
    path = raw["result"]["raw_path"]
    offset = _offset(path, "oem")
    assert _label(path, offset) == "COS_OEM"
    with open(raw["inputs"]["user_data"], "rb") as handle:
        assert _debugfs(path, offset, "cat /90_custom.yaml") == handle.read()
    stat = _debugfs(path, offset, "stat /90_custom.yaml").decode()
    assert "Mode:  0600" in stat


def test_oem_sends_the_first_boot_to_recovery_and_resets(raw):
    """CONFORMANCE 6.4: grubenv (1024 bytes, next_entry=recovery) and 01_reset.yaml with the layout and reset
    stages; the state partition holds three recovery partitions and 100 MiB."""
    path = raw["result"]["raw_path"]
    offset = _offset(path, "oem")
    names = sorted(line.split()[-1] for line in _debugfs(path, offset, "ls -l /").decode().splitlines()
                   if line.strip() and not line.split()[-1].startswith((".", "lost+found")))
    assert names == ["01_reset.yaml", "90_custom.yaml", "grubenv"]
    env = _debugfs(path, offset, "cat /grubenv")
    assert len(env) == 1024 and env.startswith(b"# GRUB Environment Block\nnext_entry=recovery\n")
    reset = yaml.safe_load(_debugfs(path, offset, "cat /01_reset.yaml"))
    added = reset["stages"]["rootfs.before"][0]["layout"]["add_partitions"]
    recovery = next(p for p in _table(path)["partitions"] if p["name"] == "recovery")
    assert added[0] == {"fsLabel": "COS_STATE", "pLabel": "state", "size": 3 * recovery["size"] // 2048 + 100,
                        "filesystem": "ext2"}
    assert (added[1]["pLabel"], added[1]["fsLabel"], added[1]["size"]) == ("persistent", "COS_PERSISTENT", 0)
    cfg = _debugfs(path, _offset(path, "recovery"), "cat /grub2/grub.cfg").decode()
    assert '--id recovery' in cfg and "load_env -f (${oem})/grubenv" in cfg


def test_min_root_volume_holds_the_partitions_the_first_boot_adds(raw):
    """B21: the returned minimum root volume is the image's partitions (as sfdisk reads them), the state partition
    its 01_reset.yaml adds, a 10 GiB persistent partition plus twice the content partition, and the backup GPT."""
    path = raw["result"]["raw_path"]
    reset = yaml.safe_load(_debugfs(path, _offset(path, "oem"), "cat /01_reset.yaml"))
    state_mib = reset["stages"]["rootfs.before"][0]["layout"]["add_partitions"][0]["size"]
    minimum = raw["result"]["min_root_volume_gib"]
    assert isinstance(minimum, int)
    assert minimum == first_boot_min_gib(path, state_mib)
    # CanvOS's AMI keeps the image size: far too small for the state partition alone
    assert minimum * 1024 ** 3 > os.path.getsize(path) + state_mib * 1024 ** 2


def test_recovery_holds_the_image(raw, tmp_path):
    path = raw["result"]["raw_path"]
    offset = _offset(path, "recovery")
    assert _label(path, offset) == "COS_RECOVERY"
    listing = _debugfs(path, offset, "ls -l /cOS").decode()
    for name in ("recovery.squashfs", "vmlinuz", "initrd"):
        assert name in listing
    squashfs = _debugfs(path, offset, "cat /cOS/recovery.squashfs")
    assert squashfs[:4] == b"hsqs"
    (tmp_path / "recovery.squashfs").write_bytes(squashfs)
    tree = subprocess.run(["unsquashfs", "-l", str(tmp_path / "recovery.squashfs")], capture_output=True, text=True,
                          check=True).stdout
    # CONFORMANCE 6.2: local-ui.tar extracted into the installer root filesystem's /opt/spectrocloud
    assert "squashfs-root/opt/spectrocloud/" + LOCAL_UI_FILE in tree
    cfg = _debugfs(path, offset, "cat /grub2/grub.cfg").decode()
    assert "root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs" in cfg


CLOUD_FILES = {"etc/kairos/branding/grubmenu.cfg": "-rw-r--r--", "system/oem/custom-post-reset.yaml": "-rw-r--r--",
               "opt/spectrocloud/scripts/cloud-content.sh": "-rwxr-xr-x",
               "opt/spectrocloud/scripts/cloud-extend-persistent.sh": "-rwxr-xr-x"}


def test_recovery_system_holds_the_cloud_extras(raw, docker_engine, standin_images, tmp_path):
    """CONFORMANCE 6.2, 6.6: the recovery squashfs (cut out of the disk with debugfs, read with unsquashfs) holds the
    four cloud files, root-owned with their modes, with the reset and registration entries, the after-reset and
    network stages; the installer image itself (the ISO's) does not."""
    path = raw["result"]["raw_path"]
    squashfs = tmp_path / "recovery.squashfs"
    squashfs.write_bytes(_debugfs(path, _offset(path, "recovery"), "cat /cOS/recovery.squashfs"))
    listing = subprocess.run(["unsquashfs", "-lls", "-d", "", str(squashfs)] + list(CLOUD_FILES),
                             capture_output=True, text=True, check=True).stdout
    found = {line.split()[-1].lstrip("/"): (line.split()[0], line.split()[1]) for line in listing.splitlines()
             if line.startswith("-")}
    assert found == {name: (mode, "root/root") for name, mode in CLOUD_FILES.items()}

    def read(name):
        return subprocess.run(["unsquashfs", "-cat", str(squashfs), name], capture_output=True, text=True,
                              check=True).stdout

    menu = read("etc/kairos/branding/grubmenu.cfg")
    reset = menu.split('menuentry "Palette eXtended Kubernetes Edge Reset" --id statereset {', 1)[1].split("\n}")[0]
    assert "--label COS_RECOVERY" in reset and "/cOS/recovery.squashfs" in reset and "/cOS/recovery.img" in reset
    assert "kairos.reset\n" in reset
    registration = menu.split('menuentry "Palette eXtended Kubernetes Edge Registration" --id registration {',
                              1)[1].split("\n}")[0]
    assert "--label COS_STATE" in registration and "set img=/cOS/active.img" in registration
    assert "stylus.registration\n" in registration
    stages = yaml.safe_load(read("system/oem/custom-post-reset.yaml"))["stages"]
    commands = " ; ".join(c for item in stages["after-reset"] for c in item["commands"])
    for command in ("rm -f /oem/80_stylus.yaml", "grub2-editenv /oem/grubenv set saved_entry=registration",
                    "kairos-agent bootentry --select registration", "findfs PARTLABEL=persistent)\" /usr/local",
                    "bash /opt/spectrocloud/scripts/content.sh", "/usr/local/bin/agent-provider-stylus",
                    "/usr/local/bin/palette-tui", "/usr/local/bin/helm", "/usr/local/installer.log"):
        assert command in commands
    assert stages["network"][0]["if"] == "[ -f /run/cos/active_mode ]"
    assert stages["network"][0]["commands"] == ["bash /opt/spectrocloud/scripts/cloud-content.sh",
                                                "bash /opt/spectrocloud/scripts/cloud-extend-persistent.sh"]
    content = read("opt/spectrocloud/scripts/cloud-content.sh")
    for step in ("blkid -L COS_CONTENT", "content-extract", "spc-config", ".edge_custom_config.yaml", "wipefs -a",
                 "parted -s"):
        assert step in content
    assert "resize2fs" in read("opt/spectrocloud/scripts/cloud-extend-persistent.sh")
    # one installer image for ISO and raw disk: the extras are not in the image the ISO is made of
    image = installer_image(docker_engine, standin_images)
    out = docker_engine.client.containers.run(image, ["sh", "-c", "ls /" + " /".join(CLOUD_FILES) + " 2>&1 || true"],
                                              remove=True, entrypoint=[]).decode()
    assert out.count("No such file") == len(CLOUD_FILES), out


def test_content_partition(raw):
    path = raw["result"]["raw_path"]
    offset = _offset(path, "content")
    assert _label(path, offset) == "COS_CONTENT"
    assert "ext4" in subprocess.run(["dumpe2fs", "-h", "%s?offset=%d" % (path, offset)], capture_output=True,
                                    text=True, check=True).stdout.lower().replace("extent", "ext4")
    bundles = _debugfs(path, offset, "ls /bundle-content").decode()
    assert "core-bundle.tar.zst" in bundles and "extra.tar" in bundles and "notes.txt" not in bundles
    with open(raw["inputs"]["clusterconfig"], "rb") as handle:
        assert _debugfs(path, offset, "cat /spc-config/spc.tgz") == handle.read()
    with open(raw["inputs"]["edge_custom_config"], "rb") as handle:
        assert _debugfs(path, offset, "cat /edge-config/.edge_custom_config.yaml") == handle.read()


def test_bios_boot_code(raw):
    path = raw["result"]["raw_path"]
    with open(path, "rb") as handle:
        mbr = handle.read(512)
        bios = next(p for p in _table(path)["partitions"] if p["name"] == "bios")
        handle.seek(bios["start"] * 512)
        core = handle.read(512)
    assert mbr[510:512] == b"\x55\xaa"
    assert b"GRUB" in mbr[:440]
    assert int.from_bytes(mbr[0x5c:0x64], "little") == bios["start"]
    assert int.from_bytes(core[500:508], "little") == bios["start"] + 1


def test_image_is_sparse(raw):
    result = raw["result"]
    stat = os.stat(result["raw_path"])
    assert result["allocated"] == stat.st_blocks * 512
    assert stat.st_blocks * 512 < 0.8 * stat.st_size, (stat.st_blocks * 512, stat.st_size)


def test_token_never_printed(raw):
    assert TOKEN not in raw["proc"].output
    assert TOKEN not in json.dumps(raw["result"])


def test_second_run_changes_nothing(raw):
    result, proc = run_module(raw["work"], "raw_disk_image", raw["args"])
    assert result["changed"] is False, proc.stdout
    assert result["sha256"] == raw["result"]["sha256"]
    assert result["min_root_volume_gib"] == raw["result"]["min_root_volume_gib"]  # read from the image, not the build


def test_a_wider_mode_is_applied_without_a_rebuild(raw):
    path = raw["result"]["raw_path"]
    before = os.stat(path)
    result, proc = run_module(raw["work"], "raw_disk_image", dict(raw["args"], artifact_mode="0640"), check=True)
    assert result["changed"] is True and os.stat(path).st_mode & 0o777 == 0o600, proc.stdout
    result, proc = run_module(raw["work"], "raw_disk_image", dict(raw["args"], artifact_mode="0640"))
    assert result["changed"] is True and result["sha256"] == raw["result"]["sha256"], proc.stdout
    after = os.stat(path)
    assert after.st_mode & 0o777 == 0o640 and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    result, proc = run_module(raw["work"], "raw_disk_image", dict(raw["args"], artifact_mode="0640"))
    assert result["changed"] is False, proc.stdout
    os.chmod(path, 0o600)


def test_roles_raw_disk_image_and_the_deprecated_installer_iso_variables(docker_engine, tmp_path):
    """The installer_iso role with the old installer_iso_raw_* variables still builds the raw image (through the
    raw_disk_image role) with deprecation warnings; the raw_disk_image role's one result fact describes it."""
    build = tmp_path / "build"
    result_path = tmp_path / "result.json"
    playbook = tmp_path / "roles.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars:
            ansible_python_interpreter: "{{ ansible_playbook_python }}"
            build_config_plan: {config: {iso_name: role-raw}, installer_image: %(image)s}
            build_dir: %(build)s
            user_data_path: ""
            installer_iso_iso: false
            installer_iso_raw_image: true
            installer_iso_raw_default_entry: reset
            installer_iso_grub_timeout: 0
          roles:
            - role: edgeforge.artifacts.installer_iso
          tasks:
            - name: Keep the result fact for the test
              ansible.builtin.copy:
                content: "{{ {'result': raw_disk_image_result, 'old': installer_iso_raw_image_path} | to_json }}"
                dest: %(out)s
                mode: "0600"
        """ % {"image": json.dumps(tiny_image(docker_engine)), "build": json.dumps(str(build)),
               "out": json.dumps(str(result_path))}))
    proc = run_playbook(str(playbook))
    assert proc.rc == 0, proc.output
    facts = json.loads(result_path.read_text())
    raw_path = str(build / "role-raw.raw")
    assert facts["result"]["raw_path"] == raw_path == facts["old"]
    assert facts["result"]["sha256"] == open(raw_path + ".sha256", encoding="utf-8").read().split()[0]
    assert facts["result"]["min_root_volume_gib"] == first_boot_min_gib(raw_path)  # B21, in the role's fact
    warnings = " ".join(proc.output.split())
    for name in ("installer_iso_raw_image", "installer_iso_raw_default_entry"):
        assert "The role variable %s is deprecated" % name in warnings, proc.output
    assert not (build / "role-raw.iso").exists()
    cfg = _debugfs(raw_path, _offset(raw_path, "recovery"), "cat /grub2/grub.cfg").decode()
    assert "set default=1" in cfg and "set timeout=0" in cfg  # the old default_entry and the ISO role's timeout
