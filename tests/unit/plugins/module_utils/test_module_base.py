"""EdgeforgeModule, run in-process: merged specs, library checks, error reporting and file writes."""

import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.edgeforge.artifacts.plugins.module_utils import module_base as mb
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError

SHARED = dict(timeout=dict(type="int", default=300))


def _module(args=None, check_mode=False, diff=False, **kwargs):
    args = dict(args or {}, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        return mb.EdgeforgeModule(argument_spec=dict(path=dict(type="path")), shared_specs=[SHARED], **kwargs)


def _exit(capsys, func, **kwargs):
    """Create the module and call ``func(module)`` in the same module-args context; return what it printed."""
    with patch_module_args(dict(_ansible_check_mode=False, _ansible_diff=False)):
        with pytest.raises(SystemExit):
            func(mb.EdgeforgeModule(argument_spec=dict(path=dict(type="path")), **kwargs))
    return json.loads(capsys.readouterr().out)


def test_shared_specs_are_merged_and_conflicts_refused():
    module = _module({"timeout": 5})
    assert module.params == {"path": None, "timeout": 5}
    assert mb.merge_argument_specs(SHARED, SHARED) == SHARED
    with pytest.raises(ValueError, match="timeout"):
        mb.merge_argument_specs(SHARED, dict(timeout=dict(type="str")))


def test_a_missing_library_fails_with_the_usual_message(capsys):
    result = _exit(capsys, lambda module: None, required_libraries=[("docker", False, ImportError("no docker"))])
    assert result["failed"] is True
    assert "Failed to import the required Python library (docker)" in result["msg"]


def test_errors_become_fail_json_with_cause_aws_code_and_param(capsys):
    class ClientError(Exception):
        response = {"Error": {"Code": "AccessDenied", "Message": "no"}}

    def failing(_module):
        try:
            raise ClientError("denied")
        except ClientError as err:
            raise EdgeforgeError("Cannot upload to s3://b/k") from err

    result = _exit(capsys, lambda module: module.run(failing))
    assert result["failed"] is True and result["msg"] == "Cannot upload to s3://b/k"
    assert result["cause"] == "ClientError: denied"
    assert result["error"] == {"code": "AccessDenied"}

    def invalid(_module):
        raise ValidationError("mode", "999", "expected an octal file mode such as 0600")

    result = _exit(capsys, lambda module: module.run(invalid))
    assert result["param"] == "mode" and "'999' is not valid" in result["msg"]


def test_botocore_errors_of_an_aws_module_become_fail_json_with_their_code(capsys):
    from botocore.exceptions import ClientError

    def denied(_module):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    result = _exit(capsys, lambda module: module.run(denied, aws=True))
    assert result["failed"] is True and result["msg"].startswith("AWS request failed: An error occurred (AccessDenied)")
    assert result["error"] == {"code": "AccessDenied"} and result["cause"].startswith("ClientError: ")
    with pytest.raises(ClientError):
        _module().run(denied)  # not an AWS module: not its error to report


def test_run_returns_the_result_and_shows_warnings(capsys):
    result = _exit(capsys, lambda module: module.run(lambda m: dict(changed=False, answer=42, warnings=["careful"])))
    assert result["answer"] == 42 and "careful" in json.dumps(result["warnings"])


def test_write_file_writes_only_changes_with_diff_mode_and_check_mode(tmp_path):
    path = str(tmp_path / "out" / "file.txt")

    def hide(text):
        return text.replace("secret-value", "*")

    checked = _module(check_mode=True, diff=True).write_file(path, "secret-value\n", 0o600, mask=hide)
    assert checked["changed"] is True and not os.path.exists(path)
    assert checked["diff"]["after"] == "*\n" and checked["diff"]["before"] == ""

    module = _module(diff=True)
    assert module.write_file(path, "one\n", 0o600)["changed"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = module.write_file(path, "one\n", 0o600)
    assert again["changed"] is False and "diff" not in again
    mode_only = module.write_file(path, "one\n", 0o644)
    assert mode_only == dict(mode_only, changed=True, content_changed=False, mode_changed=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    with pytest.raises(EdgeforgeError, match="is a directory"):
        module.write_file(str(tmp_path), "x", 0o644)


def test_parse_mode():
    assert mb.parse_mode("0600") == 0o600
    with pytest.raises(ValidationError, match="mode: '0999' is not valid"):
        mb.parse_mode("0999")
