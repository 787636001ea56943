# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot an installer ISO or a raw disk image in QEMU and wait for a marker line on the serial console.

- Acceleration: TCG by default. KVM is used only when asked for (``accel="kvm"``) or when ``accel="auto"`` finds
  /dev/kvm usable AND a short probe of QEMU with KVM succeeds. (On some hosts /dev/kvm is a paravirtual variant where
  guest kernels hang early; the probe cannot see that, which is why TCG stays the default.)
- Firmware: ``bios`` (SeaBIOS, QEMU's default) or ``uefi`` (OVMF: the code file read-only and a private copy of the
  variables file, so the system's copy is never written).
- Secure Boot (``secure_boot=True``, UEFI only): OVMF's Secure Boot build with Microsoft's keys enrolled (Debian's
  ``OVMF_CODE_4M.secboot.fd`` and a per-run copy of ``OVMF_VARS_4M.ms.fd`` by default), which needs a q35 machine with
  SMM and secure flash (``-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on``). It starts only
  loaders signed by a key in its db (Microsoft's UEFI CA signs the distributions' shims), as a real machine with Secure
  Boot enabled does.
- Marker: by default the getty login prompt (``login:``), which a real Kairos system prints on the serial console when
  ``console=ttyS0`` is on its kernel command line (the CanvOS boot menu puts it there).
- Media: an ``.iso`` boots as a CD-ROM; anything else as a virtio disk with ``snapshot=on`` (the image is never
  modified, its checksum stays valid).
- The serial console goes to a log file; the wait is bounded; on timeout or an early QEMU exit the error holds the
  last console lines. QEMU is always stopped (terminate, then kill) and its process group reaped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, deadline_after)

DEFAULT_MARKER = "login:"
DEFAULT_TIMEOUT = 180
FIRMWARES = ("bios", "uefi")
ACCELS = ("tcg", "kvm", "auto")
MEDIA = ("auto", "cdrom", "disk")
OVMF_PAIRS = (
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ("/usr/share/qemu/OVMF.fd", None),
)
SECURE_BOOT_CODE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
SECURE_BOOT_VARS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
TAIL_LINES = 30
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[A-Za-z=>]|\r")


class BootCheckError(EdgeforgeError):
    """The image did not reach the marker in time (the message holds the last console lines)."""


def clean_console(text):
    """Console output without terminal escape sequences and carriage returns."""
    return _ANSI_RE.sub("", text)


def last_lines(text, count=TAIL_LINES):
    lines = [line for line in clean_console(text).split("\n") if line.strip()]
    return lines[-count:]


def media_for(path, media="auto"):
    if media not in MEDIA:
        raise ValidationError("media", media, "one of %s" % ", ".join(MEDIA))
    if media != "auto":
        return media
    return "cdrom" if path.lower().endswith(".iso") else "disk"


def find_ovmf(code=None, variables=None):
    """(code, vars) firmware files; explicit paths win, else the first installed pair."""
    if code:
        if not os.path.isfile(code):
            raise ValidationError("ovmf_code", code, "an existing OVMF code file")
        if variables and not os.path.isfile(variables):
            raise ValidationError("ovmf_vars", variables, "an existing OVMF variables file")
        return code, variables
    for pair_code, pair_vars in OVMF_PAIRS:
        if os.path.isfile(pair_code) and (pair_vars is None or os.path.isfile(pair_vars)):
            return pair_code, pair_vars
    raise BootCheckError("UEFI boot needs OVMF (Debian/Ubuntu package 'ovmf'); none found in %s"
                         % ", ".join(c for c, _v in OVMF_PAIRS))


