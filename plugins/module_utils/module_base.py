# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EdgeforgeModule: the AnsibleModule every edgeforge.artifacts module is built on (as AnsibleAWSModule is for
amazon.aws), so that each module only declares its own options and calls its module_utils package.

- ``shared_specs``: argument specs shared by several modules (DOCKER_ARGUMENT_SPEC, ...) merged with the module's
  own; an option defined twice differently is a programming error, reported at once.
- ``required_libraries``: ``(name, found, import_error)``; a missing one fails with missing_required_lib's message.
- ``run(func)``: calls ``func(module)`` for the result dict; the collection's errors (EdgeforgeError and its
  ValidationError) become one fail_json with their message, their cause and the AWS error code when there is one
  (with ``aws=True``, botocore's own errors too); ``warnings`` in the result are shown as warnings.
- ``write_file()``: writes a file only when its content or mode changed, atomically, with diff and check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, atomic_write)


def merge_argument_specs(*specs):
    """One argument spec from several; the same option may appear twice only with the same definition."""
    merged = {}
    for spec in specs:
        for name, definition in (spec or {}).items():
            if name in merged and merged[name] != definition:
                raise ValueError("option %s is defined twice with different definitions" % name)
            merged[name] = definition
    return merged


def _own_error_code(err):
    code = getattr(err, "error_code", None)  # set by the collection's AWS errors
    response = getattr(err, "response", None)  # botocore ClientError
    if not code and isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
    return code


def aws_error_code(err):
    """The AWS error code (``AccessDenied``, ``InvalidParameter``...) of an error or of one of its causes."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code = _own_error_code(err)
        if code:
            return code
        err = err.__cause__
    return None


def error_result(err):
    """The fail_json arguments for one of the collection's errors: msg, and cause / error.code / param if known."""
    result = {"msg": str(err)}
    if err.__cause__ is not None:
        result["cause"] = "%s: %s" % (type(err.__cause__).__name__, err.__cause__)
    code = aws_error_code(err)
    if code:
        result["error"] = {"code": code}
    if isinstance(err, ValidationError):
        result["param"] = err.param
    return result


def parse_mode(value, param="mode"):
    """An octal file mode given as a string (``"0600"``) or an int, checked."""
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValidationError(param, value, "expected an octal file mode such as 0600")
    return mode


def _read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # unreadable or binary: it will be replaced


def _aws_errors(aws):
    """botocore's errors, imported only for the AWS modules (which check that boto3 is installed first)."""
    if not aws:
        return ()
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel
    return (BotoCoreError, ClientError)


class EdgeforgeModule(AnsibleModule):
    """An AnsibleModule with the collection's shared options, library checks, error reporting and file writes."""

    def __init__(self, argument_spec=None, shared_specs=(), required_libraries=(), **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super().__init__(argument_spec=merge_argument_specs(*shared_specs, argument_spec), **kwargs)
        for library in required_libraries:
            self.require_library(*library)

    def require_library(self, name, found, import_error=None, url=None, reason=None):
        """Fail with Ansible's usual message (which package, for which Python) when a library is missing."""
        if not found:
            self.fail_json(msg=missing_required_lib(name, url=url, reason=reason),
                           exception=str(import_error) if import_error else None)

    def fail_from(self, err, **result):
        """fail_json for one of the collection's errors (no traceback: the message says what to change)."""
        self.fail_json(**dict(result, **error_result(err)))

    def run(self, func, aws=False):
        """``func(module)`` returns the result; the collection's errors become fail_json. Never returns.

        With ``aws=True`` botocore's errors not turned into the collection's by the AWS code are reported the same
        way, as ``AWS request failed: ...`` with their cause and AWS error code.
        """
        try:
            result = func(self)
        except EdgeforgeError as err:
            self.fail_from(err)
        except _aws_errors(aws) as err:
            wrapped = EdgeforgeError("AWS request failed: %s" % err)
            wrapped.__cause__ = err
            self.fail_from(wrapped)
        for warning in result.pop("warnings", None) or ():
            self.warn(warning)
        self.exit_json(**result)

    def write_file(self, path, content, mode=0o644, mask=None):
        """Write ``content`` (text) to ``path`` only when its content or mode differ; honours check mode.

        Returns ``{"changed", "content_changed", "mode_changed"}`` and, in diff mode, ``"diff"`` with both texts
        passed through ``mask`` (files holding secrets must give one). The file is written under a temporary name
        and renamed, so it is never seen half written.
        """
        if os.path.isdir(path):
            raise EdgeforgeError("%s is a directory; give the path of a file" % path)
        existing = _read_text(path) if os.path.lexists(path) else None
        current_mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else None
        content_changed = existing != content
        mode_changed = current_mode != mode
        changed = content_changed or mode_changed
        result = dict(changed=changed, content_changed=content_changed, mode_changed=mode_changed)
        if self._diff and changed:
            show = mask or (lambda text: text)
            result["diff"] = dict(before_header=path, after_header=path, before=show(existing) if existing else "",
                                  after=show(content))
        if changed and not self.check_mode:
            try:
                if content_changed:
                    atomic_write(path, content, mode)
                else:
                    os.chmod(path, mode)
            except OSError as err:
                raise EdgeforgeError("cannot write %s: %s" % (path, err)) from err
        return result
