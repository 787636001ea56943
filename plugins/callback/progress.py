# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
name: progress
type: notification
short_description: Print the progress of long build tasks while they run
version_added: "0.1.0"
description:
  - A module cannot print while it runs, so a 15-minute build shows one TASK line and then nothing. While a task has
    been running for longer than O(interval) seconds, this callback prints one line per host and interval with the
    task, the time it has run and the last line of the newest log the collection's modules write under
    C(<build_dir>/logs/) (C(provider_images.progress.log), C(installer_iso.progress.log), the AWS import log), for
    for example C([progress] localhost | Build the provider images | 4m30s | step 5 of 9, k3s-1.28.5).
  - The log is read on the controller, so the step is shown for hosts built through the local connection (a
    checkout, an AWX execution environment); for other hosts the line says how long the task has run.
  - It works beside any stdout callback (AWX imposes its own). Enable it with
    C(callbacks_enabled = edgeforge.artifacts.progress) in C(ansible.cfg) or
    E(ANSIBLE_CALLBACKS_ENABLED=edgeforge.artifacts.progress).
requirements:
  - enable in configuration
options:
  interval:
    description: Seconds between two progress lines of a running task (and before the first one).
    type: float
    default: 30
    env:
      - name: EDGEFORGE_PROGRESS_INTERVAL
    ini:
      - section: edgeforge_progress
        key: interval
"""

import glob
import os
import threading
import time

from ansible.plugins.callback import CallbackBase


def last_line(path, limit=4096):
    """The last non-empty line of a text file (reads at most its last ``limit`` bytes)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


def newest_log(build_dir, since):
    """The progress log (else any log) under ``<build_dir>/logs`` written to since ``since`` (epoch seconds)."""
    if not build_dir:
        return None
    for pattern in ("*.progress.log", "*.log"):
        found = []
        for path in glob.glob(os.path.join(build_dir, "logs", pattern)):
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if mtime >= since:
                found.append((mtime, path))
        if found:
            return max(found)[1]
    return None


def duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return "%dm%02ds" % (minutes, seconds) if minutes else "%ds" % seconds


class CallbackModule(CallbackBase):
    """Prints a progress line per running task and host every ``interval`` seconds, from a background thread."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "edgeforge.artifacts.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self._running = {}  # (host, task uuid) -> [task name, monotonic start, epoch start, build_dir, next print]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._play = None
        self._build_dirs = {}  # host name -> build_dir, once known

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(CallbackModule, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._interval = max(1.0, float(self.get_option("interval")))

    def v2_playbook_on_play_start(self, play):
        self._play = play
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="edgeforge-progress", daemon=True)
            self._thread.start()

    def _build_dir(self, host):
        """The host's build_dir when the host is built through the local connection (else None)."""
        if host.name in self._build_dirs:
            return self._build_dirs[host.name]
        try:
            manager = self._play.get_variable_manager()
            host_vars = manager.get_vars(play=self._play, host=host, include_hostvars=False)
        except Exception:  # pylint: disable=broad-except  # progress is best effort, never a failure
            return None
        if host_vars.get("ansible_connection") not in ("local", None) and host.name not in ("localhost", "127.0.0.1"):
            return None
        build_dir = host_vars.get("build_dir")
        if not isinstance(build_dir, str) or "{{" in build_dir:
            return None
        self._build_dirs[host.name] = build_dir
        return build_dir

    def v2_runner_on_start(self, host, task):
        now = time.monotonic()
        entry = [task.get_name(), now, time.time(), self._build_dir(host), now + self._interval]
        with self._lock:
            self._running[(host.name, task._uuid)] = entry

    def _finished(self, result, *args, **kwargs):
        with self._lock:
            self._running.pop((result._host.name, result._task._uuid), None)

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _finished

    def v2_playbook_on_stats(self, stats):
        self._stop.set()

    def _loop(self):
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                due = [(key[0], entry) for key, entry in self._running.items() if entry[4] <= now]
                for _host, entry in due:
                    entry[4] = now + self._interval
            for host, (name, started, since, build_dir, _next) in due:
                log = newest_log(build_dir, since - 1)
                step = last_line(log) if log else ""
                self._display.display("[progress] %s | %s | %s%s" % (
                    host, name, duration(now - started), (" | " + step) if step else " | still running"))
