# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The UEFI boot chain of the installer ISO and the raw disk: which EFI binaries go on the EFI system partition (ESP)
and under which names, and the FAT image that holds them.

Kairos images carry their distribution's signed boot chain in the root filesystem: a shim signed by Microsoft's UEFI
CA, a GRUB signed by the distribution (trusted by that shim) and a signed kernel. Copying the first two onto the ESP
(shim as the removable-media loader ``EFI/BOOT/bootx64.efi``, GRUB beside it under the name shim loads) gives media
that machines with Secure Boot enabled accept. The search lists are the ones CanvOS's ISO tool uses (CanvOS v4.10.0
conformance 5.10), in the same order.

The signed GRUB has its configuration path compiled in, so a small chainload configuration is written where each
supported signed GRUB reads one: Ubuntu's reads ``/EFI/ubuntu/grub.cfg`` on the ESP, Debian's falls back to
``$cmdpath/grub.cfg`` (``/EFI/BOOT/grub.cfg`` when started as the removable-media loader). Both are on the ESP image
itself, so a USB stick booted in UEFI mode finds them too (CanvOS's ISO has none there, its bug B11).

API (plain Python, no Ansible):

- ``plan_esp(rootfs, arch, search_label, config_path, fallback_loader=None, shim_alias=False)`` -> plan dict::

      {"arch": "amd64", "signed": True,
       "shim": "/usr/lib/shim/shimx64.efi.signed",          # the rootfs path chosen (None on the fallback)
       "grub": "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
       "files": [{"path": "EFI/BOOT/bootx64.efi", "role": "shim", "source": "<host path>"},
                 {"path": "EFI/BOOT/grubx64.efi", "role": "grub", "source": "<host path>"},
                 {"path": "EFI/BOOT/grub.cfg", "role": "config", "content": "search ...\\n"},
                 {"path": "EFI/ubuntu/grub.cfg", "role": "config", "content": "search ...\\n"}],
       "warnings": []}

  Raises ``BootChainError`` when no loader can be planned (arm64 without signed shim and GRUB; amd64 without them
  and without ``fallback_loader``), ``ValidationError`` for a bad argument.
- ``has_signed_pair(rootfs, arch)``: whether the root filesystem holds both a signed shim and a signed GRUB (the
  plan then needs no fallback loader).
- ``chain_config(search_label, config_path)``: the text of the chainload configuration.
- ``esp_size(plan, minimum=0)``: bytes a FAT image needs for the plan (MiB-aligned, at least ``minimum``).
- ``write_esp_image(plan, output, size=None, label="COS_GRUB", progress=None)``: writes the FAT image with mtools
  (no loop device, no mount) to a temporary name beside ``output`` and renames it; returns
  ``{"path", "size", "files"}``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, atomic_output)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.rootfs import resolve_in_root

