"""The collection as users get it: the built tarball, installed, run from an empty directory by its FQCN.

`ansible-galaxy collection build` then `ansible-galaxy collection install` into a temporary collections path; the
basic flow runs as `ansible-playbook edgeforge.artifacts.basic` in an empty working directory, without inventory or
ansible.cfg, against the test bed. The guide's values must come with the playbook, the outputs land in ./build of
the working directory, and nothing is written inside the installed collection.
"""

from __future__ import annotations

import os
import subprocess
import tarfile

import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.manifest import expand_uri
from tests.integration.flow_runs import STATS_ENV, build_record, run_flow
from tests.integration.helpers import REPO_ROOT, ansible_bin
from tests.integration.registry_checks import unique

pytestmark = pytest.mark.integration

TOKEN = "edgeforgetesttoken0123456789abcd"
DEV_ONLY = ("tests/", "molecule/", "scripts/", "benchmarks/", "changelogs/fragments/", "collections/", ".venv/",
            "build/", "ansible.cfg")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tarball path, collections path, the installed collection's directory)."""
    work = tmp_path_factory.mktemp("installed-collection")
    out = subprocess.run([ansible_bin("ansible-galaxy"), "collection", "build", "--output-path", str(work)],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    tarball = os.path.join(str(work), "edgeforge-artifacts-%s.tar.gz" % _version())
    collections = work / "collections"
    out = subprocess.run([ansible_bin("ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(collections),
                          tarball], cwd=str(work), capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return tarball, collections, collections / "ansible_collections" / "edgeforge" / "artifacts"


def _version():
    with open(os.path.join(REPO_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["version"]


def _tree(directory):
    found = {}
    for folder, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, directory)] = os.stat(path).st_mtime_ns
    return found


def test_tarball_holds_the_license_and_the_flows_but_no_development_files(installed):
    tarball, _collections, _path = installed
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        license_text = archive.extractfile("LICENSE").read().decode("utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in license_text and "Version 3, 29 June 2007" in license_text
    for shipped in ("playbooks/basic.yml", "playbooks/vars/basic.yml", "playbooks/vars/advanced.yml",
                    "playbooks/templates/summary.j2", "meta/runtime.yml", "requirements.txt"):
        assert shipped in names, shipped
    leaked = [name for name in names if name.startswith(DEV_ONLY)]
    assert not leaked, leaked


def test_installed_basic_flow_runs_from_an_empty_directory(installed, standin_images, registry, tmp_path):
    _tarball, collections, collection_dir = installed
    workdir = tmp_path / "empty"
    workdir.mkdir()
    empty_cfg = tmp_path / "ansible.cfg"  # no configuration at all: not the checkout's
    empty_cfg.write_text("", encoding="utf-8")
    env = dict(STATS_ENV, ANSIBLE_CONFIG=str(empty_cfg), ANSIBLE_COLLECTIONS_PATH=str(collections))
    namespace = unique()
    variables = dict(standin_images.config_overrides, image_registry="%s/%s" % (registry.host, namespace),
                     user_data_edge_host_token=TOKEN, custom_tag=unique("inst"))
    before = _tree(collection_dir)

    first = run_flow(["edgeforge.artifacts.basic"], workdir, variables, env=env)
    assert first.rc == 0, first.stdout + first.stderr
    assert first.recap["localhost"]["failed"] == 0
    build = workdir / "build"
    # The guide's values came with the playbook (playbooks/vars/basic.yml): Ubuntu 22.04, k3s 1.27.2.
    tag = "k3s-1.27.2-v4.9.21-%s" % variables["custom_tag"]
    assert registry.tags("%s/ubuntu" % namespace) == [tag]
    with open(build / "byoos-pack.yaml", encoding="utf-8") as handle:
        values = yaml.safe_load(handle)["options"]
    assert (values["system.osName"], values["system.osVersion"]) == ("ubuntu", "22.04")
    assert expand_uri(values, "1.27.2") == "%s/ubuntu:%s" % (variables["image_registry"], tag)
    assert (build / "user-data").is_file() and (build / "palette-edge-installer.iso").is_file()
    assert _tree(collection_dir) == before, "the run wrote inside the installed collection"
    record = build_record(first.stdout)
    assert record["iso"]["path"] == str(build / "palette-edge-installer.iso")
    assert [image["reference"] for image in record["provider_images"]] == [
        "%s/ubuntu:%s" % (variables["image_registry"], tag)]
    assert TOKEN not in first.output

    again = run_flow(["edgeforge.artifacts.basic"], workdir, variables, env=env)
    assert again.rc == 0, again.stdout + again.stderr
    assert again.recap["localhost"]["changed"] == 0, again.stdout
