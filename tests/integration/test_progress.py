"""The progress callback (plugins/callback/progress.py): while a task runs, lines with the task, its running time and
the last line of the progress log under <build_dir>/logs appear in the output, beside the default stdout callback."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.integration.flow_runs import run_flow
from tests.integration.helpers import REPO_ROOT

pytestmark = pytest.mark.integration


def test_a_running_task_shows_its_progress_log(tmp_path):
    build_dir = tmp_path / "build"
    script = ("mkdir -p {logs}; for i in 1 2 3 4 5 6; do echo \"building step $i of 6\" >> {logs}/demo.progress.log; "
              "sleep 1; done").format(logs=build_dir / "logs")
    play = [{"name": "A long step", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Set the build directory", "ansible.builtin.set_fact": {"build_dir": str(build_dir)}},
                       {"name": "Build for a while", "ansible.builtin.shell": script, "changed_when": False}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play), encoding="utf-8")
    env = {"ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"),
           "ANSIBLE_CALLBACKS_ENABLED": "edgeforge.artifacts.progress", "EDGEFORGE_PROGRESS_INTERVAL": "1"}
    run = run_flow([str(tmp_path / "play.yml")], tmp_path, env=env)
    assert run.rc == 0, run.output
    lines = [line for line in run.stdout.splitlines() if line.startswith("[progress] localhost | Build for a while | ")]
    assert lines, run.stdout
    assert any("building step" in line for line in lines), lines
    assert not [line for line in run.stdout.splitlines() if "Set the build directory |" in line]
