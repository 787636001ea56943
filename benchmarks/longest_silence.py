#!/usr/bin/env python
"""Longest silence in the output of a playbook run, with and without the progress callback (a script, not a test).

Run from the repository root:

    .venv/bin/python benchmarks/longest_silence.py [--playbook basic|aws|both] [--rounds N] [--markdown]

It starts the test bed in-process (dockerd if needed, an anonymous registry with the stand-in upstream images, the
moto server with the labelled EC2 import TEST DOUBLE), then runs each playbook with `edgeforge.artifacts.progress`
on (as ansible.cfg has it, every 30 s) and off (silent: an interval longer than the run), alternating which side goes first between
rounds. Every run is a first run: a unique custom tag, and for basic.yml a unique Dockerfile customisation, so the
base stage is built fresh. The output (stdout and stderr) is read line by line as it comes, each line is
timestamped, and the longest gap between two lines is reported with the task that was running during it.
Target (issue 12): <= 60 s with the callback on.

Clean-up: the registry, the moto server and the build directories are this run's own (temporary) and removed; the
engine images tagged with this run's unique custom tag or under this run's registry are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "collections")]

from tests.integration.helpers import VENV_BIN, ansible_bin  # noqa: E402
from tests.testbed.aws_bed import start_moto_server, stop_moto_server  # noqa: E402
from tests.testbed.services import ensure_docker_engine, start_registry  # noqa: E402
from tests.testbed.standins import Builder, StandIns  # noqa: E402

TOKEN = "edgeforgebenchtoken0123456789abc"
# "off": an interval longer than any run, so the callback prints nothing (ansible-core refuses an empty
# ANSIBLE_CALLBACKS_ENABLED, and another callback list would change more than this one callback).
SIDES = {"on": {}, "off": {"EDGEFORGE_PROGRESS_INTERVAL": "1000000"}}


class Silence:
    """What one run printed: the longest gap between two output lines and the task running during it."""

    def __init__(self):
        self.gap = 0.0
        self.task = "(start-up)"
        self.after = ""
        self.lines = 0
        self.progress_lines = 0
        self.seconds = 0.0
        self.rc = None
        self.tail = []
        self.load = ""


def run_and_watch(playbook, extra_vars, env):
    """Run ``ansible-playbook playbook``, timestamp every output line as it arrives; a Silence."""
    run_env = dict(os.environ)
    run_env.update({"ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1",
                    "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")})
    run_env.update(env)
    fd, vars_path = tempfile.mkstemp(prefix="edgeforge-vars.", suffix=".json")
    os.fchmod(fd, 0o600)  # the variables hold the registration token and the AWS keys
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(extra_vars, handle)
    result = Silence()
    task = "(start-up)"
    started = last = time.monotonic()
    try:
        with subprocess.Popen([ansible_bin("ansible-playbook"), playbook, "-e", "@" + vars_path], cwd=REPO_ROOT,
                              env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            for line in proc.stdout:
                now = time.monotonic()
                if now - last > result.gap:
                    result.gap, result.task, result.after = now - last, task, line.strip()[:100]
                last = now
                result.lines += 1
                result.progress_lines += line.startswith("[progress]")
                if line.startswith("TASK ["):
                    task = line.strip()[6:].split("]", 1)[0]
                result.tail = (result.tail + [line.rstrip()])[-40:]
            result.rc = proc.wait()
    finally:
        os.unlink(vars_path)
    result.seconds = time.monotonic() - started
    return result


def basic_vars(standins, registry, work, run_tag):
    variables = dict(standins.config_overrides, user_data_edge_host_token=TOKEN, custom_tag=run_tag,
                     image_registry="%s/%s" % (registry.host, run_tag), build_dir=os.path.join(work, run_tag),
                     provider_images_dockerfile_content="RUN echo %s > /etc/edgeforge-bench" % run_tag)
    return variables


def aws_vars(standins, moto, bucket, work, run_tag):
    variables = dict(standins.config_overrides, custom_tag=run_tag, iso_name="edge-%s" % run_tag,
                     build_dir=os.path.join(work, run_tag), s3_bucket=bucket, region=moto.region,
                     aws_cloud_image_endpoint_url=moto.endpoint_url, aws_cloud_image_access_key=moto.access_key,
                     aws_cloud_image_secret_key=moto.secret_key, aws_cloud_image_create_vmimport_role=True)
    return variables


def remove_images(client, run_tags, registry_host):
    """Remove the engine images this run built: tagged with one of its custom tags or under its own registry."""
    for image in client.images.list():
        for reference in image.tags:
            if reference.startswith(registry_host + "/") or any(tag in reference for tag in run_tags):
                try:
                    client.images.remove(reference, noprune=False)
                except Exception as err:  # pylint: disable=broad-except  # clean-up is best effort
                    print("could not remove %s: %s" % (reference, err))


def uptime():
    with open("/proc/loadavg", encoding="utf-8") as handle:
        return " ".join(handle.read().split()[:3])


def measure(playbook, sides, make_vars, run_tags):
    """One run per side, in the order given; {side: Silence}."""
    results = {}
    for side in sides:
        run_tag = "sil%s-%s" % (side, uuid.uuid4().hex[:6])
        run_tags.append(run_tag)
        load_before = uptime()
        result = run_and_watch(playbook, make_vars(run_tag), SIDES[side])
        result.load = "%s -> %s" % (load_before, uptime())
        if result.rc != 0:
            print("\n".join(result.tail))
            raise SystemExit("%s with the callback %s failed (rc %s)" % (playbook, side, result.rc))
        print("%-22s callback %-3s longest silence %6.1f s in %-45s whole run %6.1f s, %d lines (%d progress), "
              "load %s" % (playbook, side, result.gap, '"%s"' % result.task, result.seconds, result.lines,
                           result.progress_lines, result.load))
        results[side] = result
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--playbook", choices=("basic", "aws", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per playbook; the first side alternates")
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md table at the end")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="edgeforge-silence-")
    engine = ensure_docker_engine()
    registry = start_registry(os.path.join(work, "registry"))
    moto = None
    run_tags = []
    rows = []
    try:
        standins = StandIns(Builder(engine.client, progress=lambda m: print("[testbed]", m)), registry).publish_all()
        playbooks = ["basic", "aws"] if args.playbook == "both" else [args.playbook]
        if "aws" in playbooks:
            moto = start_moto_server(os.path.join(work, "moto.log"))
            bucket = "edgeforge-silence-%s" % uuid.uuid4().hex[:8]
            moto.client("s3").create_bucket(Bucket=bucket)
        for name in playbooks:
            if name == "basic":
                def make_vars(tag):
                    return basic_vars(standins, registry, work, tag)
            else:
                def make_vars(tag):
                    return aws_vars(standins, moto, bucket, work, tag)
            for number in range(args.rounds):
                sides = ("off", "on") if number % 2 == 0 else ("on", "off")
                for side, result in measure("playbooks/%s.yml" % name, sides, make_vars, run_tags).items():
                    rows.append((name, number, side, result))
        if args.markdown:
            print("\n| playbook | round | progress callback | longest silence | task | whole run | load (1/5/15 min) |")
            print("|---|---|---|---|---|---|---|")
            for name, number, side, result in rows:
                print("| %s.yml | %d | %s | **%.1f s** | %s | %.1f s | %s |" % (
                    name, number, side, result.gap, result.task, result.seconds, result.load))
    finally:
        if moto:
            stop_moto_server(moto)
        registry.stop()
        remove_images(engine.client, run_tags, registry.host)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
