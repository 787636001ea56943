"""Start or stop the test bed outside pytest (for the README's demo command).

    python -m tests.testbed up [--vars-file build/testbed-vars.yml] [--payload k3s:1.30.4 ...]
    python -m tests.testbed status
    python -m tests.testbed down [--stop-dockerd]

`up` starts dockerd if none answers, the anonymous registry (ttl.sh stand-in) and the htpasswd registry (Docker Hub
stand-in) as background processes with their storage under the state directory (default
/var/tmp/edgeforge-testbed, or $EDGEFORGE_TESTBED_DIR), builds and publishes the stand-in upstream images, and
writes an Ansible extra-vars file (mode 0600: it holds the registry password) for
`ansible-playbook playbooks/basic.yml -e @build/testbed-vars.yml`. Running `up` again reuses running registries.
`down` stops the registries (by the pids it recorded) and removes their storage.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time

import yaml

from tests.testbed.services import (STATE_DIR, Registry, TestbedError, ensure_docker_engine, start_registry,
                                    stop_pid)
from tests.testbed.standins import Builder, StandIns

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTH_USERNAME = "edgeforge"
DEMO = {
    "custom_tag": "demo",
    "image_repo": "ubuntu",
    "os_distribution": "ubuntu",
    "os_version": "22.04",
    "k8s_distribution": "k3s",
    "k8s_version": "1.27.2",
}


def _say(message):
    print("[testbed] %s" % message, flush=True)


def _state_path(state_dir):
    return os.path.join(state_dir, "state.json")


def _load_state(state_dir):
    try:
        with open(_state_path(state_dir), "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _save_state(state_dir, state):
    os.makedirs(state_dir, exist_ok=True)
    fd = os.open(_state_path(state_dir), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)


def _running_registry(entry):
    """A Registry for a recorded entry if its process still answers, else None."""
    if not entry:
        return None
    workdir = entry["workdir"]
    reg = Registry(entry["host"], os.path.join(workdir, "storage"), os.path.join(workdir, "config.yml"),
                   os.path.join(workdir, "registry.log"), entry["pid"], entry.get("username"), entry.get("password"))
    try:
        if reg.api("/v2/", auth=False, timeout=2)[0] in (200, 401):
            return reg
    except OSError:
        pass
    stop_pid(entry["pid"])
    return None


def _entry(reg, workdir):
    return {"host": reg.host, "pid": reg.pid, "workdir": workdir, "username": reg.username,
            "password": reg.password}


def cmd_up(args):
    started = time.monotonic()
    state_dir = args.state_dir
    state = _load_state(state_dir)
    engine = ensure_docker_engine(state_dir)
    origin = " (started by the test bed)" if engine.started_pid else ""
    _say("Docker engine answers at %s%s" % (engine.base_url, origin))
    anon = _running_registry(state.get("registry"))
    if anon is None:
        workdir = os.path.join(state_dir, "registry-anon")
        anon = start_registry(workdir)
        state["registry"] = _entry(anon, workdir)
    auth = _running_registry(state.get("auth_registry"))
    if auth is None:
        workdir = os.path.join(state_dir, "registry-auth")
        auth = start_registry(workdir, username=AUTH_USERNAME, password="edgeforge-" + secrets.token_hex(12))
        state["auth_registry"] = _entry(auth, workdir)
    _save_state(state_dir, state)
    _say("anonymous registry (ttl.sh stand-in): %s; auth registry (Docker Hub stand-in): %s"
         % (anon.host, auth.host))

    standins = StandIns(Builder(engine.client, state_dir, progress=_say), anon).publish_all()
    for item in args.payload or []:
        dist, _sep, version = item.partition(":")
        standins.ensure_payload(dist, version)
    standins.ensure_payload(DEMO["k8s_distribution"], DEMO["k8s_version"])
    state["standins"] = standins.as_vars()
    _save_state(state_dir, state)

    extra_vars = dict(standins.config_overrides)
    extra_vars.update(DEMO)
    extra_vars.update({
        "image_registry": anon.host,
        "provider_images_registry_username": auth.username,
        "provider_images_registry_password": auth.password,
        "advanced_image_registry": "%s/edgeforge" % auth.host,
        "testbed_registry": anon.host,
        "testbed_auth_registry": auth.host,
        "testbed_docker_host": engine.base_url,
    })
    vars_file = os.path.join(REPO_ROOT, args.vars_file) if not os.path.isabs(args.vars_file) else args.vars_file
    os.makedirs(os.path.dirname(vars_file), exist_ok=True)
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("---\n# Written by `python -m tests.testbed up`: the local test bed (offline stand-ins for ttl.sh,\n"
                     "# Docker Hub and the upstream Palette images). Use with -e @%s\n" % args.vars_file)
        yaml.safe_dump(extra_vars, handle, default_flow_style=False, sort_keys=True)
    _say("extra vars written to %s (%.0f s)" % (vars_file, time.monotonic() - started))
    return 0


def cmd_status(args):
    state = _load_state(args.state_dir)
    ok = True
    for key in ("registry", "auth_registry"):
        reg = _running_registry(state.get(key)) if state.get(key) else None
        print("%-14s %s" % (key, "%s (pid %d)" % (reg.host, reg.pid) if reg else "not running"))
        ok = ok and reg is not None
    return 0 if ok else 1


def cmd_down(args):
    state = _load_state(args.state_dir)
    for key in ("registry", "auth_registry"):
        entry = state.get(key)
        if entry:
            stopped = stop_pid(entry["pid"])
            shutil.rmtree(entry["workdir"], ignore_errors=True)
            _say("%s on %s %s" % (key, entry["host"], "stopped" if stopped else "was not running"))
    if args.stop_dockerd:
        try:
            with open(os.path.join(args.state_dir, "dockerd.pid"), "r", encoding="utf-8") as handle:
                pid = int(handle.read().strip())
            _say("dockerd (pid %d) %s" % (pid, "stopped" if stop_pid(pid, timeout=30) else "was not running"))
            os.unlink(os.path.join(args.state_dir, "dockerd.pid"))
        except (OSError, ValueError):
            _say("dockerd was not started by the test bed; left alone")
    with_state = _state_path(args.state_dir)
    if os.path.exists(with_state):
        os.unlink(with_state)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--state-dir", default=STATE_DIR, help="where pids, logs and registry storage live")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the services, publish the stand-ins, write the extra-vars file")
    up.add_argument("--vars-file", default="build/testbed-vars.yml", help="extra-vars YAML to write")
    up.add_argument("--payload", action="append", metavar="DIST:VERSION",
                    help="also publish the Kubernetes payload stand-in for this version (repeatable)")
    sub.add_parser("status", help="tell whether the registries run")
    down = sub.add_parser("down", help="stop the registries and remove their storage")
    down.add_argument("--stop-dockerd", action="store_true", help="also stop a dockerd the test bed started")
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "status": cmd_status, "down": cmd_down}[args.command](args)
    except TestbedError as err:
        print("test bed: %s" % err, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
