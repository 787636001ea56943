"""The orchestrator: what it checks before any AWS call."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.importer import import_image
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_options
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def test_a_missing_image_is_an_error_before_any_aws_call(tmp_path):
    # conn=None: the error must come before anything is asked of AWS
    opts = normalise_options({"image_path": str(tmp_path / "absent.raw"), "bucket": "b"})
    with pytest.raises(ValidationError) as err:
        import_image(Context(None), opts)
    assert err.value.param == "image_path"
