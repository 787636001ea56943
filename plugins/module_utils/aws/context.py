# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every step of an import is handed: the clients, the progress log, check mode and a clock."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any, Callable


def _no_log(_message):
    return None


@dataclasses.dataclass(frozen=True)
class Context:
    conn: Any
    log: Callable[[str], None] = _no_log
    check_mode: bool = False
    sleep: Callable[[float], None] = time.sleep


@contextlib.contextmanager
def timed(seconds, name):
    """Add the seconds spent in the block to ``seconds[name]`` (the caller's own dict)."""
    start = time.monotonic()
    try:
        yield
    finally:
        seconds[name] = round(seconds.get(name, 0) + time.monotonic() - start, 3)


def bounded(seconds):
    """A function telling how many seconds remain (None: unbounded, always a day left)."""
    if seconds is None:
        return lambda: 86400.0
    end = time.monotonic() + float(seconds)
    return lambda: end - time.monotonic()
