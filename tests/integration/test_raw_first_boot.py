"""The raw disk's first boot (CONFORMANCE 6.6 step 1): UEFI firmware, the image's shim and GRUB, the recovery
partition's menu, and the entry the OEM partition's ``grubenv`` names: ``next_entry`` for one boot, else
``saved_entry``, which may name an entry of a ``/grubmenu`` found on any partition (after the reset, the state
partition's copy of the recovery system's ``grubmenu.cfg``).

Booted under QEMU (TCG, OVMF) through the edgeforge.artifacts.boot_check module, stopped as soon as the kernel prints
its command line on the serial console (booting the recovery system itself is the business of test_boot_check.py).
Three boots, in parallel, one emulated CPU each: the image as built (``next_entry=recovery``: the recovery entry's
command line, without ``kairos.reset``); a copy whose ``grubenv`` names the reset entry in ``next_entry`` and the
registration entry in ``saved_entry`` (its command line ends in ``kairos.reset``: next_entry comes first); and a copy
with only ``saved_entry=registration`` and a ``/grubmenu`` on the OEM partition (its command line ends in
``stylus.registration``: saved_entry is the default and the sourced file's entry exists). So the test shows GRUB
follows the environment block and the sourced menu rather than its default entry.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import menu
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


# A stand-in for the state partition's /grubmenu after the reset: a registration entry that boots the recovery
# kernel (the disk has no state partition yet) with the token the real entry appends.
TEST_GRUBMENU = """\
menuentry "Registration entry of the sourced grubmenu (test)" --id registration {
    search --no-floppy --label COS_RECOVERY --set=root
    linux ($root)/cOS/vmlinuz %s stylus.registration
    initrd ($root)/cOS/initrd
}
""" % " ".join(menu.RAW_LIVE_ARGS + menu.RAW_CONSOLE_ARGS)


def _with_oem_files(source, target, files, tmp_path):
    """A sparse copy of the disk with ``files`` ({name: bytes}) at the root of its OEM partition (written with debugfs
    at the partition's offset, an existing file of the name replaced)."""
    subprocess.run(["cp", "--sparse=always", source, target], check=True)
    image = "%s?offset=%d" % (target, _oem_offset(target))
    for name, data in files.items():
        local = tmp_path / ("%s-%s" % (os.path.basename(target), name))
        local.write_bytes(data)
        subprocess.run(["debugfs", "-w", "-R", "rm /%s" % name, image], capture_output=True, check=False)
        subprocess.run(["debugfs", "-w", "-R", "write %s %s" % (local, name), image], capture_output=True, check=True)
        written = subprocess.run(["debugfs", "-R", "cat /%s" % name, image], capture_output=True, check=True).stdout
        assert written == data
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
    grubmenu = TEST_GRUBMENU.encode()
    copies = {
        "reset": {"grubenv": grubenv(next_entry="statereset", saved_entry="registration"), "grubmenu": grubmenu},
        "saved": {"grubenv": grubenv(saved_entry="registration"), "grubmenu": grubmenu},
    }
    paths = {"built": built}
    paths.update({name: _with_oem_files(built, str(work / ("%s.raw" % name)), files, work)
                  for name, files in copies.items()})
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        futures = {name: pool.submit(_boot, path, str(work / name)) for name, path in paths.items()}
        boots = {name: future.result() for name, future in futures.items()}
    for name in copies:
        os.unlink(paths[name])
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
    """The same disk with next_entry=statereset boots the reset entry: the entry comes from the OEM grubenv, and
    next_entry comes before saved_entry (registration, whose entry the sourced /grubmenu defines)."""
    args = _command_line(first_boots["reset"])
    assert "root=live:LABEL=COS_RECOVERY" in args and args[-1] == "kairos.reset"
    assert "stylus.registration" not in args


def test_saved_entry_names_an_entry_of_a_sourced_grubmenu(first_boots):
    """A copy with saved_entry=registration (no next_entry) and /grubmenu on the OEM partition boots the sourced
    file's registration entry: saved_entry is the default, and /grubmenu is found by file and sourced (without either,
    GRUB takes the first entry, recovery)."""
    args = _command_line(first_boots["saved"])
    assert args[-1] == "stylus.registration" and "kairos.reset" not in args
    with open(first_boots["saved"]["log"], encoding="utf-8", errors="replace") as handle:
        assert "Registration entry of the sourced grubmenu (test)" in handle.read()
