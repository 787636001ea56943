"""Unit tests of the QEMU boot check: command lines, firmware lookup, console handling, and the wait itself
(driven by a stand-in QEMU script that writes to the serial log, so timeouts and early exits are exercised fast)."""

import os
import stat
import time

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import boot_check as bc
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def test_media_follows_the_file_name():
    assert bc.media_for("/x/a.ISO") == "cdrom"
    assert bc.media_for("/x/a.raw") == "disk"
    assert bc.media_for("/x/a.raw", "cdrom") == "cdrom"
    with pytest.raises(ValidationError):
        bc.media_for("/x/a.raw", "floppy")


def test_bios_cdrom_command():
    cmd = bc.qemu_command("/i.iso", "bios", "cdrom", "tcg", "/log")
    assert cmd[:3] == ["qemu-system-x86_64", "-accel", "tcg"]
    assert "-serial" in cmd and cmd[cmd.index("-serial") + 1] == "file:/log"
    assert "file=/i.iso,media=cdrom,readonly=on,if=ide,index=2" in cmd
    assert "-no-reboot" in cmd and "pflash" not in " ".join(cmd)


def test_uefi_disk_command_uses_snapshot_and_a_vars_copy():
    cmd = " ".join(bc.qemu_command("/d.raw", "uefi", "disk", "kvm", "/log", ovmf_code="/C.fd",
                                   ovmf_vars_copy="/tmp/V.fd"))
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/C.fd" in cmd
    assert "if=pflash,format=raw,unit=1,file=/tmp/V.fd" in cmd
    assert "file=/d.raw,format=raw,if=virtio,snapshot=on" in cmd
    assert "-cpu max" not in cmd


def test_secure_boot_command_uses_q35_with_smm_and_secure_flash():
    cmd = bc.qemu_command("/d.raw", "uefi", "disk", "tcg", "/log", ovmf_code="/SB.fd", ovmf_vars_copy="/tmp/V.fd",
                          secure_boot=True)
    assert cmd[cmd.index("-machine") + 1] == "q35,smm=on"
    assert cmd[cmd.index("-global") + 1] == "driver=cfi.pflash01,property=secure,value=on"
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/SB.fd" in cmd
    assert "if=pflash,format=raw,unit=1,file=/tmp/V.fd" in cmd
    plain = bc.qemu_command("/d.raw", "uefi", "disk", "tcg", "/log", ovmf_code="/C.fd")
    assert plain[plain.index("-machine") + 1] == "pc" and "-global" not in plain


def test_firmware_files(tmp_path):
    assert bc.firmware_files("bios") == (None, None)
    with pytest.raises(ValidationError, match="uefi when secure_boot is true"):
        bc.firmware_files("bios", secure_boot=True)
    code, variables = tmp_path / "SB.fd", tmp_path / "VARS.ms.fd"
    code.write_bytes(b"c")
    variables.write_bytes(b"v")
    assert bc.firmware_files("uefi", True, str(code), str(variables)) == (str(code), str(variables))
    with pytest.raises(ValidationError, match="ovmf_vars"):
        bc.firmware_files("uefi", True, str(code), str(tmp_path / "none.fd"))
    with pytest.raises(ValidationError, match="ovmf_code"):
        bc.firmware_files("uefi", True, str(tmp_path / "none.fd"), str(variables))
    if os.path.isfile(bc.SECURE_BOOT_CODE) and os.path.isfile(bc.SECURE_BOOT_VARS):  # Debian's ovmf package
        assert bc.firmware_files("uefi", True) == (bc.SECURE_BOOT_CODE, bc.SECURE_BOOT_VARS)


def test_secure_boot_boot_uses_a_private_copy_of_the_variables(tmp_path):
    image = tmp_path / "a.raw"
    image.write_bytes(b"raw")
    code, variables = tmp_path / "SB.fd", tmp_path / "VARS.ms.fd"
    code.write_bytes(b"c")
    variables.write_bytes(b"keys")
    args = tmp_path / "args"
    qemu = fake_qemu(tmp_path, 'echo "$@" > %s; printf "host login: " >> "$LOG"; sleep 60' % args)
    result = bc.boot_check(str(image), secure_boot=True, ovmf_code=str(code), ovmf_vars=str(variables), qemu=qemu,
                           timeout=20, log_path=str(tmp_path / "c.log"), poll_interval=0.1)
    assert result["firmware"] == "uefi" and result["secure_boot"] is True
    used = args.read_text()
    assert "q35,smm=on" in used and "file=%s" % code in used and str(variables) not in used
    copy = used.split("unit=1,file=")[1].split()[0]
    assert os.path.basename(copy) == "OVMF_VARS.fd" and not os.path.exists(copy)  # removed after the boot
    assert variables.read_bytes() == b"keys"


