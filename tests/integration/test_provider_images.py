"""provider_image against the real engine and the stand-in upstream images mirrored in the local registry."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import unique, write_playbook

pytestmark = pytest.mark.integration

BUILD_TASKS = """
- name: Plan the build
  ansible.builtin.include_role:
    name: edgeforge.artifacts.build_config
- name: Build the images
  edgeforge.artifacts.provider_image:
    config: "{{ build_config_plan.config }}"
    k8s_versions: "{{ test_k8s_versions | default(omit) }}"
    build_dir: "{{ test_build_dir }}"
    installer: "{{ test_installer | default(false) }}"
    parallel: 2
    dockerfile_content: "{{ test_dockerfile_content | default(omit) }}"
  register: built
- name: Show the statuses
  ansible.builtin.debug:
    msg: "statuses={{ built.images | map(attribute='status') | join(',') }}"
- name: Keep the result for the test
  ansible.builtin.copy:
    content: "{{ built | to_json }}"
    dest: "{{ test_build_dir }}/result.json"
    mode: "0644"
"""


@pytest.fixture(scope="module")
def build_playbook(tmp_path_factory):
    return write_playbook(tmp_path_factory.mktemp("provider-play"), "build.yml", BUILD_TASKS)


def _vars(standin_images, build_dir, **extra):
    data = dict(standin_images.config_overrides)
    data.update(image_registry="%s/%s" % (standin_images.registry.host, unique()), custom_tag="it",
                test_build_dir=str(build_dir))
    data.update(extra)
    return data


def _result(build_dir):
    with open(os.path.join(str(build_dir), "result.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _run_in(client, reference, command):
    return client.containers.run(reference, ["sh", "-c", command], remove=True).decode()


def test_builds_provider_and_installer_images_then_reuses_them(docker_engine, standin_images, build_playbook,
                                                               tmp_path):
    standin_images.ensure_payload("k3s", "1.26.14")
    # a customisation of its own, so the base stage is this test's and not one another test left in the engine
    variables = _vars(standin_images, tmp_path, k8s_version=["1.26.14", "1.27.2"], test_installer=True,
                      test_dockerfile_content="RUN echo %s > /etc/edgeforge-test" % unique())
    first = run_playbook(build_playbook, variables)
    assert first.rc == 0, first.stdout + first.stderr
    result = _result(tmp_path)
    assert result["changed"] is True
    refs = [image["reference"] for image in result["images"]]
    assert refs == ["%s/ubuntu:k3s-%s-v4.9.21-it" % (variables["image_registry"], v) for v in ("1.26.14", "1.27.2")]
    assert [image["status"] for image in result["images"]] == ["built", "built"]
    assert result["base_stage"]["status"] == "built"
    assert result["installer_image"]["reference"] == "palette-installer-image:v4.9.21-it"
    client = docker_engine.client
    for image in result["images"]:
        labels = client.images.get(image["reference"]).labels
        assert labels["io.edgeforge.inputs-digest"] == image["inputs_digest"]
        assert labels["io.edgeforge.k8s-version"] == image["k8s_version"]
        assert image["size"] > 0 and image["seconds"] > 0 and os.path.isfile(image["log"])
    out = _run_in(client, refs[1], "ls /system/providers; /usr/bin/kubelet; ls /var/cache/luet 2>&1; "
                                   "ls /etc/kairos/branding; wc -c < /etc/machine-id; "
                                   "ls /etc/ssh/ssh_host_* 2>&1; grep KAIROS_NAME /etc/kairos-release; "
                                   "cat /etc/cos/bootargs.cfg")
    assert "agent-provider-k3s" in out
    assert "1.27.2" in out
    assert "No such file" in out  # /var/cache/luet dropped, no ssh host keys
    assert "stylus_config.yaml" in out
    assert 'KAIROS_NAME="kairos-core-ubuntu-22.04"' in out
    assert "systemd.unified_cgroup_hierarchy=1" in out and "nouveau.modeset=0" in out
    installer = _run_in(client, "palette-installer-image:v4.9.21-it", "ls /opt/spectrocloud/bin")
    assert "palette-agent" in installer
    with open(os.path.join(str(tmp_path), "logs", "provider_images.progress.log"), encoding="utf-8") as handle:
        assert "Step " in handle.read()

    again = run_playbook(build_playbook, variables)
    assert again.rc == 0, again.stdout
    second = _result(tmp_path)
    assert second["changed"] is False
    assert [image["status"] for image in second["images"]] == ["reused", "reused"]
    assert [image["id"] for image in second["images"]] == [image["id"] for image in result["images"]]

    # check mode with a changed input: says what would be built and builds nothing
    changed_input = dict(variables, test_dockerfile_content="RUN touch /etc/changed-%s" % unique())
    checked = run_playbook(build_playbook, changed_input, check=True)
    assert checked.rc == 0, checked.stdout
    assert "statuses=would_build,would_build" in checked.stdout
    assert client.images.get(refs[0]).id == result["images"][0]["id"]


def test_failing_customisation_reports_the_step_and_leaves_no_image(docker_engine, standin_images,
                                                                    build_playbook, tmp_path):
    variables = _vars(standin_images, tmp_path, k8s_version="1.27.2",
                      test_dockerfile_content="RUN echo edgeforge-marker-before && echo edgeforge-bad-step >&2 "
                                              "&& exit 7")
    failed = run_playbook(build_playbook, variables)
    assert failed.rc != 0
    assert "exit code 7" in failed.stdout
    assert "RUN echo edgeforge-marker-before" in failed.stdout  # the failing step
    assert "edgeforge-bad-step" in failed.stdout  # its output
    reference = "%s/ubuntu:k3s-1.27.2-v4.9.21-it" % variables["image_registry"]
    assert docker_engine.client.images.list(name=reference.rsplit(":", 1)[0]) == []
    # Only this run's temporary tags (named in its build logs): other runs on the engine may be building now.
    own = set()
    for name in os.listdir(os.path.join(str(tmp_path), "logs")):
        with open(os.path.join(str(tmp_path), "logs", name), encoding="utf-8") as handle:
            own.update(re.findall(r"^=== build (edgeforge-build-tmp:\S+) ", handle.read(), re.MULTILINE))
    assert own, "the build logs name no temporary tag"
    leftovers = [tag for image in docker_engine.client.images.list() for tag in image.tags if tag in own]
    assert leftovers == []
    assert os.path.isfile(os.path.join(str(tmp_path), "logs", "base-stage-base-stage.log"))


def test_an_empty_share_of_the_matrix_builds_nothing(docker_engine, standin_images, build_playbook, tmp_path):
    # a fleet with more build hosts than versions gives some hosts an empty share
    variables = _vars(standin_images, tmp_path, k8s_version="1.27.2", test_k8s_versions=[])
    done = run_playbook(build_playbook, variables)
    assert done.rc == 0, done.stdout + done.stderr
    result = _result(tmp_path)
    assert result["changed"] is False
    assert result["images"] == [] and result["provider_images"] == []
    assert docker_engine.client.images.list(name="%s/ubuntu" % variables["image_registry"]) == []
