"""A fleet of two build hosts, each with its own Docker engine, runs basic.yml for a four-version matrix.

The hosts are two inventory names for this machine (local connection); `docker_host` gives each its own engine: the
test bed's engine, and a second dockerd started for this test (tests/testbed/services.py: its own data root, exec
root, socket and bridge), as a second machine would have. Each provider image is built once, on one host, and
pushed; the installer image and the ISO are built once, on the first host; the manifest lists all four versions; a
re-run changes nothing. This is the README's fleet example.
"""

from __future__ import annotations

import os
import sys
import time

import docker
import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.manifest import expand_uri
from tests.integration.flow_runs import STATS_ENV, build_record
from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import unique
from tests.testbed.services import start_extra_docker_engine

pytestmark = pytest.mark.integration

VERSIONS = ["1.26.14", "1.27.2", "1.28.5", "1.29.0"]
TOKEN = "edgeforgetesttoken0123456789abcd"


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory):
    engine = start_extra_docker_engine(str(tmp_path_factory.mktemp("second-engine")))
    yield engine
    engine.stop()


def fleet_inventory(path, hosts):
    """The README's fleet inventory, with this machine standing in for each build host."""
    inventory = {"build_hosts": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
               "docker_host": docker_host, "build_dir": build_dir}
        for name, (docker_host, build_dir) in hosts.items()}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return str(path)


def local_tags(client, repository):
    try:
        return sorted(tag for image in client.images.list(name=repository) for tag in image.tags)
    except docker.errors.APIError:
        return []


def test_two_hosts_build_each_image_once_and_one_iso(docker_engine, second_engine, standin_images, registry,
                                                     tmp_path):
    for version in VERSIONS:
        standin_images.ensure_payload("k3s", version)
    namespace = unique()
    custom_tag = unique("fleet")
    builds = {"fleet-a": str(tmp_path / "a" / "build"), "fleet-b": str(tmp_path / "b" / "build")}
    inventory = fleet_inventory(tmp_path / "fleet.yml", {
        "fleet-a": (docker_engine.base_url, builds["fleet-a"]),
        "fleet-b": (second_engine.base_url, builds["fleet-b"])})
    # The second engine's bridge has no NAT (it must leave the first engine's iptables alone), so its builds cannot
    # reach a package mirror: the openSUSE stand-in, whose package steps are recorded rather than downloaded
    # (labelled stand-in), keeps both hosts' base stages offline. The OS does not matter to how a fleet deals out
    # the matrix (the repository stays the guide's image_repo, ubuntu).
    variables = dict(standin_images.config_overrides, image_registry="%s/%s" % (registry.host, namespace),
                     os_distribution="opensuse-leap", os_version="15.6",
                     custom_tag=custom_tag, k8s_version=VERSIONS, user_data_edge_host_token=TOKEN)

    started = time.monotonic()
    first = run_playbook("playbooks/basic.yml", variables, inventory=inventory, env=STATS_ENV)
    took = time.monotonic() - started
    sys.stderr.write("[fleet] first run of basic.yml on two hosts: %.0f s\n" % took)
    assert first.rc == 0, first.stdout + first.stderr
    assert TOKEN not in first.output

    tags = ["k3s-%s-v4.9.21-%s" % (version, custom_tag) for version in VERSIONS]
    assert registry.tags("%s/ubuntu" % namespace) == sorted(tags)
    record = build_record(first.stdout)
    by_host = {}
    for image in record["provider_images"]:
        assert image["digest"].startswith("sha256:"), image
        by_host.setdefault(image["host"], []).append(image["k8s_version"])
    # Host i of n builds versions i, i+n, ...: every version once, on one host.
    assert by_host == {"fleet-a": VERSIONS[0::2], "fleet-b": VERSIONS[1::2]}
    repository = "%s/ubuntu" % variables["image_registry"]
    engines = {"fleet-a": docker_engine.client, "fleet-b": second_engine.client}
    for host, versions in by_host.items():
        assert local_tags(engines[host], repository) == sorted(
            "%s:k3s-%s-v4.9.21-%s" % (repository, version, custom_tag) for version in versions)

    installer = "palette-installer-image:v4.9.21-%s" % custom_tag
    assert record["installer_image"] == {"reference": installer, "host": "fleet-a"}
    assert local_tags(second_engine.client, "palette-installer-image") == []
    iso = os.path.join(builds["fleet-a"], "palette-edge-installer.iso")
    assert record["iso"]["path"] == iso and os.path.isfile(iso) and record["iso"]["host"] == "fleet-a"
    assert not os.path.exists(os.path.join(builds["fleet-b"], "palette-edge-installer.iso"))
    for build in builds.values():
        with open(os.path.join(build, "byoos-pack.yaml"), encoding="utf-8") as handle:
            values = yaml.safe_load(handle)["options"]
        for version, tag in zip(VERSIONS, tags):
            assert expand_uri(values, version) == "%s:%s" % (repository, tag)

    again = run_playbook("playbooks/basic.yml", variables, inventory=inventory)
    assert again.rc == 0, again.stdout + again.stderr
    assert again.recap["fleet-a"]["changed"] == 0 and again.recap["fleet-b"]["changed"] == 0, again.stdout
