"""The options installer_iso and raw_disk_image share, and the proxies their builder image gets."""

import pytest

from plugins.module_utils.build_config import BuildConfig
from plugins.module_utils.common import ValidationError
from plugins.module_utils.disk_module import DISK_ARGUMENT_SPEC, build_proxies, common_request_options


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
