#!/usr/bin/env python
"""Benchmark of the provider image flow (a script, not a timed test). Run from the repository root:

    .venv/bin/python benchmarks/provider_images.py [--markdown]

It starts the test bed in-process (dockerd if needed, an anonymous registry, the stand-in upstream images), then
measures, side by side in one run:

1. `ansible-playbook playbooks/basic.yml` first run (a unique Dockerfile customisation forces a fresh base stage,
   so nothing comes from an earlier run's layer cache) and the no-op re-run right after: target re-run <= 10 %;
   then the same re-run with Ansible's pipelining off.
2. The provider build for 1 Kubernetes version and for 4 (each with its own fresh base stage, push off):
   target 4 versions <= 1.25 x 1 version, thanks to the shared base stage (which holds CanvOS's package, kernel
   and initrd steps) and the version-independent steps cached before each version's payload.
3. Pushing the 4 images, then pushing them again (digest check) and again with force (engine-level
   "Layer already exists"): target 0 layer bytes on the second push.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "collections")]

from tests.integration.helpers import run_playbook  # noqa: E402
from tests.integration.registry_checks import write_playbook  # noqa: E402
from tests.testbed.services import ensure_docker_engine, start_registry  # noqa: E402
from tests.testbed.standins import Builder, StandIns  # noqa: E402

VERSIONS = ["1.26.14", "1.27.2", "1.27.9", "1.28.5"]
TOKEN = "edgeforgebenchtoken0123456789abc"

PUSH_TASKS = """
- name: Push
  edgeforge.artifacts.image_push:
    references: "{{ bench_references }}"
    force: "{{ bench_force | default(false) }}"
  register: pushed
- name: Keep the result
  ansible.builtin.copy:
    content: "{{ pushed | to_json }}"
    dest: "{{ bench_result }}"
    mode: "0644"
