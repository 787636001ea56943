"""The ISO's boot menu under the installer image's signed GRUB (Debian's, in the stand-in image), which has no
``hiddenentry`` command: no "can't find command" on the serial console, and the default entry still boots.

One UEFI boot under QEMU (TCG, OVMF) through the edgeforge.artifacts.boot_check module, stopped as soon as the kernel
prints its command line (the full boot of the ISO is test_boot_check.py's)."""

from __future__ import annotations

import os

import pytest

from tests.integration.disk_artifacts import built_iso, run_module

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = int(os.environ.get("EDGEFORGE_BOOT_TIMEOUT", "900"))
MARKER = "rd.live.squashimg=rootfs.squashfs"  # a token of every ISO entry's command line


def test_signed_grub_reads_the_menu_without_errors(docker_engine, standin_images, tmp_path_factory, tmp_path):
    iso = built_iso(docker_engine, standin_images, tmp_path_factory)
    assert not iso["result"].get("failed"), iso["result"].get("msg")
    assert iso["result"]["esp"]["signed"] is True  # the image's signed GRUB reads the menu under UEFI
    log = str(tmp_path / "console.log")
    result, proc = run_module(tmp_path, "boot_check", {"path": iso["result"]["iso_path"], "firmware": "uefi",
                                                       "marker": MARKER, "timeout": BOOT_TIMEOUT, "log_path": log,
                                                       "cpus": 1})
    assert not result.get("failed"), result.get("msg", "") + proc.stdout[-2000:]
    print("ISO under UEFI to the kernel command line: %.1f s" % result["seconds"])
    with open(log, encoding="utf-8", errors="replace") as handle:
        console = handle.read()
    assert "Palette eXtended Kubernetes Edge Installer" in console  # the menu was read
    assert "can't find command" not in console
    assert "cdroot" in result["marker_line"].split()  # the first entry's command line
