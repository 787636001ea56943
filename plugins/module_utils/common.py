# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by every edgeforge.artifacts module: errors, atomic files, progress logs, and the one way the
collection hashes (``sha256_hex``, ``sha256_file``, ``inputs_digest``), masks secrets (``mask_secrets``) and retries
what has no retries of its own (``retry_call``).

Plain Python: unit tests import this without Ansible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import tempfile
import time

# How every secret is shown in results, diffs, messages and logs.
MASK = "********"


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


SHA256_HEX_RE = re.compile(r"^[0-9a-f]{64}$")  # a SHA-256 digest as sha256sum and hexdigest() print it


def sha256_hex(data):
    """The SHA-256 hex digest of ``data`` (str as UTF-8, or bytes)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk_size=8 * 1024 * 1024, progress=None):
    """The SHA-256 hex digest of a file, read in chunks; ``progress(bytes_done)`` after each chunk if given."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return digest.hexdigest()


def inputs_digest(parts):
    """``sha256:<hex>`` of the canonical JSON of ``parts``: the one format of every "inputs" digest (image labels,
    disk stamps), so equal inputs give equal digests whichever part of the collection computes them."""
    return "sha256:" + sha256_hex(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str))


_URL_PASSWORD_RE = re.compile(r"(?P<lead>://[^/@\s:]*:)[^@\s]*@")


def mask_secrets(text, secrets=()):
    """``text`` with each known secret value, and the password of every ``scheme://user:password@`` URL, as MASK.

    Values shorter than 3 characters are left alone: masking them would garble unrelated text.
    """
    if not text:
        return text
    text = _URL_PASSWORD_RE.sub(lambda match: match.group("lead") + MASK + "@", str(text))
    for secret in sorted({str(value) for value in secrets if value}, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


def full_jitter_delays(retries, base=1.0, cap=30.0, rng=random.random):
    """The waits before each of ``retries`` retries: uniform in [0, min(cap, base * 2**n)] ("full jitter"), so
    clients failing together do not retry together."""
    return [rng() * min(float(cap), float(base) * 2 ** attempt) for attempt in range(max(0, int(retries)))]


class RetriesExhausted(EdgeforgeError):
    """A retryable failure that still failed after the last retry: ``attempts`` and ``cause`` (the last error)."""

    def __init__(self, message, attempts, cause):
        self.attempts = attempts
        self.cause = cause
        super().__init__(message)


def retry_call(func, retryable, retries=3, base=1.0, cap=30.0, sleep=time.sleep, on_retry=None, rng=random.random):
    """Call ``func()``; when it raises an exception that ``retryable(exc)`` accepts, wait (full-jitter backoff) and
    call again, at most ``retries`` more times. ``on_retry(exc, attempt, delay)`` is told before each wait.

    Other exceptions go through untouched; the last retryable one is raised as RetriesExhausted (cause attached).
    For calls with no retries of their own only (Docker login and push): AWS calls use botocore's retry settings.
    """
    delays = full_jitter_delays(retries, base, cap, rng)
    attempt = 0
    while True:
        attempt += 1
        try:
            return func()
        except Exception as exc:  # pylint: disable=broad-except  # filtered by retryable() just below
            if not retryable(exc):
                raise
            if not delays:
                raise RetriesExhausted(str(exc), attempt, exc) from exc
            delay = delays.pop(0)
            if on_retry:
                on_retry(exc, attempt, delay)
            sleep(delay)


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
