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


# ------------------------------------------------------------------ one request type, shared checks
@pytest.mark.parametrize("kind", ["iso", "raw"])
def test_both_kinds_share_the_checks(kind, tmp_path):
    for bad in ({"grub_timeout": 601}, {"extra_cmdline": 'a"b'}, {"user_data": str(tmp_path / "nope")},
                {"local_ui": str(tmp_path / "nope.tar")}, {"artifact_mode": "0755"}, {"name": "a b"}):
        with pytest.raises(ValidationError):
            DiskRequest(kind, "img:1", str(tmp_path / "b"), **bad)
    with pytest.raises(ValidationError) as err:
        DiskRequest(kind, "img:1", str(tmp_path / "b"), name="a;b")
    assert err.value.param == ("iso_name" if kind == "iso" else "raw_name")


def test_output_names_and_bundle_kinds(tmp_path):
    content = tmp_path / "content-1"
    content.mkdir()
    for name in ("a.zst", "c.tar"):
        (content / name).write_bytes(b"x")
    iso = DiskRequest("iso", "img:1", str(tmp_path), name="edge", content_dirs=[str(content)])
    raw = DiskRequest("raw", "img:1", str(tmp_path), name="edge", content_dirs=[str(content)])
    assert iso.output == str(tmp_path / "edge.iso") and raw.output == str(tmp_path / "edge.raw")
    assert [p["name"] for p in iso.parts] == ["a.zst_part00"] and raw.parts == []
    assert [b["name"] for b in raw.bundles] == ["a.zst", "c.tar"]
    assert raw.content_bytes() == 2 and DiskRequest("raw", "img:1", str(tmp_path)).content_bytes() == 0
    with pytest.raises(ValidationError):
        DiskRequest("floppy", "img:1", str(tmp_path))


def test_user_data_over_1_mb_is_refused_before_anything_is_written(tmp_path):
    """Kairos skips a configuration file over 1 MB on the medium silently (CONFORMANCE 5.5): refused here."""
    user_data = tmp_path / "user-data"
    user_data.write_bytes(b"#cloud-config\n" + b"#" * (1000 * 1000 - 14))
    assert DiskRequest("iso", "img:1", str(tmp_path / "b"), user_data=str(user_data)).user_data == str(user_data)
    user_data.write_bytes(b"#cloud-config\n" + b"#" * (1000 * 1000 - 13))
    for kind in ("iso", "raw"):
        with pytest.raises(ValidationError) as err:
            DiskRequest(kind, "img:1", str(tmp_path / "b"), user_data=str(user_data))
        assert err.value.param == "user_data" and "1 MB" in str(err.value) and "1000001" in str(err.value)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("given, mode", [(None, 0o600), ("", 0o600), ("0600", 0o600), ("640", 0o640),
                                         ("0644", 0o644), ("0660", 0o660)])
def test_artifact_mode(given, mode):
    assert request.parse_artifact_mode(given) == mode


@pytest.mark.parametrize("given", ["0755", "0400", "0200", "4600", "rw-------", "0888", "600 ", "0o600", "06000"])
def test_artifact_mode_refused(given):
    with pytest.raises(ValidationError) as err:
        request.parse_artifact_mode(given)
    assert err.value.param == "artifact_mode" and "0600" in str(err.value)


def test_digest_follows_local_ui_but_not_the_mode(tmp_path):
    tar = tmp_path / "local-ui.tar"
    tar.write_bytes(b"x" * 512)
    base = DiskRequest("iso", "img:1", str(tmp_path / "b")).digest("sha256:a", "container")
    assert DiskRequest("iso", "img:1", str(tmp_path / "b"), local_ui=str(tar)).digest("sha256:a", "container") != base
    wider = DiskRequest("iso", "img:1", str(tmp_path / "b"), artifact_mode="0644")
    assert wider.digest("sha256:a", "container") == base
