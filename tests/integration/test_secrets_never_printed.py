"""One -vvv run that uses every kind of secret the collection takes - the registration token, a Palette API key, a
registry password and an AWS secret key - against the real services of the test bed. None of them may appear in
the output (module arguments, results and diffs are all printed at -vvv), and the file that holds the token is 0600.
"""

from __future__ import annotations

import os
import secrets
import stat
import uuid

import pytest
import yaml

from tests.integration.helpers import run_playbook
from tests.integration.test_image_push import _small_image

pytestmark = pytest.mark.integration

TOKEN = "edgeforge-token-" + secrets.token_hex(8)


def _play(tmp_path):
    tasks = [
        {"name": "User data with the registration token and a registry password",
         "edgeforge.artifacts.user_data": {
             "dest": str(tmp_path / "user-data"), "edge_host_token": "{{ token }}", "project_name": "Default",
             "registry_credentials": {"domain": "{{ registry_host }}", "username": "{{ registry_user }}",
                                      "password": "{{ registry_password }}"}}},
        {"name": "Agent version with the API key",
         "edgeforge.artifacts.palette_agent_version": {"endpoint": "{{ palette_url }}", "api_key": "{{ api_key }}"}},
        {"name": "Push with the registry password",
         "edgeforge.artifacts.image_push": {"references": ["{{ reference }}"], "username": "{{ registry_user }}",
                                            "password": "{{ registry_password }}"}},
        {"name": "Ask AWS with the secret key",
         "edgeforge.artifacts.ec2_image_import_info": {
             "bucket": "{{ bucket }}", "key": "absent.raw", "region": "{{ region }}",
             "endpoint_url": "{{ aws_endpoint }}", "access_key": "{{ aws_access_key }}",
             "secret_key": "{{ aws_secret_key }}"}},
    ]
    play = [{"name": "Every secret at -vvv", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, "tasks": tasks}]
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return str(path)


def test_no_secret_is_printed_at_vvv_with_diff(docker_engine, auth_registry, palette_api, moto_server, tmp_path):
    bucket = "edgeforge-secrets-%s" % uuid.uuid4().hex[:8]
    moto_server.client("s3").create_bucket(Bucket=bucket)
    reference = "%s/edgeforge-secrets-%s/ubuntu:k3s-1.27.2-v4.9.21-it" % (auth_registry.host, uuid.uuid4().hex[:8])
    _small_image(docker_engine.client, reference)
    variables = {
        "token": TOKEN,
        "api_key": palette_api.api_key,
        "palette_url": palette_api.url,
        "registry_host": auth_registry.host,
        "registry_user": auth_registry.username,
        "registry_password": auth_registry.password,
        "reference": reference,
        "bucket": bucket,
        "region": moto_server.region,
        "aws_endpoint": moto_server.endpoint_url,
        "aws_access_key": moto_server.access_key,
        "aws_secret_key": moto_server.secret_key,
    }
    run = run_playbook(_play(tmp_path), variables, inventory="localhost,", verbosity=3, extra_args=["--diff"])
    assert run.rc == 0, run.output[-4000:]
    assert run.recap["localhost"]["failed"] == 0
    assert "ESTABLISH LOCAL CONNECTION" in run.output  # the run really was at -vvv
    for name in ("token", "api_key", "registry_password", "aws_secret_key"):
        assert variables[name] not in run.output, "%s was printed" % name
    assert stat.S_IMODE(os.stat(tmp_path / "user-data").st_mode) == 0o600
    assert TOKEN in (tmp_path / "user-data").read_text()  # the token was really used
