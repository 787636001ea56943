# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by every edgeforge.artifacts module: errors, atomic files, progress logs.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time


class EdgeforgeError(Exception):
    """A failure to report to the user as it is (no traceback)."""


class ValidationError(EdgeforgeError):
    """A bad input value: names the parameter, the value and what is allowed."""

    def __init__(self, param, value, allowed):
        self.param = param
        self.value = value
        self.allowed = allowed
        super().__init__("%s: %r is not valid; %s" % (param, value, allowed))


@contextlib.contextmanager
def atomic_output(path, mode=0o644):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    A failure removes the temporary file, so a half-written artifact never sits under its final name.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    os.close(fd)
    os.chmod(tmp_path, mode)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def atomic_write(path, data, mode=0o644):
    """Write ``data`` (str or bytes) to ``path`` atomically with ``mode`` (0600 for files holding secrets)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_output(path, mode) as tmp_path:
        with open(tmp_path, "wb") as handle:
            handle.write(data)


def sha256_file(path, chunk_size=4 * 1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ProgressLog:
    """Timestamped progress lines, flushed as they happen, so `tail -f` shows long work live.

    Ansible shows a module's output only when it ends; this file (and an optional callback such as
    AnsibleModule.log, which reaches syslog/journald) is where progress is visible while it runs.
    """

    def __init__(self, path=None, callback=None):
        self.path = path
        self.callback = callback
        self._handle = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._handle = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

    def __call__(self, message):
        line = "%s %s" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message)
        if self._handle:
            self._handle.write(line + "\n")
            self._handle.flush()
        if self.callback:
            self.callback(message)

    def close(self):
        if self._handle:
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def deadline_after(seconds):
    """Return a function telling how many seconds remain before a bounded wait must give up."""
    end = time.monotonic() + seconds
    return lambda: end - time.monotonic()
