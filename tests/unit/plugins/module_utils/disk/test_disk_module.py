"""The options installer_iso and raw_disk_image share, and the proxies their builder image gets."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import MissingImageError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.module import (
    DISK_ARGUMENT_SPEC, build_proxies, common_request_options, fail_or_predict)


def _params(**given):
    params = {name: spec.get("default") for name, spec in DISK_ARGUMENT_SPEC.items()}
    params.update(given)
    return params


def test_options_win_over_the_configuration_and_the_configuration_fills_the_rest():
    config = {"clusterconfig": "/cfg/spc.tgz", "edge_custom_config": "/cfg/edge.yaml", "debug": True}
    options = common_request_options(_params(clusterconfig="/mine/spc.tgz", debug=False), config)
    assert options["clusterconfig"] == "/mine/spc.tgz"
    assert options["edge_custom_config"] == "/cfg/edge.yaml"
    assert options["debug"] is False
    assert options["squashfs_level"] == 3 and options["grub_timeout"] == 5


@pytest.mark.parametrize("level", [0, 23, -1])
def test_a_compression_level_outside_zstd_is_refused(level):
    with pytest.raises(ValidationError) as err:
        common_request_options(_params(squashfs_compression_level=level), {})
    assert err.value.param == "squashfs_compression_level" and "1 to 22" in str(err.value)


def test_the_builder_gets_the_real_proxy_never_the_masked_one():
    masked = BuildConfig.from_options({"http_proxy": "http://u:s3cret@proxy:3128", "no_proxy": "localhost"}
                                      ).as_dict(mask=True)
    real = build_proxies(_params(http_proxy="http://u:s3cret@proxy:3128"), masked)
    assert real == {"http_proxy": "http://u:s3cret@proxy:3128", "no_proxy": "localhost"}
    with pytest.raises(ValidationError):
        build_proxies(_params(), masked)
    assert build_proxies(_params(), {}) == {}


class _Module:
    """What fail_or_predict uses of an AnsibleModule: check_mode, warn, exit_json, fail_json."""

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def exit_json(self, **result):
        raise SystemExit(("exit", result))

    def fail_json(self, **result):
        raise SystemExit(("fail", result))


@pytest.mark.parametrize("err", [
    ValidationError("user_data", "/build/user-data", "the user-data file: the file does not exist"),
    MissingImageError("the installer image palette-installer-image:v4.9.21 is not in the Docker engine"),
])
def test_check_mode_predicts_a_build_when_an_earlier_step_makes_the_input(err):
    module = _Module(check_mode=True)
    with pytest.raises(SystemExit) as done:
        fail_or_predict(module, err, {"iso_path": "/build/x.iso"})
    assert done.value.args[0] == ("exit", {"changed": True, "iso_path": "/build/x.iso"})
    assert "reported as to be built" in module.warnings[0]
    with pytest.raises(SystemExit) as done:  # a real run fails
        fail_or_predict(_Module(check_mode=False), err, {"iso_path": "/build/x.iso"})
    assert done.value.args[0][0] == "fail"


def test_check_mode_still_fails_on_a_missing_input_the_user_gives():
    err = ValidationError("clusterconfig", "/nope/spc.tgz", "the cluster definition: the file does not exist")
    with pytest.raises(SystemExit) as done:
        fail_or_predict(_Module(check_mode=True), err, {})
    assert done.value.args[0] == ("fail", {"msg": str(err)})
