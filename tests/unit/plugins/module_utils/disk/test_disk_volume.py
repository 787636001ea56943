"""The raw disk's minimum root volume (B21): the rule, and reading it from a real partition table (sfdisk)."""

import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import gpt, oem, volume
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError

MIB, GIB = volume.MIB, volume.GIB


def test_the_rule_counts_partitions_state_persistent_and_the_backup_gpt():
    # 1 GiB of partitions, a 300 MiB recovery: state = 3 x 300 + 100 = 1000 MiB, persistent 10 GiB, 1 MiB tail
    need = GIB + 1000 * MIB + volume.PERSISTENT_MIN_BYTES + MIB
    assert volume.min_root_volume_gib(GIB, 300 * MIB) == -(-need // GIB) == 12


def test_the_state_size_is_the_one_01_reset_yaml_gets():
    recovery = 777 * MIB
    assert oem.state_size_mib(recovery) == 3 * 777 + 100
    need = GIB + oem.state_size_mib(recovery) * MIB + volume.PERSISTENT_MIN_BYTES + MIB
    assert volume.min_root_volume_gib(GIB, recovery) == -(-need // GIB) == 14


def test_rounded_up_to_whole_gib():
    # exactly on a GiB boundary stays; one MiB more takes the next GiB
    end = 10 * GIB - volume.PERSISTENT_MIN_BYTES - 100 * MIB - MIB  # recovery 0: state 100 MiB
    assert volume.min_root_volume_gib(end, 0) == 10
    assert volume.min_root_volume_gib(end + MIB, 0) == 11
    assert volume.min_root_volume_gib(end + 1, 0) == 11  # a partition end off the MiB grid is aligned up first


def test_content_counts_twice_on_persistent():
    base = volume.min_root_volume_gib(GIB, 300 * MIB)
    assert volume.min_root_volume_gib(GIB, 300 * MIB, content_bytes=GIB) == base + 2


def _disk(tmp_path, content):
    layout = gpt.plan_raw_layout(5 * MIB, 1, 400 * MIB, content_bytes=content)
    path = tmp_path / "disk.raw"
    with open(path, "wb") as handle:
        handle.truncate(layout["size"])
    subprocess.run(["sfdisk", "--quiet", str(path)], input=gpt.sfdisk_script(layout).encode(), check=True)
    return str(path), layout


@pytest.mark.parametrize("content", [0, 700 * MIB])
def test_read_from_the_images_own_table(tmp_path, content):
    path, layout = _disk(tmp_path, content)
    parts = volume.read_gpt(path)
    assert [(p["name"], p["start"], p["end"] - p["start"]) for p in parts] == [
        (p["name"], p["offset"], p["bytes"]) for p in layout["partitions"]]
    sizes = {p["name"]: p["bytes"] for p in layout["partitions"]}
    last = layout["partitions"][-1]
    expected = volume.min_root_volume_gib(last["offset"] + last["bytes"], sizes["recovery"], sizes.get("content", 0))
    assert volume.image_min_root_volume_gib(path) == expected
    # the image's own size is far below it: CanvOS's AMI default (the image size) would not hold state
    assert expected * GIB > layout["size"] + oem.state_size_mib(sizes["recovery"]) * MIB


def test_not_a_gpt_disk(tmp_path):
    path = tmp_path / "empty.raw"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(DiskBuildError, match="no GPT header"):
        volume.read_gpt(str(path))
