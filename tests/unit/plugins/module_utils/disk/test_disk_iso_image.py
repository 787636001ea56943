"""The ISO as a container image (CONFORMANCE 5.16): its reference, its Dockerfile and the checks before any build."""

import hashlib

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import iso_image


def test_dockerfile_holds_only_the_iso_under_disk():
    assert iso_image.dockerfile("edge.iso") == "FROM scratch\nCOPY edge.iso /disk/edge.iso\n"


def test_inputs_checked_and_sha256_computed_or_taken(tmp_path):
    iso = tmp_path / "edge.iso"
    iso.write_bytes(b"iso data")
    ref = "registry.example.com:5000/ubuntu/edge:v4.9.21"
    assert iso_image.check_inputs(str(iso), ref) == hashlib.sha256(b"iso data").hexdigest()
    assert iso_image.check_inputs(str(iso), ref, "A" * 64) == "a" * 64


@pytest.mark.parametrize("param, iso_name, reference, sha", [
    ("reference", "edge.iso", "registry.example.com/ubuntu/edge", None),  # no tag
    ("reference", "edge.iso", "Registry.example.com/Ubuntu/edge:v1", None),  # upper case
    ("reference", "edge.iso", "registry.example.com/ubuntu/edge@sha256:" + "0" * 64, None),
    ("iso_path", "missing.iso", "registry.example.com/ubuntu/edge:v1", None),
    ("iso_path", "edge.img", "registry.example.com/ubuntu/edge:v1", None),
    ("iso_sha256", "edge.iso", "registry.example.com/ubuntu/edge:v1", "not-a-digest"),
])
def test_bad_input_names_the_parameter(tmp_path, param, iso_name, reference, sha):
    for name in ("edge.iso", "edge.img"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValidationError) as err:
        iso_image.check_inputs(str(tmp_path / iso_name), reference, sha)
    assert err.value.param == param
