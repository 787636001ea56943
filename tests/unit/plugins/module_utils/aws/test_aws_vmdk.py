"""Helper commands and the VMDK conversion."""

import os
import shutil

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import vmdk
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import MiB
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError


# -- helpers for subprocesses --------------------------------------------------------------------------------------


def test_helper_commands_never_see_aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("aws_session_token", "t0ken")
    env = vmdk.subprocess_env()
    assert "AWS_SECRET_ACCESS_KEY" not in env and "aws_session_token" not in env
    assert "PATH" in env


@pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img not installed")
def test_vmdk_conversion_is_stream_optimized_and_atomic(tmp_path):
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(64 * MiB)
        handle.seek(MiB)
        handle.write(os.urandom(MiB))
    dest = tmp_path / "disk.vmdk"
    vmdk.convert_to_vmdk(str(raw), str(dest))
    data = dest.read_bytes()
    assert data[:4] == b"KDMV"
    assert b"streamOptimized" in data[:4096]
    assert len(data) < 4 * MiB  # only the allocated MiB (compressed) is stored
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    with pytest.raises(EdgeforgeError, match="qemu-img convert failed"):
        vmdk.convert_to_vmdk(str(tmp_path / "missing.raw"), str(tmp_path / "x.vmdk"))
    assert not (tmp_path / "x.vmdk").exists()
