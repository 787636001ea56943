"""The shared build skeleton (plan, stage, assemble, checksum, stamp) around a stand-in artifact, the modes of the
artifacts, the finishing rename, the scripts' umask, local-ui.tar."""

import io
import os
import subprocess
import tarfile

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import build as build_module
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import rootfs, runner
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.build import DiskBuilder
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError, MissingImageError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DiskRequest


def test_finish_gives_the_mode_and_renames(tmp_path):
    tmp = tmp_path / ".x.iso.partial"
    tmp.write_bytes(b"iso")
    os.chmod(str(tmp), 0o644)
    checksum = DiskBuilder._finish(str(tmp), str(tmp_path / "x.iso"), 0o600)  # pylint: disable=protected-access
    assert not tmp.exists() and len(checksum) == 64
    assert os.stat(str(tmp_path / "x.iso")).st_mode & 0o7777 == 0o600
    empty = tmp_path / ".e.partial"
    empty.write_bytes(b"")
    with pytest.raises(DiskBuildError, match="produced no file"):
        DiskBuilder._finish(str(empty), str(tmp_path / "e.iso"), 0o600)  # pylint: disable=protected-access


def test_an_up_to_date_artifact_gets_the_asked_mode(tmp_path):
    request = DiskRequest("iso", "img:1", str(tmp_path), name="x", artifact_mode="0640")
    (tmp_path / "x.iso").write_bytes(b"iso")
    os.chmod(request.output, 0o600)
    fix = DiskBuilder._fix_mode  # pylint: disable=protected-access
    assert fix(request, check_mode=True) is True and os.stat(request.output).st_mode & 0o777 == 0o600
    assert fix(request, check_mode=False) is True and os.stat(request.output).st_mode & 0o777 == 0o640
    assert fix(request, check_mode=False) is False


def test_scripts_write_for_the_owner_only(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(runner.script(["echo secret > %s" % runner.q(str(tmp_path / "out")),
                                     "mkdir %s" % runner.q(str(tmp_path / "dir"))]))
    subprocess.run(["bash", str(script)], check=True, capture_output=True)
    assert os.stat(str(tmp_path / "out")).st_mode & 0o777 == 0o600
    assert os.stat(str(tmp_path / "dir")).st_mode & 0o777 == 0o700


def _tar(path, members):
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_local_ui_is_extracted_into_opt_spectrocloud(tmp_path):
    tar = tmp_path / "local-ui.tar"
    _tar(str(tar), {"local-ui/index.html": b"<html/>", "local-ui/bin/ui": b"x"})
    root = tmp_path / "root"
    root.mkdir()
    rootfs.extract_local_ui(str(tar), str(root))
    assert (root / "opt" / "spectrocloud" / "local-ui" / "index.html").read_bytes() == b"<html/>"


def test_local_ui_members_outside_are_refused_or_kept_inside(tmp_path):
    tar = tmp_path / "evil.tar"
    _tar(str(tar), {"../../escape": b"x"})
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DiskBuildError, match="local_ui"):
        rootfs.extract_local_ui(str(tar), str(root))
    assert not (tmp_path / "escape").exists()
    _tar(str(tar), {"/etc/passwd": b"x"})
    rootfs.extract_local_ui(str(tar), str(root))
    assert (root / "opt" / "spectrocloud" / "etc" / "passwd").read_bytes() == b"x"


def test_a_given_tree_is_never_changed_by_local_ui(tmp_path):
    tar = tmp_path / "local-ui.tar"
    _tar(str(tar), {"a": b"x"})

    class Engine:
        @staticmethod
        def image(_ref):
            return {"Id": "sha256:x"}

    request = DiskRequest("iso", "img:1", str(tmp_path / "b"), local_ui=str(tar))
    with pytest.raises(DiskBuildError, match="local_ui"):
        DiskBuilder(Engine(), builder="host").build(request, rootfs=str(tmp_path))
    assert not [n for n in os.listdir(str(tmp_path / "b")) if not n.startswith((".edgeforge-work", "logs"))]


