"""image_push against real registries: anonymous (ttl.sh stand-in) and htpasswd (Docker Hub stand-in)."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile

import pytest

from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import remote_manifest, unique, write_playbook
from tests.testbed.services import start_registry

pytestmark = pytest.mark.integration

PUSH_TASKS = """
- name: Push
  edgeforge.artifacts.image_push:
    references: "{{ test_references }}"
    username: "{{ test_username | default(omit) }}"
    password: "{{ test_password | default(omit) }}"
    write_docker_config: "{{ test_write_config | default(false) }}"
    retries: 2
    retry_delay: 0.2
  register: pushed
- name: Keep the result for the test
  ansible.builtin.copy:
    content: "{{ pushed | to_json }}"
    dest: "{{ test_result_path }}"
    mode: "0644"
  check_mode: false
"""

MID_RUN_TASKS = PUSH_TASKS.replace("test_references", "test_first") + """
- name: The registry goes away
  ansible.builtin.command: kill {{ test_registry_pid }}
  changed_when: true
- name: Push again
  edgeforge.artifacts.image_push:
    references: "{{ test_second }}"
    retries: 2
    retry_delay: 0.2
"""


def _small_image(client, reference):
    """A tiny image with one unique layer, tagged ``reference``."""
    payload = os.urandom(64 * 1024)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY blob /blob\n"), ("blob", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _logs = client.images.build(fileobj=buf, custom_context=True, tag=reference, rm=True)
    return image


def _push(playbook, tmp_path, variables, home=None, **kwargs):
    """Run the push playbook; returns (PlaybookResult, module result dict or None).

    Each run has a home of its own (a new empty one unless ``home`` is given): the Docker SDK reads the stored
    credentials of ~/.docker/config.json, so a push meant to be anonymous must not find any left by another run.
    """
    home = str(home or tmp_path / unique("home"))
    env = {"HOME": home, "DOCKER_CONFIG": os.path.join(home, ".docker")}
    path = str(tmp_path / ("result-%s.json" % unique()))
    run = run_playbook(playbook, dict(variables, test_result_path=path), env=env, **kwargs)
    if not os.path.exists(path):
        return run, None
    with open(path, encoding="utf-8") as handle:
        return run, json.load(handle)


@pytest.fixture(scope="module")
def playbooks(tmp_path_factory):
    directory = tmp_path_factory.mktemp("push-play")
    return {"push": write_playbook(directory, "push.yml", PUSH_TASKS),
            "mid_run": write_playbook(directory, "mid_run.yml", MID_RUN_TASKS)}


def test_anonymous_push_then_rerun_sends_nothing(docker_engine, registry, playbooks, tmp_path):
    refs = ["%s/%s/ubuntu:k3s-1.27.%d-v4.9.21-it" % (registry.host, unique(), n) for n in (1, 2)]
    for ref in refs:
        _small_image(docker_engine.client, ref)
    first, result = _push(playbooks["push"], tmp_path, {"test_references": refs}, home=tmp_path)
    assert first.rc == 0, first.stdout
    assert result["changed"] is True
    assert [item["status"] for item in result["images"]] == ["pushed", "pushed"]
    assert all(item["bytes_sent"] >= 64 * 1024 for item in result["images"])
    for ref, item in zip(refs, result["images"]):
        digest, manifest = remote_manifest(registry, ref)
        assert manifest is not None and digest == item["digest"]
    assert not os.path.exists(os.path.join(str(tmp_path), ".docker", "config.json"))

    again, second = _push(playbooks["push"], tmp_path, {"test_references": refs})
    assert again.rc == 0, again.stdout
    assert second["changed"] is False
    assert [item["status"] for item in second["images"]] == ["skipped", "skipped"]
    assert second["bytes_sent"] == 0
    assert [item["digest"] for item in second["images"]] == [item["digest"] for item in result["images"]]


def test_ttl_sh_push_warns_about_expiry(docker_engine, playbooks, tmp_path):
    ref = "ttl.sh/%s:1h" % unique()
    _small_image(docker_engine.client, ref)
    checked, result = _push(playbooks["push"], tmp_path, {"test_references": [ref]}, check=True)
    assert checked.rc == 0, checked.stdout
    assert "expire after 24 hours" in checked.output
    assert result["images"][0]["status"] == "would_push"


def test_auth_registry_rejects_a_wrong_password_and_accepts_the_right_one(docker_engine, auth_registry, playbooks,
                                                                          tmp_path):
    ref = "%s/%s/opensuse-leap:k3s-1.27.2-v4.9.21-it" % (auth_registry.host, unique())
    _small_image(docker_engine.client, ref)
    login = {"test_references": [ref], "test_username": auth_registry.username}
    wrong = _push(playbooks["push"], tmp_path, dict(login, test_password="not-the-password"))[0]
    assert wrong.rc != 0
    assert "Login to %s as %s was refused: wrong username or password" % (
        auth_registry.host, auth_registry.username) in wrong.stdout
    assert "not-the-password" not in wrong.output
    assert remote_manifest(auth_registry, ref) == (None, None)

    anonymous = _push(playbooks["push"], tmp_path, {"test_references": [ref]})[0]
    assert anonymous.rc != 0
    assert "Push of %s to %s failed" % (ref, auth_registry.host) in anonymous.stdout

    right, result = _push(playbooks["push"], tmp_path,
                          dict(login, test_password=auth_registry.password, test_write_config=True),
                          home=tmp_path)
    assert right.rc == 0, right.stdout
    assert auth_registry.password not in right.output
    item = result["images"][0]
    assert item["status"] == "pushed"
    assert remote_manifest(auth_registry, ref)[0] == item["digest"]
    config_path = os.path.join(str(tmp_path), ".docker", "config.json")
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    with open(config_path, encoding="utf-8") as handle:
        assert auth_registry.host in json.load(handle)["auths"]


def test_registry_stopped_mid_run_gives_bounded_retries_then_one_clear_failure(docker_engine, playbooks,
                                                                               tmp_path):
    reg = start_registry(str(tmp_path / "registry"))
    try:
        first, second = ("%s/%s/ubuntu:k3s-1.27.%d" % (reg.host, unique(), n) for n in (1, 2))
        _small_image(docker_engine.client, first)
        _small_image(docker_engine.client, second)
        run, result = _push(playbooks["mid_run"], tmp_path, {"test_first": [first], "test_second": [second],
                                                             "test_registry_pid": reg.pid}, timeout=300)
    finally:
        reg.stop()
    assert run.rc != 0
    assert run.recap["localhost"]["failed"] == 1
    assert result["images"][0]["status"] == "pushed"  # the first push went through
    assert "Push of %s to %s failed after 3 attempts" % (second, reg.host) in run.stdout
    assert "connection refused" in run.stdout.lower()