ARCHES = ("amd64", "arm64")
MIB = 1024 * 1024
_VENDORS = ("fedora", "rocky", "redhat", "almalinux")
# kairos-sdk's lists as enki uses them at CanvOS v4.10.0 (conformance 5.10); the first existing file wins
SHIM_PATHS = {
    "amd64": ("/usr/share/efi/x86_64/shim.efi", "/usr/lib/shim/shimx64.efi.dualsigned",
              "/usr/lib/shim/shimx64.efi.signed.latest", "/usr/lib/shim/shimx64.efi.signed")
    + tuple("/boot/efi/EFI/%s/shim.efi" % vendor for vendor in _VENDORS),
    "arm64": ("/usr/share/efi/aarch64/shim.efi", "/usr/lib/shim/shimaa64.efi.dualsigned",
              "/usr/lib/shim/shimaa64.efi.signed.latest", "/usr/lib/shim/shimaa64.efi.signed")
    + tuple("/boot/efi/EFI/%s/shim.efi" % vendor for vendor in _VENDORS),
}
GRUB_PATHS = {
    "amd64": ("/usr/share/efi/x86_64/grub.efi", "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
    + tuple("/boot/efi/EFI/%s/grubx64.efi" % vendor for vendor in _VENDORS),
    "arm64": ("/usr/share/efi/aarch64/grub.efi", "/usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed")
    + tuple("/boot/efi/EFI/%s/grubaa64.efi" % vendor for vendor in _VENDORS),
}
# the removable-media loader name the firmware starts when no boot entry exists (UEFI spec 3.5.1.1)
LOADER_NAMES = {"amd64": "EFI/BOOT/bootx64.efi", "arm64": "EFI/BOOT/bootaa64.efi"}
# where the supported signed GRUBs read their configuration: Debian's ($cmdpath) and Ubuntu's (compiled-in prefix)
CONFIG_PATHS = ("EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg")
SIGNED_SUFFIXES = (".signed.latest", ".dualsigned", ".signed")
MTOOLS = ("mformat", "mmd", "mcopy")


class BootChainError(EdgeforgeError):
    """No usable boot chain for the ESP (the message says what was looked for and what to do)."""


def _check_arch(arch):
    if arch not in ARCHES:
        raise ValidationError("arch", arch, "one of %s" % ", ".join(ARCHES))


def find_first(rootfs, candidates):
    """(rootfs path, host path) of the first candidate that is a file in ``rootfs``, or (None, None)."""
    for candidate in candidates:
        try:
            host = resolve_in_root(rootfs, candidate)
        except DiskBuildError:
            continue  # a symlink loop: no file there
        if os.path.isfile(host):
            return candidate, host
    return None, None


def has_signed_pair(rootfs, arch):
    """True when ``rootfs`` holds a shim and a GRUB of the search lists: ``plan_esp`` then uses no fallback loader."""
    _check_arch(arch)
    return bool(find_first(rootfs, SHIM_PATHS[arch])[0] and find_first(rootfs, GRUB_PATHS[arch])[0])


def esp_name(source_path):
    """The name a binary gets on the ESP: its own minus the packaging suffix (``grubx64.efi.signed`` ->
    ``grubx64.efi``), which is the name the vendor's shim loads."""
    name = os.path.basename(source_path)
    for suffix in SIGNED_SUFFIXES:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def chain_config(search_label, config_path):
    """The ESP's GRUB configuration: find the filesystem labelled ``search_label``, load its menu ``config_path``."""
    if not search_label or any(c in search_label for c in " \n\"'"):
        raise ValidationError("search_label", search_label, "a filesystem label without spaces or quotes")
    if not config_path.startswith("/") or any(c in config_path for c in " \n\"'"):
        raise ValidationError("config_path", config_path, "an absolute path without spaces or quotes")
    prefix = os.path.dirname(config_path) or "/"
    return ("# edgeforge.artifacts: hand over from the GRUB on the EFI partition to the menu on %s\n"
            "search --no-floppy --label %s --set=root\n"
            "set prefix=($root)%s\n"
            "configfile ($root)%s\n" % (search_label, search_label, prefix, config_path))


def _config_files(search_label, config_path):
    content = chain_config(search_label, config_path)
    return [{"path": path, "role": "config", "content": content} for path in CONFIG_PATHS]


def _looked_for(arch):
    return "shim: %s; GRUB: %s" % (", ".join(SHIM_PATHS[arch]), ", ".join(GRUB_PATHS[arch]))


def plan_esp(rootfs, arch, search_label, config_path, fallback_loader=None, shim_alias=False):
    """The ESP's content for the root filesystem ``rootfs`` (a directory) of an ``arch`` image.

    ``search_label``/``config_path``: the filesystem and GRUB menu the chainload configuration hands over to (the ISO:
    ``COS_LIVE``, ``/boot/grub/grub.cfg``; the raw disk: ``COS_RECOVERY`` and its menu). ``fallback_loader``: the
    builder's own (unsigned) GRUB EFI image, used on amd64 when the rootfs has no signed pair. ``shim_alias``: also keep
    shim under its own name (``EFI/BOOT/shimx64.efi``), as AuroraBoot's raw disk does.
    """
    _check_arch(arch)
    if not os.path.isdir(rootfs):
        raise ValidationError("rootfs", rootfs, "an existing directory holding the image's root filesystem")
    shim, shim_host = find_first(rootfs, SHIM_PATHS[arch])
    grub, grub_host = find_first(rootfs, GRUB_PATHS[arch])
    configs = _config_files(search_label, config_path)
    loader = LOADER_NAMES[arch]
    if shim and grub:
        files = [{"path": loader, "role": "shim", "source": shim_host}]
        if shim_alias:
            files.append({"path": "EFI/BOOT/%s" % esp_name(shim), "role": "shim", "source": shim_host})
        files.append({"path": "EFI/BOOT/%s" % esp_name(grub), "role": "grub", "source": grub_host})
        return {"arch": arch, "signed": True, "shim": shim, "grub": grub, "files": files + configs, "warnings": []}
    found = "found only %s; " % (shim or grub) if (shim or grub) else ""
    if arch == "arm64":
        raise BootChainError(
            "arm64: the image's root filesystem holds no signed shim and GRUB pair (%slooked for %s); the builder has "
            "no arm64 boot loader of its own, so the arm64 build is refused. Use a base image that ships them (Kairos "
            "arm64 images do; on Debian/Ubuntu the packages shim-signed and grub-efi-arm64-signed)"
            % (found, _looked_for(arch)))
    if not fallback_loader:
        raise BootChainError("the image's root filesystem holds no signed shim and GRUB pair (%slooked for %s) and "
                             "no fallback boot loader was given" % (found, _looked_for(arch)))
    if not os.path.isfile(fallback_loader):
        raise ValidationError("fallback_loader", fallback_loader, "an existing GRUB EFI image")
    warning = ("the image's root filesystem holds no signed shim and GRUB pair (%slooked for %s): the EFI partition "
               "gets the builder's own unsigned GRUB, which machines with Secure Boot enabled refuse to start. "
               "Disable Secure Boot on those machines, or use a base image that ships shim-signed and a signed GRUB"
               % (found, _looked_for(arch)))
    files = [{"path": loader, "role": "grub", "source": os.path.abspath(fallback_loader)}]
    return {"arch": arch, "signed": False, "shim": None, "grub": None, "files": files + configs,
            "warnings": [warning]}


def _file_bytes(entry):
    if "content" in entry:
        return len(entry["content"].encode("utf-8"))
    return os.path.getsize(entry["source"])


def esp_size(plan, minimum=0):
    """Bytes of a FAT image holding the plan: the files (rounded to 4 KiB clusters) + 1 MiB for FAT and directories,
    MiB-aligned, at least 2 MiB and ``minimum``."""
    data = sum(-(-_file_bytes(entry) // 4096) * 4096 for entry in plan["files"])
    size = -(-(data + MIB) // MIB) * MIB
    return max(size, 2 * MIB, -(-int(minimum) // MIB) * MIB)


def _directories(plan):
    dirs = set()
    for entry in plan["files"]:
        parent = os.path.dirname(entry["path"])
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def _mtools(args, image):
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise BootChainError("%s failed on %s (rc %d): %s" % (args[0], image, proc.returncode,
                                                              (proc.stderr or proc.stdout).strip()[-800:]))


def esp_commands(plan, image, label, scratch):
    """The mtools commands that fill the (already sized) file ``image``; configuration texts are written to
    ``scratch`` first. Pure apart from those texts: unit-tested."""
    commands = [["mformat", "-i", image, "-v", label, "::"]]
    for directory in _directories(plan):
        commands.append(["mmd", "-i", image, "::/%s" % directory])
    for index, entry in enumerate(plan["files"]):
        source = entry.get("source")
        if "content" in entry:
            source = os.path.join(scratch, "file-%d" % index)
            with open(source, "w", encoding="utf-8") as handle:
                handle.write(entry["content"])
        commands.append(["mcopy", "-i", image, source, "::/%s" % entry["path"]])
    return commands


def write_esp_image(plan, output, size=None, label="COS_GRUB", progress=None):
    """Write the FAT image of ``plan`` to ``output`` (``size`` bytes, default ``esp_size(plan)``)."""
    missing = [tool for tool in MTOOLS if shutil.which(tool) is None]
    if missing:
        raise BootChainError("%s not found: install mtools (Debian package mtools)" % ", ".join(missing))
    if not label or len(label) > 11:
        raise ValidationError("label", label, "a FAT volume label of 1 to 11 characters")
    for entry in plan["files"]:
        if "content" not in entry and not os.path.isfile(entry["source"]):
            raise BootChainError("%s for %s is missing" % (entry["source"], entry["path"]))
    needed = esp_size(plan)
    size = needed if size is None else int(size)
    if size < needed:
        raise ValidationError("size", size, "at least %d bytes for the files of the EFI partition" % needed)
    progress = progress or (lambda message: None)
    kind = "signed shim and GRUB" if plan["signed"] else "unsigned GRUB"
    progress("EFI partition: %s (%d MiB, %s)" % (", ".join(e["path"] for e in plan["files"]), size // MIB, kind))
    scratch = tempfile.mkdtemp(prefix="edgeforge-esp-")
    try:
        with atomic_output(output) as tmp_path:
            with open(tmp_path, "wb") as handle:
                handle.truncate(size)
            for command in esp_commands(plan, tmp_path, label, scratch):
                _mtools(command, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"path": os.path.abspath(output), "size": size, "files": [e["path"] for e in plan["files"]]}
