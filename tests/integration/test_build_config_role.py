"""The build_config role through ansible-playbook, as users run it: build_config_plan, .arg files, -vvv leaks."""

import json
import os
import stat

import pytest

from tests.integration.helpers import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration

SEED_ARG = os.path.join(REPO_ROOT, "tests", "unit", "fixtures", "build_config", "build-edge-artifacts.arg")

PLAYBOOK = """---
- name: Plan a build
  hosts: localhost
  gather_facts: false
  roles:
    - role: edgeforge.artifacts.build_config
  tasks:
    - name: Save the plan for the test
      ansible.builtin.copy:
        content: "{{ build_config_plan | to_nice_json }}"
        dest: "{{ plan_out }}"
        mode: "0600"
      when: plan_out is defined
"""


@pytest.fixture()
def play(tmp_path):
    """Run the role with ``extra_vars`` on an isolated localhost inventory; return (result, plan dict or None)."""
    playbook = tmp_path / "plan.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n")
    out = tmp_path / "plan.json"

    def _run(extra_vars, **kwargs):
        if out.exists():
            out.unlink()
        result = run_playbook(str(playbook), dict(extra_vars, plan_out=str(out)), inventory=str(inventory), **kwargs)
        plan = json.loads(out.read_text()) if out.exists() else None
        return result, plan
    return _run


def test_flat_variables_of_the_basic_guide(play):
    result, plan = play({"custom_tag": "palette-learn", "k8s_version": "1.27.2", "pe_version": "v4.4.12"})
    assert result.rc == 0, result.output
    assert plan["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"]
    assert plan["installer_image"] == "palette-installer-image:v4.4.12-palette-learn"
    assert plan["config"]["k8s_versions"] == ["1.27.2"]
    # The BYOOS template survives as text (it is data, not a Jinja expression to render).
    assert "{{ .spectro.system.kubernetes.version }}" in plan["manifest"]["system.uri"]
    assert result.recap["localhost"]["failed"] == 0


def test_seed_arg_file_and_dest_round_trip(play, tmp_path):
    dest = tmp_path / "canvos" / ".arg"
    extra = {"build_config_arg_file": SEED_ARG, "pe_version": "v4.4.12", "build_config_dest": str(dest)}
    result, plan = play(extra)
    assert result.rc == 0, result.output
    assert plan["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"]
    # The guide's K8s_VERSION: read by us, ignored by CanvOS - the play says so (CONFORMANCE 1.2).
    assert "K8s_VERSION: CanvOS matches keys case-sensitively" in result.output
    assert plan["arg_file_written"] == str(dest) and dest.exists()
    assert result.recap["localhost"]["changed"] >= 1

    again, plan_again = play({"build_config_arg_file": str(dest), "build_config_dest": str(dest)})
    assert again.rc == 0, again.output
    assert plan_again["provider_images"] == plan["provider_images"]
    assert plan_again["config"] == plan["config"]
    assert again.recap["localhost"]["changed"] == 1  # only the test's own copy task; the .arg is unchanged


def test_bad_value_fails_the_play_with_a_clear_message(play, tmp_path):
    dest = tmp_path / ".arg"
    result, plan = play({"image_registry": "https://ttl.sh", "build_config_dest": str(dest)})
    assert result.rc != 0
    assert plan is None and not dest.exists()
    assert "image_registry: 'https://ttl.sh' is not valid" in result.output
    assert "no scheme" in result.output


def test_check_mode_writes_nothing(play, tmp_path):
    dest = tmp_path / ".arg"
    result = play({"custom_tag": "palette-learn", "k8s_version": "1.27.2", "build_config_dest": str(dest)},
                  check=True)[0]
    assert result.rc == 0, result.output
    assert not dest.exists()


def test_vvv_never_prints_the_proxy_password(play, tmp_path):
    secret = "Pr0xy-S3cr3t-Value"
    dest = tmp_path / ".arg"
    (tmp_path / "in.arg").write_text("HTTPS_PROXY=http://carol:%s@proxy.example.com:3129\n" % secret)
    result, plan = play({"http_proxy": "http://alice:%s@proxy.example.com:3128" % secret,
                         "build_config_arg_file": str(tmp_path / "in.arg"), "k8s_version": "1.27.2",
                         "build_config_dest": str(dest)}, verbosity=3, extra_args=["--diff"])
    assert result.rc == 0, result.output
    assert secret not in result.output
    assert "alice:********@proxy.example.com:3128" in result.output
    assert plan["config"]["https_proxy"] == "http://carol:********@proxy.example.com:3129"
    assert secret in dest.read_text() and stat.S_IMODE(os.stat(dest).st_mode) == 0o600

    failed = play({"http_proxy": "http://alice:%s@proxy.example.com:3128/not-a-proxy-path" % secret},
                  verbosity=3)[0]
    assert failed.rc != 0
    assert secret not in failed.output
