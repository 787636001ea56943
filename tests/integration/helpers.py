"""Run playbooks the way users do: `ansible-playbook` from the repository root, in a subprocess.

    from tests.integration.helpers import run_playbook, play_recap

    result = run_playbook("playbooks/basic.yml", {"custom_tag": "demo", **standin_images.config_overrides})
    assert result.rc == 0, result.stdout
    assert play_recap(result.stdout)["localhost"]["failed"] == 0

Extra vars go through a 0600 temporary file (`-e @file`), never the command line: they may hold secrets, and a
command line is visible to every user of the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO_ROOT, ".venv", "bin")


class PlaybookResult:
    """What `run_playbook` returns: like subprocess.CompletedProcess (rc, stdout, stderr, args)."""

    def __init__(self, args, rc, stdout, stderr):
        self.args = args
        self.rc = rc
        self.returncode = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        """stdout and stderr together (for leak checks: a secret must appear in neither)."""
        return self.stdout + self.stderr

    @property
    def recap(self):
        return play_recap(self.stdout)

    def __repr__(self):
        return "PlaybookResult(rc=%r, args=%r)" % (self.rc, self.args)


def ansible_bin(name):
    """Path of an Ansible command: the repository's .venv first, else the one beside this Python, else PATH."""
    for directory in (VENV_BIN, os.path.dirname(sys.executable)):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return name


def run_playbook(playbook, extra_vars=None, *, verbosity=0, check=False, env=None, inventory=None, limit=None,
                 tags=None, extra_args=(), timeout=1800):
    """Run ``playbook`` (a path relative to the repository root, or absolute) with ``extra_vars``.

    ``env`` adds to (does not replace) the environment; ANSIBLE_CONFIG always points at the repository's
    ansible.cfg, so the collection resolves from the checkout. Returns a PlaybookResult (.rc, .stdout, .stderr).
    """
    args = [ansible_bin("ansible-playbook"), playbook]
    if inventory:
        args += ["-i", inventory]
    if limit:
        args += ["--limit", limit]
    if tags:
        args += ["--tags", tags if isinstance(tags, str) else ",".join(tags)]
    if check:
        args.append("--check")
    if verbosity:
        args.append("-" + "v" * verbosity)
    args += list(extra_args)
    run_env = dict(os.environ)
    run_env.update({
        "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    })
    run_env["PATH"] = VENV_BIN + os.pathsep + run_env.get("PATH", "")
    run_env.update(env or {})
    fd, vars_path = tempfile.mkstemp(prefix="edgeforge-vars.", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(extra_vars or {}, handle)
        args += ["-e", "@" + vars_path]
        proc = subprocess.run(args, cwd=REPO_ROOT, env=run_env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        os.unlink(vars_path)
    return PlaybookResult(args, proc.returncode, proc.stdout, proc.stderr)


RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


def play_recap(stdout):
    """Parse the PLAY RECAP: {host: {"ok": n, "changed": n, "unreachable": n, "failed": n, "skipped": n, ...}}.

    With several plays in one run, only the final recap is printed; it holds the totals per host.
    """
    recap = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            recap = {}
            continue
        if not in_recap:
            continue
        match = RECAP_LINE.match(line.strip())
        if match:
            recap[match.group("host")] = {key: int(value) for key, value in
                                          (item.split("=") for item in match.group("counts").split())}
        elif line.strip() and recap:
            in_recap = False
    return recap
