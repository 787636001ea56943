"""installer_iso and raw_disk_image, run in-process up to their input checks (no build: that needs the engine and
is covered by the integration tests)."""

import importlib
import json

import pytest

from ansible.module_utils.testing import patch_module_args

MODULES = {"installer_iso": ("iso_path", ".iso"), "raw_disk_image": ("raw_path", ".raw")}


def run(name, capsys, args, check_mode=False):
    module = importlib.import_module("ansible_collections.edgeforge.artifacts.plugins.modules." + name)
    with patch_module_args(dict(args, _ansible_check_mode=check_mode)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_check_mode_predicts_a_build_when_the_user_data_is_not_made_yet(name, capsys, tmp_path):
    key, suffix = MODULES[name]
    args = {"installer_image": "palette-installer-image:unit", "build_dir": str(tmp_path),
            "user_data": str(tmp_path / "user-data"), "docker_host": "unix:///nonexistent.sock"}
    result = run(name, capsys, args, check_mode=True)
    assert result["changed"] is True and not result.get("failed"), result
    assert result[key] == str(tmp_path / ("palette-edge-installer" + suffix))
    assert result["sha256_path"] == result[key] + ".sha256"
    assert "reported as to be built" in json.dumps(result["warnings"])

    result = run(name, capsys, args)  # a real run fails, naming the option
    assert result["failed"] is True and result["msg"].startswith("user_data:")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_bad_option_fails_before_any_build(name, capsys, tmp_path):
    result = run(name, capsys, {"installer_image": "palette-installer-image:unit", "build_dir": str(tmp_path),
                                "squashfs_compression_level": 30, "docker_host": "unix:///nonexistent.sock"})
    assert result["failed"] is True
    assert result["msg"].startswith("squashfs_compression_level: 30 is not valid; a zstd level from 1 to 22")
    assert list(tmp_path.iterdir()) == []
