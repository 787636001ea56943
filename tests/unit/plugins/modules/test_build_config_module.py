"""The build_config module, run in-process through AnsibleModule (its argument spec, results, files and masking)."""

import importlib
import json
import os
import stat
import sys

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.path.join(REPO_ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

FIXTURES = os.path.join(REPO_ROOT, "tests", "unit", "fixtures", "build_config")
CONTRACT_KEYS = {"config", "provider_images", "builds", "base_image", "sources", "installer_image", "iso_path",
                 "manifest"}
ANSIBLE_KEYS = {"changed", "invocation", "warnings", "deprecations", "diff", "failed", "msg"}


@pytest.fixture(scope="module")
def module():
    return importlib.import_module("ansible_collections.edgeforge.artifacts.plugins.modules.build_config")


def messages(result, key):
    """Warning/deprecation texts (ansible-core 2.19 returns structured summaries, older ones plain strings)."""
    return json.dumps(result.get(key, []))


def run_with_output(module, capsys, args, check_mode=False, diff=False):
    """Run the module in-process; return (result dict, raw stdout)."""
    args = dict(args)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def run(module, capsys, args, check_mode=False, diff=False):
    return run_with_output(module, capsys, args, check_mode=check_mode, diff=diff)[0]


def test_seed_arg_file_with_pe_version(module, capsys):
    result = run(module, capsys, {"arg_file": os.path.join(FIXTURES, "build-edge-artifacts.arg"),
                                  "pe_version": "v4.4.12"})
    assert not result.get("failed"), result
    assert result["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"]
    assert result["changed"] is False
    assert CONTRACT_KEYS <= set(result)
    assert set(result) - CONTRACT_KEYS <= ANSIBLE_KEYS  # exactly the contract, nothing else
    assert "ttl.sh" in messages(result, "warnings")


def test_explicit_options_win_over_the_arg_file(module, capsys):
    result = run(module, capsys, {"arg_file": os.path.join(FIXTURES, "build-aws-cloud-images.arg"),
                                  "image_registry": "registry.example.com:5000/edge", "custom_tag": "aws"})
    assert result["provider_images"] == ["registry.example.com:5000/edge/ubuntu:kubeadm-1.33.5-v4.9.21-aws"]
    assert result["config"]["s3_bucket"] == "edgeforge-demo-images"


def test_ignored_arg_keys_and_template_notes_are_warned(module, capsys):
    result = run(module, capsys, {"arg_file": os.path.join(FIXTURES, "canvos-template.arg"),
                                  "k8s_version": "1.27.2"})
    assert "TWO_NODE" in messages(result, "warnings")
    assert "CLUSTERCONFIG=spc.tgz" in messages(result, "warnings")


def test_keys_canvos_reads_differently_are_warned(module, capsys, tmp_path):
    arg = tmp_path / ".arg"
    arg.write_text("K8s_VERSION=1.27.2\nUPDATE_KERNEL=\n")
    result = run(module, capsys, {"arg_file": str(arg)})
    assert not result.get("failed"), result
    assert result["config"]["k8s_versions"] == ["1.27.2"] and result["config"]["update_kernel"] is False
    warnings = messages(result, "warnings")
    assert "K8s_VERSION: CanvOS matches keys case-sensitively" in warnings
    assert "UPDATE_KERNEL is empty: edgeforge.artifacts uses its default (false); CanvOS would read it as true" \
        in warnings


def test_dest_write_idempotence_check_mode_and_diff(module, capsys, tmp_path):
    dest = tmp_path / "canvos" / ".arg"
    args = {"custom_tag": "palette-learn", "k8s_version": "1.27.2", "dest": str(dest)}

    result = run(module, capsys, args, check_mode=True, diff=True)
    assert result["changed"] is True and not dest.exists()
    assert result["arg_file_written"] == str(dest)
    assert "CUSTOM_TAG=palette-learn" in result["diff"]["after"] and result["diff"]["before"] == ""

    result = run(module, capsys, args, diff=True)
    assert result["changed"] is True
    assert dest.read_text() == result["diff"]["after"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644

    result = run(module, capsys, args, diff=True)
    assert result["changed"] is False and "diff" not in result

    result = run(module, capsys, dict(args, custom_tag="other"), check_mode=True, diff=True)
    assert result["changed"] is True
    assert "CUSTOM_TAG=palette-learn" in dest.read_text()  # check mode left it alone

    # The written file reads back to the same plan.
    again = run(module, capsys, {"arg_file": str(dest)})
    assert again["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-palette-learn"]


@pytest.mark.parametrize("bad", [
    {"custom_tag": "Bad_Tag"},
    {"k8s_version": "1.27.3"},
    {"clusterconfig": "/nonexistent/spc.tgz"},
    {"http_proxy": "ftp://proxy:21"},
])
def test_bad_value_fails_before_anything_is_written(module, capsys, tmp_path, bad):
    dest = tmp_path / ".arg"
    result = run(module, capsys, dict(bad, dest=str(dest)))
    assert result["failed"] is True
    param = list(bad)[0]
    assert result["msg"].startswith(param + ":")
    assert not dest.exists()
    assert os.listdir(str(tmp_path)) == []  # no temporary file either


def test_empty_k8s_distribution_from_arg_file_fails(module, capsys, tmp_path):
    (tmp_path / ".arg").write_text("K8S_DISTRIBUTION=\n")
    result = run(module, capsys, {"arg_file": str(tmp_path / ".arg")})
    assert result["failed"] is True and result["msg"].startswith("k8s_distribution:")


def test_proxy_password_never_leaves_the_module(module, capsys, tmp_path):
    secret = "Pr0xyPa55w0rd"
    dest = tmp_path / ".arg"
    result, out = run_with_output(module, capsys, {"http_proxy": "http://alice:%s@proxy.example.com:3128" % secret,
                                                   "k8s_version": "1.27.2", "dest": str(dest)}, diff=True)
    assert secret not in out
    assert result["config"]["http_proxy"] == "http://alice:********@proxy.example.com:3128"
    assert "HTTP_PROXY=http://alice:********@proxy.example.com:3128" in result["diff"]["after"]
    # The file itself holds the real value (the build needs it), readable by the owner only.
    assert secret in dest.read_text()
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600

    # Also in an arg file, and when validation fails.
    (tmp_path / "in.arg").write_text("HTTPS_PROXY=http://bob:%s@proxy:3128/bad-path\n" % secret)
    result, out = run_with_output(module, capsys, {"arg_file": str(tmp_path / "in.arg")})
    assert result["failed"] is True and secret not in out


def test_tightens_the_mode_of_an_existing_file_with_credentials(module, capsys, tmp_path):
    dest = tmp_path / ".arg"
    args = {"https_proxy": "http://u:pw12345@proxy:3128", "dest": str(dest), "k8s_version": "1.27.2"}
    run(module, capsys, args)
    os.chmod(str(dest), 0o644)
    result = run(module, capsys, args)
    assert result["changed"] is True
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    result = run(module, capsys, args)
    assert result["changed"] is False


def test_deprecated_proxy_cert_path(module, capsys, tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    result = run(module, capsys, {"proxy_cert_path": str(tmp_path / "ca.pem"), "k8s_version": "1.27.2"})
    assert result["config"]["proxy_cert_paths"] == [str(tmp_path / "ca.pem")]
    assert "use the list proxy_cert_paths" in messages(result, "deprecations")


def test_choices_are_enforced_by_the_argument_spec(module, capsys):
    result = run(module, capsys, {"arch": "x86_64"})
    assert result["failed"] is True and "arch" in result["msg"] and "amd64" in result["msg"]


# ---------------------------------------------------------------------------------------------------------------
# One source of truth: the module's argument spec, its doc fragment and the role's argument specs agree.


def _fragment_options():
    spec = importlib.util.spec_from_file_location(
        "build_config_fragment", os.path.join(REPO_ROOT, "plugins", "doc_fragments", "build_config.py"))
    fragment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fragment)
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


def test_doc_fragment_matches_the_argument_spec(module):
    fragment = _fragment_options()
    own = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    documented = dict(fragment, **own)
    spec = module.argument_spec()
    assert set(documented) == set(spec)
    for name, entry in spec.items():
        assert documented[name]["type"] == entry["type"], name
        assert documented[name].get("choices") == entry.get("choices"), name
        assert documented[name].get("elements") == entry.get("elements"), name


def test_role_argument_specs_document_every_variable(module):
    with open(os.path.join(REPO_ROOT, "roles", "build_config", "meta", "argument_specs.yml")) as handle:
        role = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    spec = module.argument_spec()
    expected = (set(spec) - {"arg_file", "dest"}) | {"build_config_arg_file", "build_config_dest"}
    assert set(role) == expected
    for name, entry in role.items():
        assert entry["description"], name
        module_name = {"build_config_arg_file": "arg_file", "build_config_dest": "dest"}.get(name, name)
        assert entry["type"] == spec[module_name]["type"], name
    with open(os.path.join(REPO_ROOT, "roles", "build_config", "tasks", "main.yml")) as handle:
        tasks = yaml.safe_load(handle)
    passed = tasks[0]["edgeforge.artifacts.build_config"]
    assert set(passed) == set(spec)  # the role passes every option through


def test_the_schema_is_the_one_source_of_the_options(module):
    """The argument spec is the schema's; the choices are the constants the value rules use."""
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.config import rules, schema

    spec = module.argument_spec()
    assert list(spec) == [option.name for option in schema.OPTIONS]
    assert spec["k8s_distribution"]["choices"] == list(schema.K8S_DISTRIBUTIONS)
    assert spec["os_distribution"]["choices"] == list(schema.OS_DISTRIBUTIONS)
    assert spec["arch"]["choices"] == list(schema.ARCHES)
    assert "one of %s" % ", ".join(schema.ARCHES) == rules.ALLOWED["arch"]
    for option in schema.OPTIONS:
        assert option.description and option.arg_key == option.name.upper(), option.name
    assert schema.SECRET_NAMES == ("http_proxy", "https_proxy")


def test_generated_files_are_current():
    """scripts/gen-config-files.py --check: the doc fragment, role argument specs and role task match the schema."""
    import subprocess

    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "gen-config-files.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_dest_that_is_a_directory_fails_with_the_plan(module, capsys, tmp_path):
    result = run(module, capsys, {"k8s_version": "1.27.2", "dest": str(tmp_path)})
    assert result["failed"] is True and result["param"] == "dest"
    assert result["msg"].startswith("dest: %r is not valid; a regular file path" % str(tmp_path))
    assert result["provider_images"]  # the plan is still returned