class _FakeArtifact:
    """An artifact whose assemble step writes known bytes (or fails): the skeleton around it is what is tested."""

    kind = "iso"
    fail = False

    def __init__(self, request):
        self.request = request

    def result(self):
        return {"iso_path": self.request.output}

    @staticmethod
    def mount_dirs():
        return []

    @staticmethod
    def stage(ctx):
        ctx.copy(ctx.kernel, os.path.join(ctx.work, "tree", "kernel"))

    def assemble(self, ctx):
        with open(ctx.tmp_output, "wb") as handle:
            handle.write(b"artifact " + open(ctx.kernel, "rb").read())
        if self.fail:
            raise DiskBuildError("assemble failed")
        return {"assembled": True}

    @staticmethod
    def extras(output):
        return {"extra_size": os.path.getsize(output)}


class _Engine:
    @staticmethod
    def image(_ref):
        return {"Id": "sha256:1"}


@pytest.fixture(name="skeleton")
def _skeleton(tmp_path, monkeypatch):
    monkeypatch.setitem(build_module.ARTIFACTS, "iso", _FakeArtifact)
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz").write_bytes(b"kernel")
    (root / "boot" / "initrd").write_bytes(b"initrd")
    return {"root": str(root), "build": tmp_path / "build",
            "request": DiskRequest("iso", "img:1", str(tmp_path / "build"), name="x")}


def test_skeleton_plans_builds_stamps_and_skips_when_up_to_date(skeleton):
    builder = DiskBuilder(_Engine(), builder="host")
    request = skeleton["request"]
    planned = builder.build(request, check_mode=True, rootfs=skeleton["root"])
    assert planned["changed"] is True and not skeleton["build"].exists()
    built = builder.build(request, rootfs=skeleton["root"])
    assert built["changed"] is True and built["assembled"] is True and built["kernel"] == "/boot/vmlinuz"
    assert open(request.output, "rb").read() == b"artifact kernel"
    assert built["extra_size"] == len(b"artifact kernel") and built["size"] == len(b"artifact kernel")
    assert os.stat(request.output).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(str(skeleton["build"]))) == [".x.iso.edgeforge-inputs", "x.iso", "x.iso.sha256"]
    again = builder.build(request, rootfs=skeleton["root"])
    assert again["changed"] is False and again["sha256"] == built["sha256"] and again["extra_size"] > 0
    assert builder.build(request, force=True, rootfs=skeleton["root"])["changed"] is True


def test_skeleton_leaves_nothing_behind_when_a_step_fails(skeleton):
    _FakeArtifact.fail = True
    try:
        with pytest.raises(DiskBuildError, match="assemble failed"):
            DiskBuilder(_Engine(), builder="host").build(skeleton["request"], rootfs=skeleton["root"])
    finally:
        _FakeArtifact.fail = False
    assert os.listdir(str(skeleton["build"])) == []  # no partial output, no work tree


def test_a_missing_installer_image_is_named(tmp_path):
    class NoImage:
        @staticmethod
        def image(_ref):
            return None

    with pytest.raises(MissingImageError, match="img:404"):
        DiskBuilder(NoImage(), builder="host").build(DiskRequest("raw", "img:404", str(tmp_path)))


def test_finish_takes_the_checksum_written_with_the_file(tmp_path):
    finish = DiskBuilder._finish  # pylint: disable=protected-access
    tmp = tmp_path / ".x.iso.partial"
    tmp.write_bytes(b"iso")
    written = "ab" * 32  # not the file's: a checksum taken as the file was written is not taken again
    assert finish(str(tmp), str(tmp_path / "x.iso"), 0o600, written) == written
    tmp.write_bytes(b"iso")
    with pytest.raises(DiskBuildError, match="wrote no SHA-256 checksum"):
        finish(str(tmp), str(tmp_path / "y.iso"), 0o600, "-")
    assert tmp.exists() and not (tmp_path / "y.iso").exists()
