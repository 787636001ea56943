"""The user_data module and role, run through ansible-playbook as users run them."""

import json
import os
import stat

import pytest
import yaml

from tests.integration.helpers import run_playbook

pytestmark = pytest.mark.integration

TOKEN = "edgeforge-test-token-5d0c1a7e9b"
REG_PASSWORD = "edgeforge-test-regpw-93be51"
SRC_TOKEN = "edgeforge-test-srctoken-c4f7a2"


def _playbook(tmp_path, tasks, name="play.yml"):
    play = [{
        "name": "user_data integration",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": tasks,
    }]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return str(path)


def _run(playbook, extra_vars=None, **kwargs):
    return run_playbook(playbook, extra_vars or {}, inventory="localhost,", **kwargs)


def _module_task(args, register="result"):
    """The module call, then its registered result saved as JSON beside the playbook (read by _result)."""
    return [
        {"name": "Render the user data", "edgeforge.artifacts.user_data": args, "register": register},
        {"name": "Save the result", "check_mode": False, "changed_when": False,
         "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % register,
                                  "dest": "{{ playbook_dir }}/result.json", "mode": "0600"}},
    ]


def _result(tmp_path):
    return json.loads((tmp_path / "result.json").read_text())


def test_writes_0600_and_second_run_is_unchanged(tmp_path):
    dest = tmp_path / "build" / "user-data"
    args = {
        "dest": str(dest),
        "edge_host_token": "{{ token }}",
        "project_name": "Default",
        "install": {"poweroff": True},
        "users": [{"name": "kairos", "groups": ["admin"], "passwd": "kairos"}],
        "vmxnet3_interface": "ens192",
    }
    playbook = _playbook(tmp_path, _module_task(args))
    first = _run(playbook, {"token": TOKEN})
    assert first.rc == 0, first.output
    assert first.recap["localhost"]["changed"] == 1
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    text = dest.read_text()
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["stylus"]["site"] == {"edgeHostToken": TOKEN, "projectName": "Default"}
    assert doc["install"] == {"poweroff": True}
    assert [step["name"] for step in doc["stages"]["initramfs"]] == ["Core system setup", "Disable UDP segmentation"]
    result = _result(tmp_path)
    assert result["path"] == str(dest) and result["mode"] == "0600" and result["valid"] is True
    assert "edgeHostToken: ********" in result["preview"]

    second = _run(playbook, {"token": TOKEN})
    assert second.rc == 0, second.output
    assert second.recap["localhost"]["changed"] == 0
    assert dest.read_text() == text

    # A mode drift alone is repaired and reported.
    os.chmod(dest, 0o644)
    third = _run(playbook, {"token": TOKEN})
    assert third.recap["localhost"]["changed"] == 1
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600

    # A new token changes the content.
    fourth = _run(playbook, {"token": TOKEN + "-rotated"})
    assert fourth.recap["localhost"]["changed"] == 1
    assert yaml.safe_load(dest.read_text())["stylus"]["site"]["edgeHostToken"] == TOKEN + "-rotated"


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path):
    dest = tmp_path / "user-data"
    playbook = _playbook(tmp_path, _module_task({"dest": str(dest), "project_name": "Default"}))
    result = _run(playbook, check=True, extra_args=["--diff"])
    assert result.rc == 0, result.output
    assert result.recap["localhost"]["changed"] == 1
    assert "+  site:" in result.stdout and "projectName: Default" in result.stdout
    assert not dest.exists()


def test_vvv_with_diff_never_prints_the_token_or_passwords(tmp_path):
    """-vvv shows module arguments and results; --diff shows the document. Neither may show a secret."""
    src = tmp_path / "site-user-data"
    # A secret that only the user-supplied file holds, and that survives the merge.
    src.write_text("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: palette.example.com\n"
                   "  externalRegistries:\n    registries:\n      - domain: mirror.example.com\n"
                   "        username: robot\n        password: %s\n" % SRC_TOKEN)
    old = tmp_path / "build" / "user-data"
    old.parent.mkdir()
    old.write_text("#cloud-config\nstylus: {site: {edgeHostToken: %s-old}}\n" % TOKEN)
    args = {
        "src": str(src),
        "dest": str(old),
        "edge_host_token": "{{ token }}",
        "project_uid": "5f1c0c2f7a9b",
        "registry_credentials": {"domain": "registry.example.com", "username": "bob",
                                 "password": "{{ registry_password }}"},
        "users": [{"name": "kairos", "passwd": "{{ user_password }}"}],
    }
    playbook = _playbook(tmp_path, _module_task(args))
    result = _run(playbook, {"token": TOKEN, "registry_password": REG_PASSWORD, "user_password": "userpw-77a1"},
                  verbosity=3, extra_args=["--diff"])
    assert result.rc == 0, result.output
    output = result.output
    assert "edgeHostToken: ********" in output and "password: ********" in output  # the diff was shown
    for secret in (TOKEN, REG_PASSWORD, SRC_TOKEN, "userpw-77a1"):
        assert secret not in output
    # The file itself holds the real values.
    doc = yaml.safe_load(old.read_text())
    assert doc["stylus"]["site"]["edgeHostToken"] == TOKEN
    assert doc["stylus"]["site"]["paletteEndpoint"] == "palette.example.com"
    assert doc["stylus"]["externalRegistries"]["registries"][0]["password"] == SRC_TOKEN
    assert doc["stylus"]["registryCredentials"]["password"] == REG_PASSWORD


