"""The one request type of the disk builds: names, input files, bundles and their ISO parts, the inputs digest."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import request
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DiskRequest


@pytest.mark.parametrize("name", ["palette-edge-installer", "edge_1.2", "A"])
def test_valid_names(name):
    assert request.validate_name("iso_name", name) == name


@pytest.mark.parametrize("name", ["", "../evil", "a b", "x;rm -rf /", "-dash", "a/b", "é", "x" * 101, "$(id)"])
def test_forbidden_names_are_refused_with_the_rule(name):
    with pytest.raises(ValidationError) as err:
        request.validate_name("iso_name", name)
    assert "iso_name" in str(err.value) and "letters, digits" in str(err.value)


def test_missing_user_data_is_an_error(tmp_path):
    with pytest.raises(ValidationError) as err:
        DiskRequest("iso", "img:1", str(tmp_path / "build"), user_data=str(tmp_path / "nope.yaml"))
    assert "user_data" in str(err.value) and "does not exist" in str(err.value)
    assert not (tmp_path / "build").exists()


def test_missing_content_dir_is_an_error(tmp_path):
    with pytest.raises(ValidationError) as err:
        DiskRequest("iso", "img:1", str(tmp_path / "build"), content_dirs=[str(tmp_path / "content-x")])
    assert "content_dir" in str(err.value) and "does not exist" in str(err.value)


def test_bundles_only_zst_for_iso_and_tar_too_for_raw(tmp_path):
    content = tmp_path / "content-1"
    content.mkdir()
    for name in ("b.zst", "a.zst", "c.tar", "readme.txt"):
        (content / name).write_bytes(b"x" * 10)
    assert [b["name"] for b in request.find_bundles([str(content)])] == ["a.zst", "b.zst"]
    assert [b["name"] for b in request.find_bundles([str(content)], (".zst", ".tar"))] == ["a.zst", "b.zst", "c.tar"]


def test_duplicate_bundle_names_are_refused(tmp_path):
    for sub in ("c1", "c2"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.zst").write_bytes(b"1")
    with pytest.raises(ValidationError, match="unique"):
        request.find_bundles([str(tmp_path / "c1"), str(tmp_path / "c2")])


def test_parts_follow_canvos_names_and_3gb_limit():
    bundles = [{"path": "/c/big.zst", "name": "big.zst", "size": 7 * 10 ** 9, "dir": "/c"},
               {"path": "/c/small.zst", "name": "small.zst", "size": 5, "dir": "/c"},
               {"path": "/c/exact.zst", "name": "exact.zst", "size": 3 * 10 ** 9, "dir": "/c"}]
    parts = request.content_parts(bundles)
    assert [(p["name"], p["offset"], p["length"]) for p in parts] == [
        ("big.zst_part00", 0, 3 * 10 ** 9), ("big.zst_part01", 3 * 10 ** 9, 3 * 10 ** 9),
        ("big.zst_part02", 6 * 10 ** 9, 10 ** 9), ("small.zst_part00", 0, 5), ("exact.zst_part00", 0, 3 * 10 ** 9)]
    assert all(p["length"] < 4 * 1024 ** 3 for p in parts)


def test_digest_changes_with_inputs(tmp_path):
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\n")
    request = DiskRequest("iso", "img:1", str(tmp_path / "b"), user_data=str(user_data))
    first = request.digest("sha256:aaa", "container")
    assert first == request.digest("sha256:aaa", "container")
    assert first != request.digest("sha256:bbb", "container")
    user_data.write_text("#cloud-config\nstylus: {}\n")
    assert first != request.digest("sha256:aaa", "container")
    assert first != DiskRequest("iso", "img:1", str(tmp_path / "b"), user_data=str(user_data), debug=True).digest(
        "sha256:aaa", "container")
