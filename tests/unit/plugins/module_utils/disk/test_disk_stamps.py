"""Checksum files and inputs stamps: what makes a disk build idempotent."""

import json
import subprocess

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import stamps


def test_up_to_date_needs_stamp_checksum_and_content(tmp_path):
    out = tmp_path / "x.iso"
    out.write_bytes(b"iso bytes")
    assert not stamps.up_to_date(str(out), "d1")
    stamps.write_checksum_and_stamp(str(out), "d1")
    sha_line = (tmp_path / "x.iso.sha256").read_text()
    assert sha_line.endswith("  x.iso\n") and len(sha_line.split()[0]) == 64
    assert subprocess.run(["sha256sum", "-c", "x.iso.sha256"], cwd=str(tmp_path), capture_output=True,
                          check=False).returncode == 0
    assert stamps.up_to_date(str(out), "d1")
    assert not stamps.up_to_date(str(out), "d2")
    out.write_bytes(b"iso bytes changed")
    assert not stamps.up_to_date(str(out), "d1")
    stamp = json.loads((tmp_path / ".x.iso.edgeforge-inputs").read_text())
    assert stamp["inputs"] == "d1"
