"""The disk builder image recipe, the builder choice and the script runner on the host."""

import os

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import builder_image
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import runner
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.build import DiskBuilder
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))))


def test_shipped_dockerfile_is_the_one_the_modules_build():
    with open(os.path.join(REPO, "files", "builder", "Dockerfile"), encoding="utf-8") as handle:
        assert handle.read() == builder_image.BUILDER_DOCKERFILE
    for package in ("xorriso", "grub-pc-bin", "grub-efi-amd64-bin", "mtools", "squashfs-tools", "dosfstools",
                    "e2fsprogs", "fdisk", "openssl"):
        assert package in builder_image.BUILDER_DOCKERFILE


def test_builder_tag_follows_the_recipe():
    assert builder_image.builder_tag().startswith("edgeforge-disk-builder:")
    assert builder_image.builder_tag("debian:bookworm-slim") != builder_image.builder_tag("debian:trixie-slim")


def test_auroraboot_builder_is_explained():
    with pytest.raises(ValidationError, match="auroraboot"):
        DiskBuilder(None, builder="auroraboot")


def test_host_runner_returns_when_the_script_ends_and_reports_failures(tmp_path):
    import time
    script = tmp_path / "ok.sh"
    # a background job started after the heartbeat must not make the runner wait for the heartbeat
    script.write_text(runner.SCRIPT_HEAD + "( sleep 0.2 ) &\nbg=$!\nstep one\necho hello\nwait \"$bg\"\n")
    steps = []
    host_runner = runner.ScriptRunner("host", progress=steps.append)
    started = time.monotonic()
    host_runner.run(str(script), {}, str(tmp_path / "logs" / "build.log"))
    assert time.monotonic() - started < 20
    assert steps == ["build step: one"]
    assert "hello" in (tmp_path / "logs" / "build.log").read_text()
    failing = tmp_path / "bad.sh"
    failing.write_text(runner.SCRIPT_HEAD + "step squashfs\necho 'mksquashfs: no space left' >&2\nexit 3\n")
    with pytest.raises(DiskBuildError) as err:
        host_runner.run(str(failing), {})
    assert "step 'squashfs' (exit code 3)" in str(err.value) and "no space left" in str(err.value)
