"""Run the flows the way users outside a checkout do, and read what a flow hands to the next node of a workflow.

- `run_flow(args, cwd, env)`: `ansible-playbook ARGS` in ``cwd`` with extra vars through a 0600 file; unlike
  tests/integration/helpers.run_playbook it does not point ANSIBLE_CONFIG at the checkout (pass ``env``).
- `build_record(stdout)`: the `edgeforge_build` record the flows publish with set_stats, as printed with
  ANSIBLE_SHOW_CUSTOM_STATS (what AWX receives as the job's artifacts).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from tests.integration.helpers import VENV_BIN, PlaybookResult, ansible_bin

# Shows the set_stats data in the output, as JSON (AWX reads the same data from the job's artifacts).
STATS_ENV = {"ANSIBLE_SHOW_CUSTOM_STATS": "True", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


def run_flow(args, cwd, extra_vars=None, env=None, timeout=1800):
    """Run `ansible-playbook ARGS -e @vars.json` in ``cwd``; ``env`` replaces the matching variables."""
    run_env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    run_env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "False",
                    "ANSIBLE_HOST_KEY_CHECKING": "False", "PYTHONUNBUFFERED": "1", "PWD": str(cwd)})
    run_env["PATH"] = VENV_BIN + os.pathsep + run_env.get("PATH", "")
    run_env.update(env or {})
    fd, vars_path = tempfile.mkstemp(prefix="edgeforge-vars.", suffix=".json")
    command = [ansible_bin("ansible-playbook")] + list(args)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(extra_vars or {}, handle)
        command += ["-e", "@" + vars_path]
        proc = subprocess.run(command, cwd=str(cwd), env=run_env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        os.unlink(vars_path)
    return PlaybookResult(command, proc.returncode, proc.stdout, proc.stderr)


def build_record(stdout):
    """The `edgeforge_build` set_stats record printed under CUSTOM STATS (None when absent)."""
    marker = stdout.rfind("RUN: ")
    if marker < 0:
        return None
    data, _end = json.JSONDecoder().raw_decode(stdout[marker + len("RUN: "):].lstrip())
    return data.get("edgeforge_build")
