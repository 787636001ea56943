"""The root volume the AMI registers: the user's size, else the first-boot minimum of the raw image (B21)."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import (
    normalise_options, volume_size_warning)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def options(**extra):
    return normalise_options(dict({"image_path": "/images/edge.raw", "bucket": "b"}, **extra))


def test_the_minimum_is_the_default_root_volume():
    opts = options(min_volume_size=14)
    assert volume_size_warning(opts) is None
    assert opts["volume_size"] == 14


def test_without_a_minimum_the_snapshot_size_stays_the_default():
    opts = options()
    assert volume_size_warning(opts) is None
    assert opts["volume_size"] is None
    opts = options(min_volume_size=0)
    assert volume_size_warning(opts) is None
    assert opts["volume_size"] is None


def test_a_size_the_user_sets_wins_and_is_warned_about_below_the_minimum():
    opts = options(volume_size=3, min_volume_size=14)
    warning = volume_size_warning(opts)
    assert opts["volume_size"] == 3
    assert warning.startswith("volume_size 3 GiB is below the 14 GiB the raw image needs at first boot")


def test_a_size_at_or_above_the_minimum_gives_no_warning():
    for size in (14, 40):
        opts = options(volume_size=size, min_volume_size=14)
        assert volume_size_warning(opts) is None
        assert opts["volume_size"] == size


def test_a_negative_minimum_is_refused_with_its_name():
    with pytest.raises(ValidationError) as err:
        options(min_volume_size=-1)
    assert err.value.param == "min_volume_size"
