"""Boot the ISO and the raw disk image built from the stand-in installer image in QEMU (TCG) under BIOS (SeaBIOS) and
UEFI (OVMF), through the edgeforge.artifacts.boot_check module, and see the module's default marker: the getty login
prompt on the serial console, which a real Kairos system prints as the stand-in does.

The four boots run two at a time, one emulated CPU each. A boot takes about two minutes on an idle 2-core machine
with software emulation, several when the machine is busy: the per-boot timeout is EDGEFORGE_BOOT_TIMEOUT seconds
(default 900)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import time

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.boot_check import clean_console
from tests.integration.disk_artifacts import built_iso, built_raw, run_module

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = int(os.environ.get("EDGEFORGE_BOOT_TIMEOUT", "900"))


@pytest.fixture(scope="module")
def artifacts(docker_engine, standin_images, tmp_path_factory):
    iso = built_iso(docker_engine, standin_images, tmp_path_factory)
    raw = built_raw(docker_engine, standin_images, tmp_path_factory)
    assert not iso["result"].get("failed"), iso["result"].get("msg")
    assert not raw["result"].get("failed"), raw["result"].get("msg")
    return {"iso": iso, "raw": raw}


# in pairs of one ISO and one raw image, so no image file is booted twice at the same moment
BOOTS = [("iso", "bios"), ("raw", "bios"), ("iso", "uefi"), ("raw", "uefi")]


def _boot(artifacts, tmp_path, kind, firmware):
    built = artifacts[kind]
    path = built["result"]["iso_path" if kind == "iso" else "raw_path"]
    log = str(tmp_path / ("%s-%s.log" % (kind, firmware)))
    started = time.monotonic()
    # one emulated CPU each, two boots at a time: on two host cores that is about 1.5x faster than one
    # two-CPU boot after the other (software emulation spends most of a boot on one CPU anyway)
    result, proc = run_module(tmp_path / ("%s-%s" % (kind, firmware)), "boot_check", {
        "path": path, "firmware": firmware, "timeout": BOOT_TIMEOUT, "log_path": log, "cpus": 1})
    return {"path": path, "log": log, "result": result, "proc": proc, "elapsed": time.monotonic() - started}


@pytest.fixture(scope="module")
def boots(artifacts, tmp_path_factory):
    base = tmp_path_factory.mktemp("boots")
    for kind, firmware in BOOTS:
        (base / ("%s-%s" % (kind, firmware))).mkdir()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {boot: pool.submit(_boot, artifacts, base, *boot) for boot in BOOTS}
        return {boot: future.result() for boot, future in futures.items()}


@pytest.mark.parametrize("kind,firmware", BOOTS)
def test_boots_to_the_marker(artifacts, boots, kind, firmware):
    boot = boots[(kind, firmware)]
    result, proc, log, path = boot["result"], boot["proc"], boot["log"], boot["path"]
    sha_before = artifacts[kind]["result"]["sha256"]
    assert not result.get("failed"), result.get("msg", "") + proc.stdout[-2000:]
    assert result["changed"] is False
    assert "login:" in result["marker_line"]  # agetty's prompt: "<hostname> login: "
    assert result["firmware"] == firmware and result["accel"] == "tcg"
    assert result["media"] == ("cdrom" if kind == "iso" else "disk")
    with open(log, encoding="utf-8", errors="replace") as handle:
        console = handle.read()
    assert "login:" in console
    if kind == "iso":
        assert "Palette eXtended Kubernetes Edge Installer" in console  # the GRUB menu on the serial console
    else:
        assert "Palette eXtended Kubernetes Edge Recovery" in console
    # the raw disk is attached in snapshot mode: the image still matches its checksum
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(8 * 2 ** 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == sha_before
    print("boot %s/%s: %.1f s to the marker (%.1f s with ansible-playbook)" % (
        kind, firmware, result["seconds"], boot["elapsed"]))


def test_timeout_fails_with_the_last_console_lines(artifacts, tmp_path):
    path = artifacts["iso"]["result"]["iso_path"]
    result, proc = run_module(tmp_path, "boot_check", {"path": path, "marker": "A-LINE-THAT-NEVER-COMES",
                                                       "timeout": 20, "log_path": str(tmp_path / "c.log")})
    assert result.get("failed") is True, proc.stdout
    assert "did not print 'A-LINE-THAT-NEVER-COMES' within 20" in result["msg"]
    assert "last console lines" in result["msg"]
    with open(str(tmp_path / "c.log"), encoding="utf-8", errors="replace") as handle:
        console = clean_console(handle.read())
    shown = [line for line in result["msg"].split("last console lines:\n", 1)[1].split("\n") if line.strip()]
    assert len(shown) >= 5, result["msg"]
    assert all(line.strip() in console for line in shown), result["msg"]  # they are the console's own lines
    # QEMU was stopped: no emulator is left with this console log
    out = os.popen("ps -eo args").read()
    assert str(tmp_path / "c.log") not in out
