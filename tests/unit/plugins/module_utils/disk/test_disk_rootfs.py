"""The exported root filesystem: links resolved inside it, kernel and initrd found, Docker traces removed."""

import os

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import rootfs
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError


def test_resolve_in_root_keeps_absolute_links_inside(tmp_path):
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.1").write_bytes(b"kernel")
    os.symlink("/boot/vmlinuz-6.1", str(root / "boot" / "vmlinuz"))
    os.symlink("boot/vmlinuz", str(root / "vmlinuz"))
    assert rootfs.resolve_in_root(str(root), "/vmlinuz") == str(root / "boot" / "vmlinuz-6.1")
    os.symlink("/../../../../etc/passwd", str(root / "escape"))
    assert rootfs.resolve_in_root(str(root), "/escape").startswith(str(root))
    os.symlink("../boot/./vmlinuz-6.1", str(root / "boot" / "relative"))
    assert rootfs.resolve_in_root(str(root), "/boot/relative") == str(root / "boot" / "vmlinuz-6.1")
    os.symlink("loop", str(root / "loop"))
    with pytest.raises(DiskBuildError, match="too many symbolic links resolving /loop"):
        rootfs.resolve_in_root(str(root), "/loop")


def test_find_boot_files(tmp_path):
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.1.0").write_bytes(b"k")
    (root / "boot" / "initrd.img-6.1.0").write_bytes(b"i")
    (kernel_rel, kernel), (initrd_rel, initrd) = rootfs.find_boot_files(str(root))
    assert kernel_rel == "/boot/vmlinuz-6.1.0" and initrd_rel == "/boot/initrd.img-6.1.0"
    (root / "boot" / "vmlinuz").write_bytes(b"kk")
    assert rootfs.find_boot_files(str(root))[0][0] == "/boot/vmlinuz"
    with pytest.raises(DiskBuildError, match="no initrd"):
        rootfs.find_boot_files(str(root), initrd_path="/nothing")


def test_fix_exported_rootfs(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / ".dockerenv").write_text("")
    (root / "dev" / "console").write_text("")
    for name in ("hostname", "hosts", "resolv.conf"):
        (root / "etc" / name).write_text("")
    rootfs.fix_exported_rootfs(str(root))
    assert not (root / ".dockerenv").exists() and not (root / "dev" / "console").exists()
    assert (root / "etc" / "hostname").read_text() == "localhost\n"
    assert "127.0.0.1\tlocalhost" in (root / "etc" / "hosts").read_text()
    assert (root / "etc" / "resolv.conf").exists()
