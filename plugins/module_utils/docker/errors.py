# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine client's errors, and which failures are transient (worth retrying)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError

_TRANSIENT_RE = re.compile(
    r"connection reset|connection refused|broken pipe|i/o timeout|timeout exceeded|timed out|unexpected EOF"
    r"|EOF$|no route to host|server misbehaving|temporarily unavailable|too many requests|toomanyrequests"
    r"|\b(429|500|502|503|504)\b|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout",
    re.IGNORECASE,
)


class DockerEngineError(EdgeforgeError):
    """A Docker engine or registry operation failed (message says what, where and why)."""


class BuildError(DockerEngineError):
    """A build failed: carries the failing step, its exit code and the last lines of output."""

    def __init__(self, image, step, exit_code, tail, log_path=None, reason=None):
        self.image = image
        self.step = step
        self.exit_code = exit_code
        self.tail = list(tail)
        self.log_path = log_path
        self.reason = reason
        parts = ["Build of %s failed" % image]
        if step:
            parts.append(" at %s" % step)
        if exit_code is not None:
            parts.append(" (exit code %s)" % exit_code)
        if reason:
            parts.append(": %s" % reason)
        message = "".join(parts)
        if self.tail:
            message += "\nLast lines of output:\n" + "\n".join(self.tail)
        if log_path:
            message += "\nFull build log: %s" % log_path
        super().__init__(message)


class LoginRefused(DockerEngineError):
    """The registry refused the credentials (not retried)."""


class TransientError(DockerEngineError):
    """A failure worth retrying (connection reset/refused, 5xx, 429)."""


def is_transient(message):
    """True when an error message looks like a transient network/registry failure worth retrying."""
    return bool(message) and bool(_TRANSIENT_RE.search(str(message)))


def short_text(text, limit=600):
    """One line of at most ``limit`` characters, for messages."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