def test_role_with_vvv_sets_user_data_path_and_never_prints_secrets(tmp_path):
    build_dir = tmp_path / "out"
    play = [{
        "name": "user_data role",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": ["edgeforge.artifacts.user_data"],
        "tasks": [{"name": "Show the path", "ansible.builtin.debug": {"msg": "PATH={{ user_data_path }}"}}],
    }]
    playbook = tmp_path / "role.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    result = _run(str(playbook), {
        "build_dir": str(build_dir),
        "user_data_edge_host_token": TOKEN,
        "user_data_project_name": "Default",
        "user_data_registry_credentials": {"domain": "docker.io", "username": "me", "password": REG_PASSWORD},
        "user_data_install": {"reboot": True},
        "user_data_vmxnet3_interface": "ens192",
    }, verbosity=3, extra_args=["--diff"])
    assert result.rc == 0, result.output
    assert "PATH=%s" % (build_dir / "user-data") in result.stdout
    assert TOKEN not in result.output and REG_PASSWORD not in result.output
    doc = yaml.safe_load((build_dir / "user-data").read_text())
    assert doc["stylus"]["registryCredentials"]["password"] == REG_PASSWORD
    assert doc["install"] == {"reboot": True}
    assert doc["stages"]["initramfs"][0]["commands"] == [
        "ethtool --offload ens192 tx-udp_tnl-segmentation off",
        "ethtool --offload ens192 tx-udp_tnl-csum-segmentation off"]
    assert stat.S_IMODE(os.stat(build_dir / "user-data").st_mode) == 0o600


def test_invalid_document_fails_with_the_field_and_writes_nothing(tmp_path):
    dest = tmp_path / "user-data"
    playbook = _playbook(tmp_path, _module_task({
        "dest": str(dest),
        "edge_host_token": "{{ token }}",
        "install": {"poweroff": True, "reboot": True},
    }))
    result = _run(playbook, {"token": TOKEN}, verbosity=3)
    assert result.rc != 0
    assert "install.poweroff and install.reboot are both true" in result.output
    assert TOKEN not in result.output
    assert not dest.exists()


def test_validate_only_checks_an_existing_file(tmp_path):
    good = tmp_path / "good-user-data"
    good.write_text("#cloud-config\nstylus:\n  site:\n    edgeHostToken: %s\n    projectName: Default\n" % SRC_TOKEN)
    bad = tmp_path / "bad-user-data"
    bad.write_text("#cloud-config\nstylus:\n  site:\n    edgeHostToken: %s\n  registryCredentials:\n"
                   "    domain: docker.io\n    username: me\n    password:\n" % SRC_TOKEN)
    before = sorted(os.listdir(tmp_path))

    ok = _run(_playbook(tmp_path, _module_task({"src": str(good), "validate_only": True}), "good.yml"))
    assert ok.rc == 0, ok.output
    assert ok.recap["localhost"]["changed"] == 0
    assert _result(tmp_path)["path"] == str(good)

    failed = _run(_playbook(tmp_path, _module_task({"src": str(bad), "validate_only": True}), "bad.yml"),
                  verbosity=3)
    assert failed.rc != 0
    assert "stylus.registryCredentials.password" in failed.output
    assert "expected a string, got null" in failed.output
    assert SRC_TOKEN not in ok.output and SRC_TOKEN not in failed.output
    assert sorted(os.listdir(tmp_path)) == sorted(before + ["good.yml", "bad.yml", "result.json"])


def test_missing_header_in_src_is_refused(tmp_path):
    src = tmp_path / "user-data.in"
    src.write_text("stylus:\n  site:\n    projectName: Default\n")
    dest = tmp_path / "user-data"
    result = _run(_playbook(tmp_path, _module_task({"src": str(src), "dest": str(dest)})))
    assert result.rc != 0
    assert "first line must be '#cloud-config'" in result.output
    assert not dest.exists()
