"""The raw disk's first boot (CONFORMANCE 6.6 step 1): UEFI firmware, the image's shim and GRUB, the recovery
partition's menu, and the entry the OEM partition's ``grubenv`` names in ``next_entry``.

Booted under QEMU (TCG, OVMF) through the edgeforge.artifacts.boot_check module, stopped as soon as the kernel prints
its command line on the serial console (booting the recovery system itself is the business of test_boot_check.py).
Two boots, in parallel, one emulated CPU each: the image as built (``next_entry=recovery``: the recovery entry's
command line, without ``kairos.reset``) and a copy whose ``grubenv`` names the reset entry (its command line ends in
``kairos.reset``), so the test shows GRUB follows the environment block rather than its default entry.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.oem import grubenv
from tests.integration.disk_artifacts import built_raw, run_module

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = int(os.environ.get("EDGEFORGE_BOOT_TIMEOUT", "900"))
# a token of both recovery entries' command lines (disk.menu RAW_LIVE_ARGS), printed by the kernel early
MARKER = "rd.live.squashimg=recovery.squashfs"


def _oem_offset(path):
    table = json.loads(subprocess.run(["sfdisk", "-J", path], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    return next(p for p in table["partitions"] if p.get("name") == "oem")["start"] * 512


def _with_next_entry(source, target, entry, tmp_path):
    """A sparse copy of the disk whose OEM grubenv names ``entry`` (written with debugfs at the partition's offset)."""
    subprocess.run(["cp", "--sparse=always", source, target], check=True)
    env = tmp_path / "grubenv"
    env.write_bytes(grubenv(next_entry=entry))
    image = "%s?offset=%d" % (target, _oem_offset(target))
    for command in ("rm /grubenv", "write %s grubenv" % env):
        subprocess.run(["debugfs", "-w", "-R", command, image], capture_output=True, check=True)
    written = subprocess.run(["debugfs", "-R", "cat /grubenv", image], capture_output=True, check=True).stdout
    assert written == env.read_bytes()
    return target


def _boot(path, work):
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "console.log")
    result, proc = run_module(work, "boot_check", {"path": path, "firmware": "uefi", "marker": MARKER,
                                                   "timeout": BOOT_TIMEOUT, "log_path": log, "cpus": 1})
    return {"result": result, "proc": proc, "log": log}


@pytest.fixture(scope="module")
def first_boots(docker_engine, standin_images, tmp_path_factory):
    raw = built_raw(docker_engine, standin_images, tmp_path_factory)
    assert not raw["result"].get("failed"), raw["result"].get("msg")
    work = tmp_path_factory.mktemp("first-boot")
    built = raw["result"]["raw_path"]
    reset = _with_next_entry(built, str(work / "reset.raw"), "statereset", work)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {"built": pool.submit(_boot, built, str(work / "built")),
                   "reset": pool.submit(_boot, reset, str(work / "reset"))}
        boots = {name: future.result() for name, future in futures.items()}
    os.unlink(reset)
    return boots


def _command_line(boot):
    result, proc = boot["result"], boot["proc"]
    assert not result.get("failed"), result.get("msg", "") + proc.stdout[-2000:]
    line = result["marker_line"]
    # the kernel's own line ("Command line:" or "Kernel command line:"), not GRUB's menu
    assert "ommand line:" in line, line
    print("first boot to the kernel command line: %.1f s" % result["seconds"])
    return line.split("ommand line:", 1)[1].split()


def test_first_boot_takes_the_recovery_entry(first_boots):
    """The disk as built: next_entry=recovery, the recovery system's command line (not the reset entry's)."""
    args = _command_line(first_boots["built"])
    assert args[0].endswith("/cOS/vmlinuz"), args  # BOOT_IMAGE: the recovery partition's kernel
    for token in ("root=live:LABEL=COS_RECOVERY", "rd.live.dir=/cOS", MARKER, "console=ttyS0,115200"):
        assert token in args
    assert "kairos.reset" not in args
    with open(first_boots["built"]["log"], encoding="utf-8", errors="replace") as handle:
        assert "Palette eXtended Kubernetes Edge Recovery" in handle.read()  # the recovery partition's menu


def test_grub_follows_the_oem_grubenv(first_boots):
    """The same disk with next_entry=statereset boots the reset entry: the entry comes from the OEM grubenv."""
    args = _command_line(first_boots["reset"])
    assert "root=live:LABEL=COS_RECOVERY" in args and args[-1] == "kairos.reset"
