"""The build_host role's preflight checks, run for real on this machine with ansible-playbook.

Thresholds above what the machine has must fail with one message that names the measured value, the threshold
and the variable to change; thresholds below must pass. Nothing is changed on the machine (tasks_from: preflight).
"""

from __future__ import annotations

import json
import os
import platform
import re

import pytest

from tests.integration.helpers import run_playbook

TASK_HEADER = re.compile(r"^TASK \[(?:[\w.]+ : )?(?P<name>.*)\] \**$")
FAILED_PREFIX = "fatal: [localhost]: FAILED! => "

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- name: Build host preflight
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the preflight checks of build_host
      ansible.builtin.include_role:
        name: edgeforge.artifacts.build_host
        tasks_from: preflight
"""

PASSING = {
    "build_host_min_cpus": 1,
    "build_host_min_memory_mb": 64,
    "build_host_min_free_disk_gb": 0.001,
    "build_host_arch": "amd64" if platform.machine() == "x86_64" else "arm64",
}


def task_names(stdout):
    return [match.group("name") for match in map(TASK_HEADER.match, stdout.splitlines()) if match]


def failed_tasks(stdout):
    """[(task name, msg)] for every failed task, from the default callback's one-line JSON results."""
    failures = []
    task = None
    for line in stdout.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            task = header.group("name")
        elif line.startswith(FAILED_PREFIX):
            failures.append((task, json.loads(line[len(FAILED_PREFIX):]).get("msg", "")))
    return failures


@pytest.fixture(name="preflight")
def fixture_preflight(tmp_path):
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")

    def run(drop=(), **overrides):
        extra_vars = dict(PASSING, build_host_build_path=str(tmp_path / "build"), **overrides)
        for name in drop:
            del extra_vars[name]
        result = run_playbook(str(playbook), extra_vars,
                              env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false"})
        return result, task_names(result.stdout), failed_tasks(result.stdout)

    return run


def test_passes_with_thresholds_below_the_machine(preflight):
    result, names, failures = preflight()
    assert result.rc == 0, result.stdout + result.stderr
    assert failures == []
    assert result.recap["localhost"]["changed"] == 0
    assert result.recap["localhost"]["failed"] == 0
    for check in ("Check the CPU architecture", "Check the number of CPUs", "Check the memory size",
                  "Check the free space on the build path"):
        assert check in names


def test_too_few_cpus(preflight):
    result, _output, failures = preflight(build_host_min_cpus=4096)
    assert result.rc != 0
    assert len(failures) == 1
    task, msg = failures[0]
    assert task == "Check the number of CPUs"
    assert f"has {os.cpu_count()} CPUs" in msg
    assert "4096 required" in msg
    assert "build_host_min_cpus" in msg


def test_too_little_memory(preflight):
    result, _output, failures = preflight(build_host_min_memory_mb=10**9)
    assert result.rc != 0
    assert len(failures) == 1
    task, msg = failures[0]
    assert task == "Check the memory size"
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total_mb = int(meminfo.readline().split()[1]) // 1024
    assert f"has {total_mb} MB of memory" in msg
    assert "1000000000 MB required" in msg
    assert "build_host_min_memory_mb" in msg


def test_too_little_free_disk(preflight, tmp_path):
    result, _output, failures = preflight(build_host_min_free_disk_gb=10**9)
    assert result.rc != 0
    assert len(failures) == 1
    task, msg = failures[0]
    assert task == "Check the free space on the build path"
    # the build path does not exist yet: the space is measured on its nearest existing parent
    assert str(tmp_path / "build") in msg
    assert f"measured on {tmp_path}" in msg
    stat = os.statvfs(tmp_path)
    free_gb = round(stat.f_bavail * stat.f_frsize / 1e9, 1)
    measured = float(msg.split(" GB free")[0].rsplit(" ", 1)[1])
    assert abs(measured - free_gb) <= max(1.0, free_gb * 0.02)
    assert "1000000000 GB required" in msg
    assert "build_host_min_free_disk_gb" in msg


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the arm64-on-x86_64 refusal needs an x86_64 machine")
def test_arm64_requested_on_x86_64(preflight):
    result, _output, failures = preflight(build_host_arch="arm64")
    assert result.rc != 0
    assert len(failures) == 1
    task, msg = failures[0]
    assert task == "Check the CPU architecture"
    assert "is x86_64" in msg
    assert "build_host_arch is 'arm64'" in msg
    assert "aarch64" in msg


def test_flat_arch_variable_is_the_default(preflight):
    # build_host_arch unset: the flat build variable `arch` decides
    other_arch = "arm64" if platform.machine() == "x86_64" else "amd64"
    result, _output, failures = preflight(drop=["build_host_arch"], arch=other_arch)
    assert result.rc != 0
    assert [failure[0] for failure in failures] == ["Check the CPU architecture"]


def test_unknown_arch_is_refused_by_the_argument_spec(preflight):
    result, _output, failures = preflight(build_host_arch="riscv64")
    assert result.rc != 0
    assert len(failures) == 1
    msg = failures[0][1]
    assert "build_host_arch" in msg
    assert "amd64" in msg and "arm64" in msg