def test_bad_firmware_and_accel():
    with pytest.raises(ValidationError):
        bc.qemu_command("/i.iso", "coreboot", "cdrom", "tcg", "/log")
    with pytest.raises(ValidationError):
        bc.resolve_accel("hvf")
    assert bc.resolve_accel("tcg") == "tcg"


def test_find_ovmf_explicit_and_missing(tmp_path):
    code = tmp_path / "CODE.fd"
    code.write_bytes(b"x")
    assert bc.find_ovmf(str(code)) == (str(code), None)
    with pytest.raises(ValidationError):
        bc.find_ovmf(str(tmp_path / "none.fd"))


def test_console_cleanup():
    text = "\x1b[2J\x1b[1;1HBooting\r\n\x1b[0;32m  OK  \x1b[0m] Reached\nEDGEFORGE-BOOT-OK\n"
    assert bc.last_lines(text) == ["Booting", "  OK  ] Reached", "EDGEFORGE-BOOT-OK"]


def fake_qemu(tmp_path, body):
    """A stand-in for qemu-system-x86_64 (a test double of the emulator binary only): it finds the -serial file
    argument and runs ``body`` with $LOG set to it."""
    script = tmp_path / "fake-qemu"
    script.write_text("#!/bin/bash\nfor a in \"$@\"; do case $a in file:*) LOG=${a#file:};; esac; done\n"
                      "case \" $* \" in *' -serial file:'*) ;; esac\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_marker_seen(tmp_path):
    image = tmp_path / "a.iso"
    image.write_bytes(b"iso")
    # agetty writes its prompt without a newline
    qemu = fake_qemu(tmp_path, 'echo "booting" >> "$LOG"; sleep 0.3; printf "\\nedge-host login: " >> "$LOG"; sleep 60')
    started = time.monotonic()
    result = bc.boot_check(str(image), timeout=20, qemu=qemu, log_path=str(tmp_path / "c.log"), poll_interval=0.1)
    assert result["marker_line"] == "edge-host login:"
    assert result["media"] == "cdrom" and result["accel"] == "tcg"
    assert result["firmware"] == "bios" and result["secure_boot"] is False
    assert time.monotonic() - started < 15  # the sleeping emulator was stopped, not waited for


def test_timeout_reports_last_lines_and_stops_qemu(tmp_path):
    image = tmp_path / "a.raw"
    image.write_bytes(b"raw")
    pidfile = tmp_path / "pid"
    qemu = fake_qemu(tmp_path, 'echo $$ > %s; for i in $(seq 1 50); do echo "line $i" >> "$LOG"; done; sleep 60'
                     % pidfile)
    with pytest.raises(bc.BootCheckError) as err:
        bc.boot_check(str(image), timeout=1.5, qemu=qemu, log_path=str(tmp_path / "c.log"), poll_interval=0.1)
    message = str(err.value)
    assert "did not print 'login:' within" in message
    assert "line 50" in message and "line 1\n" not in message
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_early_exit_is_reported(tmp_path):
    image = tmp_path / "a.iso"
    image.write_bytes(b"iso")
    qemu = fake_qemu(tmp_path, 'echo "Kernel panic - not syncing" >> "$LOG"; echo "qemu: bad" >&2; exit 3')
    with pytest.raises(bc.BootCheckError) as err:
        bc.boot_check(str(image), timeout=10, qemu=qemu, log_path=str(tmp_path / "c.log"), poll_interval=0.1)
    assert "QEMU exited (code 3)" in str(err.value) and "Kernel panic" in str(err.value)
    assert "qemu: bad" in str(err.value)


def test_missing_image_and_empty_marker(tmp_path):
    with pytest.raises(ValidationError):
        bc.boot_check(str(tmp_path / "none.iso"))
    image = tmp_path / "a.iso"
    image.write_bytes(b"x")
    with pytest.raises(ValidationError):
        bc.boot_check(str(image), marker="")