"""


def timed(label, playbook, variables, results, **kwargs):
    started = time.monotonic()
    run = run_playbook(playbook, variables, **kwargs)
    seconds = time.monotonic() - started
    if run.rc != 0:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit("%s failed (rc %s)" % (label, run.rc))
    results[label] = round(seconds, 1)
    print("%-45s %7.1f s   changed=%s" % (label, seconds, run.recap.get("localhost", {}).get("changed")))
    return run


def padded_base(client, standins, registry, gib):
    """The base stand-in plus ``gib`` GiB of random data (one layer), published in the registry; its reference."""
    reference = "%s/bench/kairos-ubuntu:padded-%sg" % (registry.host, gib)
    dockerfile = ("FROM %s\nRUN mkdir /opt/edgeforge-padding && head -c %d /dev/urandom > /opt/edgeforge-padding/data"
                  "\n" % (standins.base_image_tag, int(gib * 1024 ** 3)))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as context:
        with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
            handle.write(dockerfile)
        client.images.build(path=context, tag=reference, rm=True)
    for line in client.images.push(reference, stream=True, decode=True):
        if "error" in line:
            raise SystemExit("push of %s failed: %s" % (reference, line["error"]))
    seconds = time.monotonic() - started
    print("%-45s %7.1f s   (setup, not measured)" % ("padded base image built and published", seconds))
    return reference


def machine():
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = platform.platform()
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "%d cores, %.0f GiB RAM, %s, Python %s" % (os.cpu_count(), mem_kb / 1024 / 1024, os_name,
                                                      platform.python_version())


def build_versions(base, registry, run_id, work, results, order=(1, 4), tag=""):
    """The provider build for 1 version and for 4, each with a fresh base stage (its own customisation)."""
    for count in order:
        name = "%d%s" % (count, tag.replace(" ", "-"))
        variables = dict(base, image_registry="%s/bench-%s-%s" % (registry.host, run_id, name),
                         build_dir=os.path.join(work, "v%s" % name), k8s_version=VERSIONS[:count],
                         provider_images_push=False, provider_images_installer=False,
                         provider_images_dockerfile_content="RUN echo %s-%s > /etc/edgeforge-bench"
                         % (run_id, name))
        timed("build %d version%s (shared base stage)%s" % (count, "s" if count > 1 else "", tag),
              "playbooks/basic.yml", variables, results)


def versions_only(base, registry, run_id, work, results, rounds=1):
    """Rounds alternate the order (1 then 4, 4 then 1, ...) so a load that rises or falls during a round does not
    always favour the same side; the ratio of each round and their median are printed."""
    ratios = []
    print("\n| round | order | build 1 version | build 4 versions | 4 / 1 | load after |\n|---|---|---|---|---|---|")
    for number in range(rounds):
        order = (1, 4) if number % 2 == 0 else (4, 1)
        tag = " round %d" % number
        build_versions(base, registry, run_id, work, results, order=order, tag=tag)
        one = results["build 1 version (shared base stage)%s" % tag]
        four = results["build 4 versions (shared base stage)%s" % tag]
        ratios.append(four / one)
        row = (number, order[0], order[1], one, four, four / one, os.getloadavg()[0])
        print("| %d | %s then %s | %.1f s | %.1f s | %.2f | %.2f |" % row)
    print("| **median** | | | | **%.2f** (target <= 1.25) | |" % statistics.median(ratios))
    print("\nMachine: %s." % machine())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md section at the end")
    parser.add_argument("--base-padding-gib", type=float, default=0,
                        help="add this much incompressible data to the base stand-in (a real Kairos base is ~4 GB; "
                             "the stand-in ~0.7 GB) and build on that")
    parser.add_argument("--only-noop", action="store_true", help="measure only the first run and the no-op re-run")
    parser.add_argument("--only-versions", action="store_true",
                        help="measure only the 1-version and 4-version builds (part 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --only-versions: rounds of the two builds, the order alternating between rounds")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="edgeforge-bench-")
    engine = ensure_docker_engine()
    registry = start_registry(os.path.join(work, "registry"))
    try:
        standins = StandIns(Builder(engine.client, progress=lambda m: print("[testbed]", m)), registry).publish_all()
        for version in VERSIONS:
            standins.ensure_payload("k3s", version)
        results = {}
        run_id = uuid.uuid4().hex[:8]
        base = dict(standins.config_overrides, user_data_edge_host_token=TOKEN, provider_images_parallel=2)
        if args.base_padding_gib:
            base["base_image"] = padded_base(engine.client, standins, registry, args.base_padding_gib)

        if args.only_versions:
            versions_only(base, registry, run_id, work, results, rounds=args.rounds)
            return
        # 1. basic.yml first run vs no-op re-run
        basic = dict(base, image_registry="%s/bench-%s" % (registry.host, run_id),
                     build_dir=os.path.join(work, "basic"),
                     provider_images_dockerfile_content="RUN echo %s-basic > /etc/edgeforge-bench" % run_id)
        timed("basic.yml first run", "playbooks/basic.yml", basic, results)
        timed("basic.yml no-op re-run", "playbooks/basic.yml", basic, results)
        # the same re-run without the pipelining ansible.cfg turns on: Ansible's per-task cost
        timed("basic.yml no-op re-run, pipelining off", "playbooks/basic.yml", basic, results,
              env={"ANSIBLE_PIPELINING": "false"})

        if args.only_noop:
            ratio = results["basic.yml no-op re-run"] / results["basic.yml first run"]
            print("\n%-45s %7.2f" % ("no-op re-run / first run", ratio))
            print("Machine: %s." % machine())
            return
        # 2. 1 version vs 4 versions, each with a fresh base stage, build only
        build_versions(base, registry, run_id, work, results)

        # 3. push 4 images, then again (digest check), then forced (engine-level layer check)
        refs = ["%s/bench-%s-4/ubuntu:k3s-%s-v4.9.21-palette-learn" % (registry.host, run_id, v) for v in VERSIONS]
        playbook = write_playbook(work, "push.yml", PUSH_TASKS)
        pushes = {}
        for label, force in (("first push", False), ("second push", False), ("forced third push", True)):
            out = os.path.join(work, "push-%s.json" % label.replace(" ", "-"))
            push_vars = {"bench_references": refs, "bench_result": out, "bench_force": force}
            timed("%s of 4 images" % label, playbook, push_vars, results)
            with open(out, encoding="utf-8") as handle:
                pushes[label] = json.load(handle)["bytes_sent"]
            print("%-45s %12d bytes" % ("  layer bytes sent", pushes[label]))

        ratios = {
            "no-op re-run / first run": results["basic.yml no-op re-run"] / results["basic.yml first run"],
            "4 versions / 1 version": results["build 4 versions (shared base stage)"]
            / results["build 1 version (shared base stage)"],
        }
        print()
        for key, value in ratios.items():
            print("%-45s %7.2f" % (key, value))
        if args.markdown:
            print("\n| measurement | value |\n|---|---|")
            for key, value in results.items():
                print("| %s | %.1f s |" % (key, value))
            for key, value in pushes.items():
                print("| layer bytes sent, %s | %d |" % (key, value))
            print("| **no-op re-run / first run** (target <= 0.10) | **%.2f** |" % ratios["no-op re-run / first run"])
            print("| **4 versions / 1 version** (target <= 1.25) | **%.2f** |" % ratios["4 versions / 1 version"])
            print("\nMachine: %s." % machine())
    finally:
        registry.stop()


if __name__ == "__main__":
    main()
