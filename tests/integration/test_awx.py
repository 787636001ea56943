"""The AWX files (awx/): credential types rendered as AWX renders them, surveys current, and a flow run with only
what a job template hands the playbook (credential injections, survey answers, the test bed's addresses).

AWX renders a credential type's injectors with Jinja2 in an immutable sandbox over the credential's inputs: each
`extra_vars` value becomes an extra variable (marked !unsafe, so Ansible never templates a secret), each `env` value
an environment variable of the job. `inject` below does the same.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.integration.flow_runs import STATS_ENV, build_record, run_flow
from tests.integration.helpers import REPO_ROOT
from tests.integration.registry_checks import remote_manifest, unique

pytestmark = pytest.mark.integration

CREDENTIAL_TYPES = os.path.join(REPO_ROOT, "awx", "credential_types")
TOKEN = "edgeforge-awx-token-5f0c2d9e1b"


def credential_type(name):
    with open(os.path.join(CREDENTIAL_TYPES, name + ".yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def inject(ctype, inputs):
    """(extra vars, environment) as AWX builds them from a credential of type ``ctype`` with ``inputs``."""
    namespace = dict(inputs)
    for field in ctype["inputs"]["fields"]:
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
    sandbox = ImmutableSandboxedEnvironment()
    extra_vars = {key: sandbox.from_string(value).render(**namespace)
                  for key, value in (ctype["injectors"].get("extra_vars") or {}).items()}
    env = {key: sandbox.from_string(value).render(**namespace)
           for key, value in (ctype["injectors"].get("env") or {}).items()}
    return extra_vars, env


def unsafe_vars_file(path, extra_vars):
    """An extra-vars file the way AWX writes credential values: every string !unsafe."""
    lines = ["---"] + ["%s: !unsafe %s" % (key, json.dumps(value)) for key, value in extra_vars.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return str(path)


def role_options():
    options = {}
    for path in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "meta", "argument_specs.yml")):
        with open(path, encoding="utf-8") as handle:
            for entry in yaml.safe_load(handle)["argument_specs"].values():
                options.update(entry.get("options") or {})
    return options


def survey_answers(playbook):
    """The answers of a job launched with the survey's defaults (AWX leaves out blank optional answers)."""
    with open(os.path.join(REPO_ROOT, "awx", "surveys", playbook + ".json"), encoding="utf-8") as handle:
        spec = json.load(handle)["spec"]
    return {item["variable"]: item["default"] for item in spec if item["default"] not in ("", None)}


@pytest.mark.parametrize("name", ["registry_login", "edge_registration_token", "palette_api_key"])
def test_credential_types_inject_exactly_what_the_collection_reads(name):
    ctype = credential_type(name)
    fields = {field["id"]: field for field in ctype["inputs"]["fields"]}
    assert set(ctype["inputs"]["required"]) <= set(fields)
    assert ctype["kind"] == "cloud" and set(ctype["injectors"]) <= {"extra_vars", "env", "file"}
    options = role_options()
    extra_vars, env = inject(ctype, {key: "value-of-" + key for key in fields})
    for variable, value in extra_vars.items():
        assert variable in options, "%s is read by no role" % variable
        source = value.replace("value-of-", "")
        assert source in fields
        # A secret role variable is fed from a secret input (and the reverse).
        assert bool(options[variable].get("no_log")) == bool(fields[source].get("secret")), variable
    with open(os.path.join(REPO_ROOT, "plugins", "modules", "palette_agent_version.py"), encoding="utf-8") as handle:
        module = handle.read()
    for variable in env:
        assert '"%s"' % variable in module, "%s is read by no module" % variable


def test_surveys_are_current_and_ask_only_for_variables_the_flows_read():
    check = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "gen-awx-surveys.py"), "--check"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    options = role_options()
    injected = set()
    for name in ("registry_login", "edge_registration_token"):
        injected.update(credential_type(name)["injectors"]["extra_vars"])
    for path in glob.glob(os.path.join(REPO_ROOT, "awx", "surveys", "*.json")):
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)["spec"]
        for item in spec:
            assert item["variable"] in options or item["variable"] == "build_dir", item
            assert item["variable"] not in injected and not options.get(item["variable"], {}).get("no_log")
            if item["type"] in ("multiplechoice", "multiselect") and item["default"]:
                assert set(str(item["default"]).split("\n")) <= set(item["choices"]), item
    with open(os.path.join(REPO_ROOT, "awx", "surveys", "basic.json"), encoding="utf-8") as handle:
        basic = {item["variable"]: item for item in json.load(handle)["spec"]}
    assert basic["custom_tag"]["required"] and basic["custom_tag"]["default"] == "palette-learn"
    assert basic["os_distribution"]["choices"] == ["ubuntu", "opensuse-leap", "rhel", "sles"]
    assert not basic["http_proxy"]["required"]


def test_palette_credential_reaches_the_agent_version_module(palette_api, tmp_path):
    _extra, env = inject(credential_type("palette_api_key"),
                         {"endpoint": palette_api.url, "api_key": palette_api.api_key})
    play = [{"name": "Which agent version", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Ask Palette", "edgeforge.artifacts.palette_agent_version": {},
                        "register": "agent"},
                       {"name": "Show", "ansible.builtin.debug": {"msg": "TAG={{ agent.tag }}"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play), encoding="utf-8")
    run = run_flow([str(tmp_path / "play.yml")], tmp_path,
                   env=dict(env, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg")))
    assert run.rc == 0, run.output
    assert "TAG=v4.5.15" in run.stdout
    assert palette_api.api_key not in run.output


def test_basic_flow_runs_with_only_the_credentials_and_the_survey(standin_images, auth_registry, tmp_path):
    namespace = unique()
    login = inject(credential_type("registry_login"), {
        "registry": auth_registry.host, "username": auth_registry.username, "password": auth_registry.password})[0]
    token = inject(credential_type("edge_registration_token"), {"edge_host_token": TOKEN})[0]
    answers = dict(standin_images.config_overrides)  # the test bed's mirror of the upstream images
    answers.update(survey_answers("basic"))
    answers.update(custom_tag=unique("awx"), build_dir=str(tmp_path / "build"),
                   image_registry="%s/%s" % (auth_registry.host, namespace))
    credentials = unsafe_vars_file(tmp_path / "credentials.yml", dict(login, **token))
    env = dict(STATS_ENV, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"))

    run = run_flow([os.path.join(REPO_ROOT, "playbooks", "basic.yml"), "-e", "@" + credentials,
                    "-e", "installer_iso_iso=false"], REPO_ROOT, answers, env=env)
    assert run.rc == 0, run.stdout + run.stderr
    assert auth_registry.password not in run.output and TOKEN not in run.output
    tag = "k3s-1.27.2-v4.9.21-%s" % answers["custom_tag"]
    reference = "%s/ubuntu:%s" % (answers["image_registry"], tag)
    digest, _manifest = remote_manifest(auth_registry, reference)
    record = build_record(run.stdout)
    assert record["provider_images"] == [
        {"reference": reference, "k8s_version": "1.27.2", "digest": digest, "host": "localhost"}]
    assert record["manifest"]["path"] == str(tmp_path / "build" / "byoos-pack.yaml")
    user_data = (tmp_path / "build" / "user-data").read_text(encoding="utf-8")
    assert TOKEN in user_data
    assert oct(os.stat(tmp_path / "build" / "user-data").st_mode & 0o777) == "0o600"
