"""CanvOS .arg files: the dotenv reader, the writer, and the build_config round trip."""

import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils import arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig, read_arg_file, write_arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def test_comments_blank_lines_export_and_quotes():
    values = arg_file.parse_arg_text(
        "# a comment\n"
        "\n"
        "export CUSTOM_TAG=demo\n"
        "  IMAGE_REGISTRY = ttl.sh   # trailing comment\n"
        "ISO_NAME='my installer'\n"
        'NO_PROXY="localhost, .corp"  # another\n'
        "EMPTY=\n"
        "HASH=a#b\n"
    )
    assert dict(values) == {"CUSTOM_TAG": "demo", "IMAGE_REGISTRY": "ttl.sh", "ISO_NAME": "my installer",
                            "NO_PROXY": "localhost, .corp", "EMPTY": "", "HASH": "a#b"}
    assert values.lines["ISO_NAME"] == 5


def test_expansion_of_earlier_keys():
    values = arg_file.parse_arg_text(
        "OS_DISTRIBUTION=ubuntu\n"
        "IMAGE_REPO=$OS_DISTRIBUTION\n"
        "A=${OS_DISTRIBUTION}-x\n"
        'B="$image_repo/${A}"\n'
        "C='$OS_DISTRIBUTION'\n"
        'D="\\$OS_DISTRIBUTION"\n'
        "E=$LATER\n"
        "LATER=x\n"
    )
    assert values["IMAGE_REPO"] == "ubuntu"
    assert values["A"] == "ubuntu-x"
    assert values["B"] == "ubuntu/ubuntu-x"  # variable names are case-insensitive like keys
    assert values["C"] == "$OS_DISTRIBUTION"  # single quotes: literal
    assert values["D"] == "$OS_DISTRIBUTION"  # escaped dollar: literal
    assert values["E"] == ""  # only EARLIER keys expand
    assert values.unresolved == ["LATER"]


def test_keys_are_case_insensitive():
    values = arg_file.parse_arg_text("K8s_VERSION=1.27.2\ncustom_tag=x\n")
    assert dict(values) == {"K8S_VERSION": "1.27.2", "CUSTOM_TAG": "x"}


def test_a_later_key_wins():
    assert arg_file.parse_arg_text("A=1\nA=2\n")["A"] == "2"


@pytest.mark.parametrize("text, fragment", [
    ("JUST_A_WORD\n", "line 1"),
    ("1ABC=x\n", "line 1"),
    ("A=1\nB='open\n", "closing single quote"),
    ('A="open\n', "closing double quote"),
    ("A='x' y\n", "nothing but a comment"),
])
def test_malformed_lines_are_refused(text, fragment):
    with pytest.raises(ValidationError) as err:
        arg_file.parse_arg_text(text, source="test.arg")
    assert fragment in str(err.value)
    assert "test.arg" in str(err.value)


def test_read_missing_file():
    with pytest.raises(ValidationError) as err:
        arg_file.read_arg_file("/nonexistent/.arg")
    assert err.value.param == "arg_file" and "/nonexistent/.arg" in str(err.value)


TRICKY = ["", "plain", "with space", "dollar$sign", "single'quote", 'double"quote', "back\\slash", "both'\"$`",
          "http://u:p%40ss@proxy:3128", "a#b", " lead", "${X}", "ünïcode"]


@pytest.mark.parametrize("value", TRICKY)
def test_quote_value_reads_back_unchanged(value):
    text = arg_file.render_arg_text({"X": "expanded", "KEY": value})
    assert arg_file.parse_arg_text(text)["KEY"] == value


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_written_file_is_valid_shell_with_the_same_values(tmp_path):
    """earthly.sh sources .arg: the shell must read what we read."""
    values = dict(("K%d" % i, v) for i, v in enumerate(TRICKY))
    path = tmp_path / ".arg"
    arg_file.write_arg_file(str(path), values, header=["header line"])
    script = "set -e; source %s; " % path + "; ".join('printf "%%s\\0" "$%s"' % key for key in values)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.decode("utf-8")
    assert out.split("\0")[:-1] == list(values.values())
    assert arg_file.read_arg_file(str(path)) == values


