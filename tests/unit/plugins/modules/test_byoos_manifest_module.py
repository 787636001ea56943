"""The byoos_manifest module, run in-process: it writes the manifest once, honours check mode and diff."""

import importlib
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

CONFIG = {"image_registry": "ttl.sh", "image_repo": "ubuntu", "k8s_distribution": "k3s", "os_distribution": "ubuntu",
          "pe_version": "v4.4.12", "os_version": "22.04", "custom_tag": "palette-learn", "k8s_versions": ["1.27.2"]}
IMAGE = "ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"


@pytest.fixture(scope="module")
def module():
    return importlib.import_module("ansible_collections.edgeforge.artifacts.plugins.modules.byoos_manifest")


def run(module, capsys, args, check_mode=False, diff=False):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_writes_once_with_check_mode_and_diff(module, capsys, tmp_path):
    dest = tmp_path / "byoos-pack.yaml"
    args = {"config": CONFIG, "images": [IMAGE], "dest": str(dest)}

    result = run(module, capsys, args, check_mode=True, diff=True)
    assert result["changed"] is True and not dest.exists()
    assert result["diff"]["before"] == "" and IMAGE in result["diff"]["after"]

    result = run(module, capsys, args, diff=True)
    assert result["changed"] is True and dest.read_text() == result["content"]
    assert result["path"] == str(dest) and result["uris"] == {"1.27.2": IMAGE}
    assert result["values"]["system.customTag"] == "palette-learn"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644

    os.chmod(str(dest), 0o640)  # the owner's mode is kept: only the content counts
    result = run(module, capsys, args, diff=True)
    assert result["changed"] is False and "diff" not in result
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640


def test_missing_config_and_stray_images_fail(module, capsys, tmp_path):
    dest = tmp_path / "byoos-pack.yaml"
    result = run(module, capsys, {"config": {"image_registry": "ttl.sh"}, "dest": str(dest)})
    assert result["failed"] is True and result["msg"].startswith("config: missing image_repo")
    result = run(module, capsys, {"config": CONFIG, "images": ["ttl.sh/ubuntu:other"], "dest": str(dest)})
    assert result["failed"] is True and "ttl.sh/ubuntu:other do not match" in result["msg"]
    assert not dest.exists()
