"""The raw disk's OEM partition files: the GRUB environment block and the first-boot reset configuration."""

import shutil
import subprocess

import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import menu, oem
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.gpt import MIB


def test_grubenv_is_a_1024_byte_block_grub_editenv_reads(tmp_path):
    block = oem.grubenv(next_entry="recovery")
    assert len(block) == 1024
    assert block.startswith(b"# GRUB Environment Block\nnext_entry=recovery\n#")
    assert set(block[len(b"# GRUB Environment Block\nnext_entry=recovery\n"):]) == {ord("#")}
    if shutil.which("grub-editenv"):  # GRUB's own tool reads it as GRUB does
        path = tmp_path / "grubenv"
        path.write_bytes(block)
        listed = subprocess.run(["grub-editenv", str(path), "list"], capture_output=True, text=True, check=True)
        assert listed.stdout == "next_entry=recovery\n"
    with pytest.raises(ValueError):
        oem.grubenv(big="x" * 1024)


def test_entry_ids_name_entries_of_the_raw_menu():
    cfg = menu.raw_grub_cfg()
    for entry_id in oem.ENTRY_IDS.values():
        assert " --id %s " % entry_id in cfg
    assert "load_env -f (${oem})/grubenv" in cfg and "save_env -f (${oem})/grubenv next_entry" in cfg
    assert cfg.index("load_env") < cfg.index("menuentry")


def test_state_size_follows_auroraboot():
    assert oem.state_size_mib(1000 * MIB) == 3100
    assert oem.state_size_mib(2 * 600 * MIB + 150 * MIB) == 3 * 1350 + 100


def test_reset_config_stages():
    config = yaml.safe_load(oem.reset_config(3100))
    stages = config["stages"]
    layout = stages["rootfs.before"][0]["layout"]
    assert layout["device"] == {"label": "COS_RECOVERY"}
    assert layout["add_partitions"] == [
        {"fsLabel": "COS_STATE", "pLabel": "state", "size": 3100, "filesystem": "ext2"},
        {"fsLabel": "COS_PERSISTENT", "pLabel": "persistent", "size": 0, "filesystem": "ext2"}]
    network = stages["network"]
    assert network[0]["commands"] == ["udevadm trigger"]
    assert "/run/cos/recovery_mode" in network[1]["if"] and "/oem/.autoreset.skip" in network[1]["if"]
    assert network[1]["commands"] == ["kairos-agent --debug reset --unattended --reboot"]
    assert stages["after-reset"][0]["commands"] == ["rm -f /oem/01_reset.yaml"]