def test_raw_values_are_written_verbatim():
    text = arg_file.render_arg_text({"OS_DISTRIBUTION": "ubuntu", "IMAGE_REPO": arg_file.Raw("$OS_DISTRIBUTION")})
    assert "IMAGE_REPO=$OS_DISTRIBUTION\n" in text
    assert arg_file.parse_arg_text(text)["IMAGE_REPO"] == "ubuntu"


def test_newlines_cannot_be_written():
    with pytest.raises(ValidationError):
        arg_file.render_arg_text({"A": "x\ny"})


# ---------------------------------------------------------------------------------------------------------------
# build_config <-> .arg


def _configs(tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    (tmp_path / "spc.tgz").write_bytes(b"x")
    (tmp_path / "versions.json").write_text('{"k3s": ["1.30.1", "1.31.2"]}')
    return [
        {},
        {"custom_tag": "palette-learn", "k8s_version": "1.27.2", "pe_version": "v4.4.12"},
        {"custom_tag": "", "k8s_version": ["1.27.2", "1.28.5"], "image_registry": "127.0.0.1:5000/edge"},
        {"os_distribution": "opensuse-leap", "k8s_distribution": "rke2", "arch": "arm64", "image_repo": "leap",
         "iso_name": "edge_installer-1", "debug": True, "disable_selinux": False, "force_interactive_install": True},
        {"os_version": "24.04", "k8s_distribution": "kubeadm", "k8s_version": "1.33.5", "region": "us-east-1",
         "s3_bucket": "edgeforge-demo-images", "s3_key": "images/palette-learn.raw", "ami_name": "Edge (demo) 1"},
        {"k8s_distribution": "kubeadm-fips", "fips_enabled": True, "base_image": "r.example.com/fips/ubuntu:22.04"},
        {"http_proxy": "http://user:pa$$w'rd@proxy.example.com:3128", "https_proxy": "https://proxy:3129",
         "no_proxy": "localhost,.corp,10.0.0.0/8", "proxy_cert_paths": [str(tmp_path / "ca.pem")],
         "clusterconfig": str(tmp_path / "spc.tgz"), "cis_hardening": True, "update_kernel": True},
        {"k8s_versions_file": str(tmp_path / "versions.json"), "spectro_pub_repo": "127.0.0.1:5000",
         "spectro_luet_repo": "127.0.0.1:5000/luet", "provider_source_image": "127.0.0.1:5000/p/provider:v1",
         "stylus_framework_image": "127.0.0.1:5000/p/stylus:v1",
         "k8s_payload_image": "127.0.0.1:5000/p/k8s:k3s-{k8s_version}"},
        {"os_distribution": "rhel", "os_version": "9.4", "base_image": "quay.io/me/rhel@sha256:" + "a" * 64,
         "k8s_distribution": "canonical", "k8s_version": "1.33.4"},
    ]


def test_write_then_read_gives_the_identical_config(tmp_path):
    for number, options in enumerate(_configs(tmp_path)):
        config = BuildConfig.from_options(options)
        path = str(tmp_path / ("%d.arg" % number))
        text = write_arg_file(path, config)
        assert open(path).read() == text
        again = BuildConfig.from_options(read_arg_file(path))
        assert again.as_dict() == config.as_dict(), options
        assert again.plan() == config.plan(), options


def test_read_then_write_is_stable(tmp_path):
    """Reading a written file and writing it again gives the same text (IMAGE_REPO keeps following OS_DISTRIBUTION)."""
    for number, options in enumerate(_configs(tmp_path)):
        path = str(tmp_path / ("%d.arg" % number))
        text = write_arg_file(path, BuildConfig.from_options(options))
        assert BuildConfig.from_options(read_arg_file(path)).arg_text() == text, options


def test_write_accepts_an_options_dict_and_validates_it(tmp_path):
    write_arg_file(str(tmp_path / "a.arg"), {"custom_tag": "x"})
    assert read_arg_file(str(tmp_path / "a.arg"))["custom_tag"] == "x"
    with pytest.raises(ValidationError):
        write_arg_file(str(tmp_path / "b.arg"), {"custom_tag": "BAD"})
    assert not (tmp_path / "b.arg").exists()


def test_written_file_follows_the_canvos_template_layout(tmp_path):
    text = BuildConfig.from_options({"custom_tag": "palette-learn", "k8s_version": "1.27.2"}).arg_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[:7] == ["CUSTOM_TAG=palette-learn", "IMAGE_REGISTRY=ttl.sh", "OS_DISTRIBUTION=ubuntu",
                         "IMAGE_REPO=$OS_DISTRIBUTION", "OS_VERSION=22.04", "K8S_DISTRIBUTION=k3s",
                         "K8S_VERSION=1.27.2"]
    # Derived values are not pinned (CanvOS derives them itself); empty optional paths are left out.
    assert "BASE_IMAGE=" not in text and "SPECTRO_LUET_REPO=" not in text and "CLUSTERCONFIG=" not in text


def test_file_with_proxy_credentials_is_private(tmp_path):
    path = tmp_path / ".arg"
    write_arg_file(str(path), {"https_proxy": "http://u:secretpw@proxy:3128"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    write_arg_file(str(tmp_path / "plain.arg"), {})
    assert stat.S_IMODE(os.stat(tmp_path / "plain.arg").st_mode) == 0o644


def test_relative_paths_in_an_arg_file_are_relative_to_it(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("pem")
    (tmp_path / ".arg").write_text("PROXY_CERT_PATH=certs/ca.pem\nEDGE_CUSTOM_CONFIG=missing.yaml\n")
    options = read_arg_file(str(tmp_path / ".arg"))
    assert options["proxy_cert_path"] == str(tmp_path / "certs" / "ca.pem")
    # A user-given missing file (not the template default) is refused, naming the parameter.
    with pytest.raises(ValidationError) as err:
        BuildConfig.from_options(options)
    assert err.value.param == "edge_custom_config"


def test_unused_keys_are_reported_not_applied(tmp_path):
    (tmp_path / ".arg").write_text("IS_UKI=true\nplatform=linux/amd64\nCUSTOM_TAG=x\n")
    options = read_arg_file(str(tmp_path / ".arg"))
    assert options.ignored == ["IS_UKI", "PLATFORM"]
    assert dict(options) == {"custom_tag": "x"}


def test_empty_k8s_distribution_in_an_arg_file_is_refused(tmp_path):
    (tmp_path / ".arg").write_text("K8S_DISTRIBUTION=\n")
    with pytest.raises(ValidationError) as err:
        BuildConfig.from_options(read_arg_file(str(tmp_path / ".arg")))
    assert err.value.param == "k8s_distribution"


# ---------------------------------------------------------------------------------------------------------------
# Every key CanvOS reads differently is named (CONFORMANCE 1.2-1.4)


def _read(tmp_path, text):
    (tmp_path / ".arg").write_text(text)
    return read_arg_file(str(tmp_path / ".arg"))


def _difference(options, key):
    found = [message for message in options.differences if message.startswith(key)]
    assert len(found) == 1, options.differences
    return found[0]


def test_the_guides_mixed_case_key_is_read_and_named(tmp_path):
    options = _read(tmp_path, "K8s_VERSION=1.27.2\nk8s_distribution=rke2\nCUSTOM_TAG=x\n")
    assert options["k8s_version"] == "1.27.2" and options["k8s_distribution"] == "rke2"
    message = _difference(options, "K8s_VERSION:")
    assert "CanvOS matches keys case-sensitively, ignores K8s_VERSION" in message
    assert "reads it as K8S_VERSION" in message
    assert "ignores k8s_distribution" in _difference(options, "k8s_distribution:")
    assert len(options.differences) == 2  # CUSTOM_TAG is read the same way by both


def test_lower_case_proxy_keys_are_named_for_what_canvos_does_with_them(tmp_path):
    options = _read(tmp_path, "https_proxy=http://proxy:3128\n")
    assert options["https_proxy"] == "http://proxy:3128"
    assert "never passes it to the build (only HTTPS_PROXY)" in _difference(options, "https_proxy:")


def test_unknown_and_canvos_only_keys_are_named(tmp_path):
    options = _read(tmp_path, "TWO_NODE=false\nIS_UKI=true\nCUSTOM_TAGS=x\nis_maas=true\n")
    assert options.ignored == ["TWO_NODE", "IS_UKI", "CUSTOM_TAGS", "IS_MAAS"]
    assert dict(options) == {}
    assert "CanvOS reads this key; edgeforge.artifacts does not support it" in _difference(options, "TWO_NODE:")
    assert "CanvOS reads this key" in _difference(options, "IS_UKI:")
    assert "neither CanvOS nor edgeforge.artifacts reads this key (a typo?)" in _difference(options, "CUSTOM_TAGS:")
    assert "neither CanvOS" in _difference(options, "is_maas:")  # CanvOS ignores the lower-case spelling


def test_extension_keys_and_version_lists_are_named(tmp_path):
    options = _read(tmp_path, "AMI_NAME=edge-ami\nK8S_VERSION=1.27.2,1.28.5\n")
    assert options["ami_name"] == "edge-ami" and options["k8s_version"] == "1.27.2,1.28.5"
    assert "an edgeforge.artifacts key; CanvOS ignores it" in _difference(options, "AMI_NAME:")
    assert "CanvOS reads one version" in _difference(options, "K8S_VERSION=")


@pytest.mark.parametrize("key, name, ours, canvos", [
    ("UPDATE_KERNEL", "update_kernel", False, "as true in its base image"),
    ("FIPS_ENABLED", "fips_enabled", False, "as false (only the exact word true"),
    ("DISABLE_SELINUX", "disable_selinux", True, "as false (only the exact word true"),
    ("CIS_HARDENING", "cis_hardening", False, "as false"),
    ("DEBUG", "debug", False, "as false"),
    ("FORCE_INTERACTIVE_INSTALL", "force_interactive_install", False, "as false"),
])
def test_an_empty_boolean_takes_our_default_and_says_what_canvos_does(tmp_path, key, name, ours, canvos):
    options = _read(tmp_path, "%s=\n" % key)
    assert name not in options
    message = _difference(options, key + " is empty")
    assert "uses its default (%s)" % ("true" if ours else "false") in message
    assert canvos in message
    assert BuildConfig.from_options(dict(options, k8s_version="1.27.2")).as_dict()[name] is ours


def test_a_non_literal_boolean_is_read_and_named(tmp_path):
    options = _read(tmp_path, "UPDATE_KERNEL=True\nDEBUG=1\nCIS_HARDENING=false\n")
    cfg = BuildConfig.from_options(dict(options, k8s_version="1.27.2")).as_dict()
    assert (cfg["update_kernel"], cfg["debug"], cfg["cis_hardening"]) == (True, True, False)
    assert "CanvOS compares with the exact word" in _difference(options, "UPDATE_KERNEL=True")
    assert "would read it as false" in _difference(options, "DEBUG=1")
    assert len(options.differences) == 2


def test_a_file_we_wrote_reads_back_without_differences(tmp_path):
    config = BuildConfig.from_options({"custom_tag": "x", "k8s_version": "1.27.2", "update_kernel": True})
    config.write_arg(str(tmp_path / ".arg"))
    assert read_arg_file(str(tmp_path / ".arg")).differences == []
