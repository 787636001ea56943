# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installer image's root filesystem: exported through the Docker engine, cleaned of Docker's traces, and its
kernel and initrd found (symbolic links resolved inside the tree, never outside it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import tarfile

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError

MIB = 1024 * 1024
KERNEL_CANDIDATES = ("/boot/vmlinuz", "/vmlinuz", "/boot/kernel")
INITRD_CANDIDATES = ("/boot/initrd", "/initrd.img", "/boot/initramfs.img", "/boot/initrd.img")
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def resolve_in_root(rootfs, path, max_links=40):
    """The host path of ``path`` (absolute, as the image sees it) inside ``rootfs``, following symbolic links as the
    image would: absolute links point into the rootfs, ``..`` stops at its top, so the result is never outside it.
    It may not exist. A symlink loop (more than ``max_links`` links, Linux's limit) raises DiskBuildError."""
    parts = [p for p in path.split("/") if p]
    resolved = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if part == ".":
            continue
        candidate = os.path.join(rootfs, *(resolved + [part]))
        if os.path.islink(candidate):
            links += 1
            if links > max_links:
                raise DiskBuildError("too many symbolic links resolving %s in the image" % path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(rootfs, *resolved)


def _pick_boot_file(rootfs, given, candidates, prefixes, what):
    options = [given] if given else list(candidates)
    for option in options:
        real = resolve_in_root(rootfs, option)
        if os.path.isfile(real) and os.path.getsize(real) > 0:
            return option, real
    boot = os.path.join(rootfs, "boot")
    if not given and os.path.isdir(boot):
        for name in sorted(os.listdir(boot), reverse=True):
            if name.startswith(prefixes):
                real = resolve_in_root(rootfs, "/boot/" + name)
                if os.path.isfile(real) and os.path.getsize(real) > 0:
                    return "/boot/" + name, real
    raise DiskBuildError("the installer image has no %s (looked for %s); set %s_path to where it is"
                         % (what, ", ".join(options), what))


def find_boot_files(rootfs, kernel_path=None, initrd_path=None):
    """Kernel and initrd of the image (Kairos images: /boot/vmlinuz and /boot/initrd, usually symlinks).

    Returns ((kernel path in the image, real path), (initrd path in the image, real path)).
    """
    return (_pick_boot_file(rootfs, kernel_path, KERNEL_CANDIDATES, ("vmlinuz-",), "kernel"),
            _pick_boot_file(rootfs, initrd_path, INITRD_CANDIDATES, ("initrd.img-", "initramfs-"), "initrd"))


def fix_exported_rootfs(rootfs, hostname="localhost"):
    """Undo Docker's traces in an exported container filesystem."""
    for rel in (".dockerenv", "dev/console"):
        path = os.path.join(rootfs, rel)
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
    etc = os.path.join(rootfs, "etc")
    if not os.path.isdir(etc):
        return
    for name, content in (("hostname", hostname + "\n"), ("hosts", HOSTS), ("resolv.conf", "")):
        path = os.path.join(etc, name)
        if os.path.islink(path):
            continue
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(path, 0o644)


def export_rootfs(engine, image, dest, progress=None):
    """Export ``image``'s filesystem into ``dest`` through a never-started container. Returns bytes streamed.

    ``engine``: a docker_engine.DockerEngine.
    """
    os.makedirs(dest, exist_ok=True)
    cid = engine.create_container(image, ["/bin/sh"], labels={"io.edgeforge.role": "rootfs-export"})
    streamed = 0
    try:
        with subprocess.Popen(["tar", "-x", "-C", dest, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*"],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            next_report = 256 * MIB
            try:
                for chunk in engine.export_container(cid, chunk_size=4 * MIB):
                    proc.stdin.write(chunk)
                    streamed += len(chunk)
                    if progress and streamed >= next_report:
                        progress("export %s: %d MiB" % (image, streamed // MIB))
                        next_report += 256 * MIB
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()
            err = proc.stderr.read().decode("utf-8", "replace")
            if proc.wait() != 0:
                raise DiskBuildError("extracting the filesystem of %s failed: %s" % (image, err.strip()[-2000:]))
    finally:
        engine.remove_container(cid)
    fix_exported_rootfs(dest)
    if progress:
        progress("export %s: done, %d MiB" % (image, streamed // MIB))
    return streamed


def extract_local_ui(tar_path, rootfs):
    """CanvOS: ``local-ui.tar`` is extracted into the root filesystem's ``/opt/spectrocloud/`` (CONFORMANCE 5.7, 6.2).

    Members that would land outside that directory (absolute paths, ``..``, links out) are refused.
    """
    target = os.path.join(rootfs, "opt", "spectrocloud")
    os.makedirs(target, exist_ok=True)
    try:
        with tarfile.open(tar_path) as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DiskBuildError("local_ui: %s cannot be extracted into /opt/spectrocloud: %s" % (tar_path, exc)) from exc
