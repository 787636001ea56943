"""The raw disk's cloud extras (CONFORMANCE 6.2, 6.6, B10, B20): their text, and how they enter the recovery
squashfs."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import cloud, raw
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import squashfs_command


def _entries(cfg):
    """{id: (title, body)} of the menu entries."""
    return {m.group(2): (m.group(1), m.group(3)) for m in
            re.finditer(r'^menuentry "([^"]+)" --id (\S+) \{\n(.*?)^\}', cfg, re.M | re.S)}


def test_grubmenu_has_the_reset_and_registration_entries():
    entries = _entries(cloud.GRUBMENU)
    assert sorted(entries) == ["registration", "statereset"]
    title, body = entries["statereset"]
    assert title == "Palette eXtended Kubernetes Edge Reset"
    assert "search --no-floppy --label COS_RECOVERY --set=root" in body
    assert "set img=/cOS/recovery.squashfs" in body and "set img=/cOS/recovery.img" in body
    assert re.search(r"^\s*linux .* kairos\.reset$", body, re.M)
    title, body = entries["registration"]
    assert title == "Palette eXtended Kubernetes Edge Registration"
    assert "search --no-floppy --label COS_STATE --set=root" in body and "set img=/cOS/active.img" in body
    assert re.search(r"^\s*linux .* stylus\.registration$", body, re.M)


@pytest.mark.skipif(not shutil.which("grub-script-check"), reason="grub-script-check (grub-common) not installed")
def test_grubmenu_is_valid_grub_script(tmp_path):
    path = tmp_path / "grubmenu.cfg"
    path.write_text(cloud.GRUBMENU)
    subprocess.run(["grub-script-check", str(path)], check=True)


def test_post_reset_selects_registration_prepares_persistent_and_takes_the_content():
    config = yaml.safe_load(cloud.POST_RESET)
    after = config["stages"]["after-reset"]
    # every item has its own condition and commands (CanvOS's first items lose their condition, B10)
    assert all(set(item) == {"name", "if", "commands"} for item in after)
    grub = [c for item in after if item["if"] == cloud.GRUB_HOST for c in item["commands"]]
    uki = [c for item in after if item["if"] == cloud.UKI_HOST for c in item["commands"]]
    assert "rm -f /oem/80_stylus.yaml" in grub and "rm -f /oem/80_stylus.yaml" in uki
    assert any("grub2-editenv /oem/grubenv set saved_entry=registration" in c for c in grub)
    assert "kairos-agent bootentry --select registration" in uki
    assert 'mount "$(findfs PARTLABEL=persistent)" /usr/local' in grub
    assert "bash /opt/spectrocloud/scripts/content.sh" in grub
    for tool in ("agent-provider-stylus", "palette-tui", "helm"):
        assert "ln -sf /opt/spectrocloud/bin/%s /usr/local/bin/%s" % (tool, tool) in grub
    assert any("journalctl" in c and "/usr/local/installer.log" in c for c in grub)
    assert grub[-1] == "umount /usr/local"
    network = config["stages"]["network"]
    assert network == [{"name": network[0]["name"], "if": "[ -f /run/cos/active_mode ]", "commands": [
        "bash /opt/spectrocloud/scripts/cloud-content.sh",
        "bash /opt/spectrocloud/scripts/cloud-extend-persistent.sh"]}]


@pytest.mark.parametrize("text", [cloud.CLOUD_CONTENT, cloud.EXTEND_PERSISTENT], ids=["content", "extend"])
def test_scripts_are_valid_bash(text, tmp_path):
    path = tmp_path / "script.sh"
    path.write_text(text)
    assert text.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n", str(path)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-S", "warning", str(path)], check=True)


def test_content_script_takes_bundles_configs_then_removes_the_partition():
    text = cloud.CLOUD_CONTENT
    steps = ["blkid -L COS_CONTENT", 'mount -t ext4 -o ro "$part" "$MNT"',
             '"$AGENT" content-extract --source "$bundle" --destination "$BUNDLES"', 'cp "$bundle" "$BUNDLES/"',
             'tar -xf "$bundle" -C "$BUNDLES"', 'cp "$spc" "$CLUSTERCONFIG/"',
             'install -m 0600 "$edge" "$oem/.edge_custom_config.yaml"', 'umount "$MNT" ||', 'wipefs -a "$part"',
             'parted -s "$disk" rm "$number"']
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "MNT=/opt/spectrocloud/content" in text and "BUNDLES=/usr/local/spectrocloud/bundle" in text
    assert "CLUSTERCONFIG=/usr/local/spectrocloud/clusterconfig" in text
    assert "AGENT=/opt/spectrocloud/bin/palette-agent" in text


def test_extend_script_grows_persistent_and_its_filesystem():
    text = cloud.EXTEND_PERSISTENT
    assert "findfs PARTLABEL=persistent" in text
    assert 'growpart "$disk" "$number"' in text and 'sfdisk --no-reread --no-tell-kernel -N "$number"' in text
    assert text.index("sfdisk --no-reread") < text.index('resize2fs "$part"')


def test_staged_files_and_modes(tmp_path):
    names = cloud.stage(str(tmp_path))
    assert names == ["grubmenu.cfg", "custom-post-reset.yaml", "cloud-content.sh", "cloud-extend-persistent.sh"]
    modes = {name: os.stat(tmp_path / name).st_mode & 0o777 for name in names}
    assert modes == {"grubmenu.cfg": 0o644, "custom-post-reset.yaml": 0o644, "cloud-content.sh": 0o755,
                     "cloud-extend-persistent.sh": 0o755}
    assert cloud.files_digest() == cloud.files_digest() and len(cloud.files_digest()) == 64


def test_pseudo_definitions_make_missing_dirs_and_replace_existing_files(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "kairos" / "branding").mkdir(parents=True)
    (rootfs / "etc" / "kairos" / "branding" / "grubmenu.cfg").write_text("theirs\n")
    (rootfs / "opt").mkdir()
    text, excludes = cloud.pseudo_definitions(str(rootfs), "/work/cloud")
    lines = text.splitlines()
    assert excludes == ["etc/kairos/branding/grubmenu.cfg"]
    assert "/system d 755 0 0" in lines and "/system/oem d 755 0 0" in lines
    assert "/opt/spectrocloud d 755 0 0" in lines and "/opt/spectrocloud/scripts d 755 0 0" in lines
    assert not [line for line in lines if line.startswith(("/etc d", "/etc/kairos d", "/opt d"))]
    assert "/opt/spectrocloud/scripts/cloud-content.sh f 755 0 0 cat /work/cloud/cloud-content.sh" in lines
    assert "/etc/kairos/branding/grubmenu.cfg f 644 0 0 cat /work/cloud/grubmenu.cfg" in lines


@pytest.mark.skipif(not shutil.which("mksquashfs"), reason="squashfs-tools not installed")
def test_the_squashfs_command_adds_the_extras(tmp_path):
    """The build's own mksquashfs command with the pseudo file: the four files, their modes, the tree's own file
    replaced, the tree itself unchanged."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "kairos" / "branding").mkdir(parents=True)
    (rootfs / "etc" / "kairos" / "branding" / "grubmenu.cfg").write_text("theirs\n")
    cloud.stage(str(tmp_path / "cloud"))
    text, excludes = cloud.pseudo_definitions(str(rootfs), str(tmp_path / "cloud"))
    (tmp_path / "cloud.pf").write_text(text)
    out = tmp_path / "r.squashfs"
    command = squashfs_command(str(rootfs), str(out), processors=1, pseudo_file=str(tmp_path / "cloud.pf"),
                               excludes=excludes)
    subprocess.run(command, shell=True, check=True, capture_output=True)
    listing = subprocess.run(["unsquashfs", "-lls", "-d", "", str(out)], capture_output=True, text=True,
                             check=True).stdout
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines() if line.startswith("-")}
    assert modes == {"/etc/kairos/branding/grubmenu.cfg": "-rw-r--r--", "/system/oem/custom-post-reset.yaml":
                     "-rw-r--r--", "/opt/spectrocloud/scripts/cloud-content.sh": "-rwxr-xr-x",
                     "/opt/spectrocloud/scripts/cloud-extend-persistent.sh": "-rwxr-xr-x"}
    menu = subprocess.run(["unsquashfs", "-cat", str(out), "etc/kairos/branding/grubmenu.cfg"], capture_output=True,
                          text=True, check=True).stdout
    assert menu == cloud.GRUBMENU
    assert (rootfs / "etc" / "kairos" / "branding" / "grubmenu.cfg").read_text() == "theirs\n"


def test_raw_prepare_script_squashes_with_the_extras():
    paths = {"rootfs": "/work/rootfs", "grub": "/work/grub", "grub_lib": "/usr/lib/grub", "work": "/work",
             "pseudo": "/work/cloud.pf"}
    text = raw.raw_prepare_script(paths, excludes=["etc/kairos/branding/grubmenu.cfg"])
    line = next(line for line in text.splitlines() if line.startswith("mksquashfs"))
    assert " -pf /work/cloud.pf " in line
    assert line.endswith("'tmp/*' etc/kairos/branding/grubmenu.cfg")
    without = raw.raw_prepare_script(dict(paths, pseudo=None))
    assert " -pf " not in without
