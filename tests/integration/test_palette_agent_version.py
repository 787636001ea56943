"""The palette_agent_version module, run through ansible-playbook against the Palette API test double."""

import json

import pytest
import yaml

from tests.integration.helpers import run_playbook
from tests.testbed.palette_bed import VERSION_PATH, PaletteApi

pytestmark = pytest.mark.integration


def _playbook(tmp_path, endpoint, api_key_expr="{{ palette_api_key }}", extra=None):
    args = {"endpoint": endpoint, "api_key": api_key_expr, "timeout": 10}
    args.update(extra or {})
    play = [{
        "name": "palette_agent_version integration",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [
            {"name": "Ask Palette for its agent version", "edgeforge.artifacts.palette_agent_version": args,
             "register": "palette_agent"},
            {"name": "Save the result", "check_mode": False, "changed_when": False,
             "ansible.builtin.copy": {"content": "{{ palette_agent | to_json }}",
                                      "dest": "{{ playbook_dir }}/result.json", "mode": "0600"}},
        ],
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return str(path)


def _run(playbook, api_key, **kwargs):
    return run_playbook(playbook, {"palette_api_key": api_key}, inventory="localhost,", verbosity=3, **kwargs)


def test_good_key_returns_version_and_tag_even_in_check_mode(tmp_path, palette_api):
    result = _run(_playbook(tmp_path, palette_api.url), palette_api.api_key, check=True)
    assert result.rc == 0, result.output
    assert result.recap["localhost"]["changed"] == 0
    answer = json.loads((tmp_path / "result.json").read_text())
    assert answer["version"] == "4.5.15"
    assert answer["tag"] == "v4.5.15"
    assert answer["url"] == palette_api.url + VERSION_PATH
    assert palette_api.api_key not in result.output
    path, headers = palette_api.requests[-1]
    assert path == VERSION_PATH and headers["Apikey"] == palette_api.api_key


def test_bad_key_is_a_clear_error_without_the_key(tmp_path, palette_api):
    wrong = "edgeforge-test-wrong-key-0a9c77e1"
    result = _run(_playbook(tmp_path, palette_api.url), wrong)
    assert result.rc != 0
    assert "refused the API key (HTTP 401)" in result.output
    assert wrong not in result.output
    assert palette_api.api_key not in result.output


def test_stopped_server_is_unreachable_naming_the_endpoint(tmp_path):
    api = PaletteApi().start()
    url = api.url
    api.stop()
    result = _run(_playbook(tmp_path, url), api.api_key)
    assert result.rc != 0
    assert "cannot reach the Palette endpoint %s%s: connection refused" % (url, VERSION_PATH) in result.output
    assert api.api_key not in result.output


def test_garbage_is_an_unexpected_answer(tmp_path, palette_api):
    with palette_api.answering("garbage"):
        result = _run(_playbook(tmp_path, palette_api.url), palette_api.api_key)
    assert result.rc != 0
    assert "unexpected answer from %s%s: not JSON" % (palette_api.url, VERSION_PATH) in result.output
    assert palette_api.api_key not in result.output


def test_api_key_from_the_environment(tmp_path, palette_api):
    playbook = _playbook(tmp_path, palette_api.url, api_key_expr=None)
    play = yaml.safe_load(open(playbook, encoding="utf-8"))
    del play[0]["tasks"][0]["edgeforge.artifacts.palette_agent_version"]["api_key"]
    with open(playbook, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    result = run_playbook(playbook, {}, inventory="localhost,", env={"PALETTE_API_KEY": palette_api.api_key})
    assert result.rc == 0, result.output
    assert json.loads((tmp_path / "result.json").read_text())["tag"] == "v4.5.15"