def firmware_files(firmware, secure_boot=False, ovmf_code=None, ovmf_vars=None):
    """(code, vars template) for the boot: None, None for BIOS; Debian's Secure Boot pair unless given."""
    if firmware == "bios":
        if secure_boot:
            raise ValidationError("firmware", firmware, "uefi when secure_boot is true (Secure Boot is a UEFI feature)")
        return None, None
    if not secure_boot:
        return find_ovmf(ovmf_code, ovmf_vars)
    code, variables = ovmf_code or SECURE_BOOT_CODE, ovmf_vars or SECURE_BOOT_VARS
    if not os.path.isfile(code):
        raise ValidationError("ovmf_code", code, "an existing OVMF Secure Boot code file (Debian package ovmf)")
    if not os.path.isfile(variables):
        raise ValidationError("ovmf_vars", variables, "an existing OVMF variables file with Secure Boot keys enrolled "
                                                      "(Debian package ovmf)")
    return code, variables


def kvm_usable(qemu="qemu-system-x86_64", timeout=15):
    """True when /dev/kvm opens and QEMU starts with KVM (a probe: it cannot see guests hanging later)."""
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        proc = subprocess.run([qemu, "-accel", "kvm", "-machine", "none", "-nodefaults", "-display", "none",
                               "-monitor", "stdio"], input=b"quit\n", capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def resolve_accel(accel, qemu="qemu-system-x86_64"):
    if accel not in ACCELS:
        raise ValidationError("accel", accel, "one of %s (tcg is the default: it works everywhere)" % ", ".join(ACCELS))
    if accel == "auto":
        return "kvm" if kvm_usable(qemu) else "tcg"
    return accel


def qemu_command(image, firmware, media, accel, serial_log, memory_mb=2048, cpus=2, ovmf_code=None,
                 ovmf_vars_copy=None, qemu="qemu-system-x86_64", secure_boot=False):
    """The QEMU argument list (pure: unit-tested)."""
    if firmware not in FIRMWARES:
        raise ValidationError("firmware", firmware, "one of %s" % ", ".join(FIRMWARES))
    # OVMF's Secure Boot build keeps its variables in SMM-protected flash: q35 with SMM, secure pflash
    machine = "q35,smm=on" if secure_boot else "pc"
    cmd = [qemu, "-accel", accel, "-machine", machine, "-m", str(int(memory_mb)), "-smp", str(int(cpus)),
           "-display", "none", "-vga", "std", "-monitor", "none", "-parallel", "none", "-nic", "none",
           "-serial", "file:%s" % serial_log, "-no-reboot"]
    if secure_boot:
        cmd += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    if accel == "tcg":
        cmd += ["-cpu", "max"]
    if firmware == "uefi":
        cmd += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s" % ovmf_code]
        if ovmf_vars_copy:
            cmd += ["-drive", "if=pflash,format=raw,unit=1,file=%s" % ovmf_vars_copy]
    if media == "cdrom":
        cmd += ["-drive", "file=%s,media=cdrom,readonly=on,if=ide,index=2" % image, "-boot", "order=d"]
    else:
        cmd += ["-drive", "file=%s,format=raw,if=virtio,snapshot=on" % image, "-boot", "order=c"]
    return cmd


def _stop(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except OSError:
        proc.terminate()
    try:
        proc.wait(timeout=10)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait(timeout=10)


class _Terminated(BaseException):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated("terminated by signal %d" % signum)


def _stop_on_sigterm():
    """A SIGTERM (Ansible's task timeout, a CI runner) unwinds through the finally that stops QEMU."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(previous):
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


def boot_check(image, firmware=None, marker=DEFAULT_MARKER, timeout=DEFAULT_TIMEOUT, accel="tcg", media="auto",
               memory_mb=2048, cpus=2, log_path=None, ovmf_code=None, ovmf_vars=None, qemu="qemu-system-x86_64",
               progress=None, poll_interval=0.5, secure_boot=False):
    """Boot ``image``; return {seconds, marker_line, log_path, accel, firmware, secure_boot, media, command}.

    ``firmware`` defaults to ``uefi`` with ``secure_boot`` and to ``bios`` without.

    Raises BootCheckError (with the last console lines) if the marker is not seen within ``timeout`` seconds.
    """
    image = os.path.abspath(os.path.expanduser(str(image)))
    if not os.path.isfile(image):
        raise ValidationError("path", image, "an existing ISO or raw disk image file")
    if not marker:
        raise ValidationError("marker", marker, "a non-empty line fragment printed on the serial console")
    timeout = float(timeout)
    if timeout <= 0:
        raise ValidationError("timeout", timeout, "a positive number of seconds")
    if shutil.which(qemu) is None and not os.path.isfile(qemu):
        raise BootCheckError("%s not found: install QEMU (Debian package qemu-system-x86)" % qemu)
    firmware = firmware or ("uefi" if secure_boot else "bios")
    if firmware not in FIRMWARES:
        raise ValidationError("firmware", firmware, "one of %s" % ", ".join(FIRMWARES))
    code, variables = firmware_files(firmware, secure_boot, ovmf_code, ovmf_vars)
    media = media_for(image, media)
    accel = resolve_accel(accel, qemu)
    progress = progress or (lambda message: None)
    scratch = tempfile.mkdtemp(prefix="edgeforge-boot-")
    if not log_path:
        log_path = os.path.join(scratch, "console.log")
    log_path = os.path.abspath(log_path)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w", encoding="utf-8"):
        pass
    vars_copy = None
    if variables:
        vars_copy = os.path.join(scratch, "OVMF_VARS.fd")
        shutil.copyfile(variables, vars_copy)
    cmd = qemu_command(image, firmware, media, accel, log_path, memory_mb, cpus, code, vars_copy, qemu, secure_boot)
    firmware_name = firmware + (" with Secure Boot" if secure_boot else "")
    progress("boot check: %s (%s, %s, %s) waiting up to %ds for %r" % (os.path.basename(image), firmware_name, media,
                                                                       accel, timeout, marker))
    started = time.monotonic()
    remaining = deadline_after(timeout)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    previous = _stop_on_sigterm()
    text = ""
    found = None
    try:
        with open(log_path, "r", encoding="utf-8", errors="replace") as console:
            while True:
                chunk = console.read()
                if chunk:
                    text += chunk
                    if marker in text:
                        found = next(line for line in clean_console(text).split("\n") if marker in line).strip()
                        break
                if proc.poll() is not None:
                    text += console.read()
                    if marker in text:
                        found = next(line for line in clean_console(text).split("\n") if marker in line).strip()
                        break
                    qemu_out = proc.stdout.read().decode("utf-8", "replace").strip()
                    raise BootCheckError(
                        "QEMU exited (code %s) after %.0fs before %r appeared (%s, %s)%s; last console lines:\n%s" % (
                            proc.returncode, time.monotonic() - started, marker, firmware_name, os.path.basename(image),
                            ("; QEMU said: %s" % qemu_out[-800:]) if qemu_out else "",
                            "\n".join(last_lines(text)) or "(nothing on the serial console)"))
                if remaining() <= 0:
                    raise BootCheckError(
                        "%s did not print %r within %ds (%s firmware, %s, %s acceleration); console log %s; "
                        "last console lines:\n%s" % (
                            os.path.basename(image), marker, timeout, firmware_name, media, accel, log_path,
                            "\n".join(last_lines(text)) or "(nothing on the serial console)"))
                time.sleep(poll_interval)
    finally:
        _stop(proc)
        _restore_sigterm(previous)
        if proc.stdout:
            proc.stdout.close()
        if vars_copy and os.path.exists(vars_copy):
            os.unlink(vars_copy)
        if not log_path.startswith(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    progress("boot check: %s reached %r after %.1fs" % (os.path.basename(image), marker, seconds))
    return {"seconds": seconds, "marker_line": found, "log_path": log_path, "accel": accel, "firmware": firmware,
            "secure_boot": bool(secure_boot), "media": media, "command": cmd}
