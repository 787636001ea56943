# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's JSON event streams: the classic builder's (steps, output, failure) and a push's (bytes, digest)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import re
import time

TAIL_LINES = 25

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_EXIT_CODE_RE = re.compile(r"returned a non-zero code: (\d+)")


class BuildStream:
    """Consumes classic-builder JSON events: writes the full log, reports steps, remembers the failure context."""

    def __init__(self, log_handle=None, progress=None, label="", tail_lines=TAIL_LINES):
        self.log_handle = log_handle
        self.progress = progress
        self.label = label
        self.step = None
        self.step_output = collections.deque(maxlen=tail_lines)
        self.image_id = None
        self.error = None
        self.error_detail = None
        self._partial = ""

    def _line(self, line):
        if self.log_handle:
            self.log_handle.write(line + "\n")
        match = _STEP_RE.match(line)
        if match:
            self.step = "step %s/%s (%s)" % (match.group(1), match.group(2), match.group(3).strip())
            self.step_output.clear()
            if self.progress:
                self.progress("%s%s" % ("[%s] " % self.label if self.label else "", line))
        elif line.strip():
            self.step_output.append(line)

    def feed(self, event):
        """Handle one decoded event dict."""
        if "stream" in event:
            text = self._partial + event["stream"]
            lines = text.split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._line(line.rstrip("\r"))
        if "aux" in event and isinstance(event["aux"], dict) and event["aux"].get("ID"):
            self.image_id = event["aux"]["ID"]
        if "error" in event or "errorDetail" in event:
            self.flush()
            detail = event.get("errorDetail") or {}
            self.error = event.get("error") or detail.get("message") or "unknown build error"
            self.error_detail = detail
            if self.log_handle:
                self.log_handle.write("ERROR: %s\n" % self.error)
        if self.log_handle:
            self.log_handle.flush()

    def flush(self):
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def exit_code(self):
        code = (self.error_detail or {}).get("code")
        if code is not None:
            return code
        match = _EXIT_CODE_RE.search(self.error or "")
        return int(match.group(1)) if match else None


class PushStream:
    """Consumes push events: any ``error``/``errorDetail`` is a failure, bytes from ``progressDetail``, aux digest."""

    def __init__(self, progress=None, label=""):
        self.progress = progress
        self.label = label
        self.layers = {}
        self.existing = set()
        self.digest = None
        self.size = None
        self.error = None
        self._last_report = 0.0

    def feed(self, event):
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail") or {}
            self.error = event.get("error") or detail.get("message") or "unknown push error"
            return
        status = event.get("status") or ""
        layer = event.get("id")
        detail = event.get("progressDetail") or {}
        if layer and status == "Pushing" and "current" in detail:
            self.layers[layer] = max(self.layers.get(layer, 0), int(detail.get("current") or 0))
            now = time.monotonic()
            if self.progress and now - self._last_report >= 2.0:
                self._last_report = now
                prefix = "[%s] " % self.label if self.label else ""
                self.progress("%spushing: %d bytes sent" % (prefix, self.bytes_sent))
        elif layer and status == "Layer already exists":
            self.existing.add(layer)
        elif layer and status == "Pushed" and layer not in self.layers:
            # Small layers can finish without a progress event: count them as sent (size unknown -> 0).
            self.layers.setdefault(layer, 0)
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = aux["Digest"]
            self.size = aux.get("Size")

    @property
    def bytes_sent(self):
        return sum(self.layers.values())
