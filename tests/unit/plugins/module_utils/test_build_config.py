"""Build configuration: defaults, every validation rule, derivations, the seeds' .arg files."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import (
    BuildConfig,
    mask_url,
    read_arg_file,
    with_real_proxies,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.schema import (
    CONFIG_NAMES as OPTIONS,
    DEFAULT_PE_VERSION,
    FIPS_SPECTRO_PUB_REPO,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.k8s_version_table import SOURCE_SHA256
from ansible_collections.edgeforge.artifacts.plugins.module_utils.k8s_versions import K8S_VERSIONS, load_versions

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "fixtures", "build_config")

PUB = "us-docker.pkg.dev/palette-images"


def plan(**options):
    return BuildConfig.from_options(options).plan()


# ---------------------------------------------------------------------------------------------------------------
# The seeds


def test_basic_guide_arg_yields_the_documented_provider_image():
    options = read_arg_file(os.path.join(FIXTURES, "build-edge-artifacts.arg"))
    options["pe_version"] = "v4.4.12"
    result = BuildConfig.from_options(options).plan()
    assert result["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"]
    assert result["builds"][0]["tag"] == "k3s-1.27.2-v4.4.12-palette-learn"
    assert result["installer_image"] == "palette-installer-image:v4.4.12-palette-learn"
    assert result["iso_path"] == "build/palette-edge-installer.iso"
    manifest = result["manifest"]
    assert manifest["system.registry"] == "ttl.sh"
    assert manifest["system.repo"] == "ubuntu"
    assert manifest["system.k8sDistribution"] == "k3s"
    assert manifest["system.osName"] == "ubuntu"
    assert manifest["system.peVersion"] == "v4.4.12"
    assert manifest["system.customTag"] == "palette-learn"
    assert manifest["system.osVersion"] == "22.04"
    assert manifest["system.uri"].endswith("-{{ .spectro.pack.edge-native-byoi.options.system.customTag }}")


def test_basic_guide_arg_maps_the_mixed_case_key_and_the_empty_deprecated_path():
    options = read_arg_file(os.path.join(FIXTURES, "build-edge-artifacts.arg"))
    assert options["k8s_version"] == "1.27.2"  # K8s_VERSION in the guide
    assert options["proxy_cert_path"] == ""
    assert options.ignored == []
    config = BuildConfig.from_options(options)
    assert config.deprecations == []  # an empty PROXY_CERT_PATH is not a use of the deprecated option
    assert config.as_dict()["proxy_cert_paths"] == []


def test_aws_guide_arg():
    options = read_arg_file(os.path.join(FIXTURES, "build-aws-cloud-images.arg"))
    result = BuildConfig.from_options(options).plan()
    assert result["provider_images"] == ["docker.io/edgeforgedemo/ubuntu:kubeadm-1.33.5-%s-palette-learn"
                                         % DEFAULT_PE_VERSION]
    config = result["config"]
    assert (config["region"], config["s3_bucket"], config["s3_key"]) == (
        "us-east-1", "edgeforge-demo-images", "palette-learn-ubuntu-24.04.raw")
    assert result["base_image"] == "%s/edge/kairos-ubuntu:24.04-core-amd64-generic-v4.0.4" % PUB
    assert result["sources"]["provider_source_image"] == "%s/edge/kairos-io/provider-kubeadm:v4.9.8" % PUB
    assert result["sources"]["k8s_payload_image"] == "%s/edge/luet-repo-amd:kubeadm-k8s-{k8s_version}" % PUB
    assert result["builds"][0]["k8s_payload_image"] == "%s/edge/luet-repo-amd:kubeadm-k8s-1.33.5" % PUB


def test_canvos_template_arg_expands_image_repo_and_skips_absent_if_exists_files(tmp_path):
    options = read_arg_file(os.path.join(FIXTURES, "canvos-template.arg"))
    assert "image_repo" not in options  # IMAGE_REPO=$OS_DISTRIBUTION is the default: it follows os_distribution
    assert "clusterconfig" not in options and "edge_custom_config" not in options
    assert any("CLUSTERCONFIG=spc.tgz" in note for note in options.notes)
    assert options.ignored == ["TWO_NODE"]
    result = BuildConfig.from_options(options).plan()
    assert result["config"]["image_repo"] == "ubuntu"
    assert result["config"]["clusterconfig"] == ""
    assert len(result["provider_images"]) == len(K8S_VERSIONS["k3s"])


def test_canvos_template_if_exists_default_is_used_when_the_file_is_there(tmp_path):
    text = open(os.path.join(FIXTURES, "canvos-template.arg")).read()
    (tmp_path / ".arg").write_text(text)
    (tmp_path / "spc.tgz").write_bytes(b"\x1f\x8b")
    options = read_arg_file(str(tmp_path / ".arg"))
    assert options["clusterconfig"] == str(tmp_path / "spc.tgz")
    assert BuildConfig.from_options(options).as_dict()["clusterconfig"] == str(tmp_path / "spc.tgz")


# ---------------------------------------------------------------------------------------------------------------
# Defaults and derivations


def test_defaults_follow_the_canvos_template_and_pinned_release():
    config = BuildConfig.from_options({})
    result = config.plan()
    cfg = result["config"]
    assert set(cfg) == set(OPTIONS) | {"k8s_versions"}
    assert cfg["custom_tag"] == "demo"
    assert cfg["image_registry"] == "ttl.sh"
    assert cfg["os_distribution"] == cfg["image_repo"] == "ubuntu"
    assert cfg["os_version"] == "22.04"
    assert cfg["k8s_distribution"] == "k3s"
    assert cfg["arch"] == "amd64"
    assert cfg["pe_version"] == "v4.9.21"
    assert cfg["kairos_version"] == "v4.0.4"
    assert cfg["spectro_pub_repo"] == PUB
    assert cfg["spectro_luet_repo"] == PUB + "/edge"
    assert cfg["disable_selinux"] is True and cfg["fips_enabled"] is False
    assert cfg["k8s_version"] == []
    assert cfg["k8s_versions"] == K8S_VERSIONS["k3s"]
    assert result["base_image"] == PUB + "/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4"
    assert result["sources"] == {
        "provider_source_image": PUB + "/edge/kairos-io/provider-k3s:v4.9.4",
        "stylus_framework_image": PUB + "/edge/stylus-framework-linux-amd64:v4.9.21",
        "k8s_payload_image": PUB + "/edge/luet-repo-amd:k3s-k8s-{k8s_version}-k3s1",
    }
    assert result["installer_image"] == "palette-installer-image:v4.9.21-demo"
    assert result["provider_images"][0] == "ttl.sh/ubuntu:k3s-%s-v4.9.21-demo" % K8S_VERSIONS["k3s"][0]
    assert any("build matrix" in w for w in config.warnings)
    assert any("ttl.sh" in w for w in config.warnings)


@pytest.mark.parametrize("dist, provider, version, suffix", [
    ("k3s", "k3s", "v4.9.4", "-k3s1"),
    ("kubeadm", "kubeadm", "v4.9.8", ""),
    ("rke2", "rke2", "v4.9.3", "-rke2r1"),
    ("nodeadm", "nodeadm", "v4.9.3", ""),
    ("canonical", "canonical", "v4.9.3", ""),
])
def test_sources_per_distribution(dist, provider, version, suffix):
    k8s = K8S_VERSIONS[dist][-1]
    result = plan(k8s_distribution=dist, k8s_version=k8s)
    assert result["sources"]["provider_source_image"] == "%s/edge/kairos-io/provider-%s:%s" % (PUB, provider, version)
    assert result["builds"][0]["k8s_payload_image"] == "%s/edge/luet-repo-amd:%s-k8s-%s%s" % (PUB, dist, k8s, suffix)
    assert result["provider_images"] == ["ttl.sh/ubuntu:%s-%s-v4.9.21-demo" % (dist, k8s)]


# CONFORMANCE 4.8: the luet package image of k8s/<dist>@<version> for every distribution and arch.
LUET_TAGS = [
    ("k3s", "amd64", "1.33.5", "luet-repo-amd:k3s-k8s-1.33.5-k3s1"),
    ("k3s", "arm64", "1.33.5", "luet-repo-arm:k3s-k8s-1.33.5-k3s1"),
    ("rke2", "amd64", "1.33.5", "luet-repo-amd:rke2-k8s-1.33.5-rke2r1"),
    ("rke2", "arm64", "1.33.5", "luet-repo-arm:rke2-k8s-1.33.5-rke2r1"),
    ("kubeadm", "amd64", "1.33.5", "luet-repo-amd:kubeadm-k8s-1.33.5"),
    ("kubeadm", "arm64", "1.33.5", "luet-repo-arm:kubeadm-k8s-1.33.5"),
    ("kubeadm-fips", "amd64", "1.33.5", "luet-repo-amd:kubeadm-fips-k8s-1.33.5"),
    ("kubeadm-fips", "arm64", "1.33.5", "luet-repo-arm:kubeadm-fips-k8s-1.33.5"),
    ("nodeadm", "amd64", "1.32.0", "luet-repo-amd:nodeadm-k8s-1.32.0"),
    ("nodeadm", "arm64", "1.32.0", "luet-repo-arm:nodeadm-k8s-1.32.0"),
    ("canonical", "amd64", "1.33.4", "luet-repo-amd:canonical-k8s-1.33.4"),
    ("canonical", "arm64", "1.33.4", "luet-repo-arm:canonical-k8s-1.33.4"),
]


@pytest.mark.parametrize("dist, arch, version, image", LUET_TAGS,
                         ids=["%s-%s" % (row[0], row[1]) for row in LUET_TAGS])
def test_payload_image_is_the_luet_package_image(dist, arch, version, image):
    result = plan(k8s_distribution=dist, arch=arch, k8s_version=version)
    assert result["builds"][0]["k8s_payload_image"] == "%s/edge/%s" % (PUB, image)  # FIPS too: palette-images


def test_fips_enabled_keeps_the_luet_repo_and_moves_the_rest():
    result = plan(fips_enabled=True, base_image="registry.example.com/fips/ubuntu:22.04-fips", k8s_version="1.27.2")
    fips = FIPS_SPECTRO_PUB_REPO
    assert result["config"]["spectro_luet_repo"] == PUB + "/edge"
    assert result["builds"][0]["k8s_payload_image"] == PUB + "/edge/luet-repo-amd:k3s-k8s-1.27.2-k3s1"
    assert result["sources"]["provider_source_image"] == fips + "/edge/kairos-io/provider-k3s:v4.9.4"
    assert result["sources"]["stylus_framework_image"] == fips + "/edge/stylus-framework-linux-amd64:v4.9.21"


def test_a_mirror_moves_the_luet_repo_with_it_fips_or_not():
    """Better than CanvOS (whose luet repo is a literal): an air-gapped mirror serves the payloads too."""
    for extra in ({}, {"fips_enabled": True, "base_image": "127.0.0.1:5000/fips/ubuntu:22.04"}):
        result = plan(spectro_pub_repo="127.0.0.1:5000/mirror", k8s_version="1.27.2", **extra)
        assert result["builds"][0]["k8s_payload_image"] == \
            "127.0.0.1:5000/mirror/edge/luet-repo-amd:k3s-k8s-1.27.2-k3s1"


def test_kubeadm_fips_without_fips_enabled_stays_on_palette_images():
    """CONFORMANCE 2.1: only FIPS_ENABLED=true switches SPECTRO_PUB_REPO; kubeadm-fips uses the kubeadm provider."""
    config = BuildConfig.from_options({"k8s_distribution": "kubeadm-fips", "k8s_version": "1.33.5"})
    result = config.plan()
    assert result["config"]["spectro_pub_repo"] == PUB
    assert result["config"]["spectro_luet_repo"] == PUB + "/edge"
    assert result["sources"]["provider_source_image"] == PUB + "/edge/kairos-io/provider-kubeadm:v4.9.8"
    assert result["builds"][0]["k8s_payload_image"] == PUB + "/edge/luet-repo-amd:kubeadm-fips-k8s-1.33.5"
    assert result["base_image"].startswith(PUB + "/edge/kairos-ubuntu:22.04-")
    assert result["provider_images"] == ["ttl.sh/ubuntu:kubeadm-fips-1.33.5-v4.9.21-demo"]
    assert any("kubeadm-fips" in w and "fips_enabled" in w for w in config.warnings)


def test_kubeadm_fips_with_fips_enabled_uses_the_fips_repository():
    result = plan(k8s_distribution="kubeadm-fips", k8s_version="1.33.5", fips_enabled=True,
                  base_image="registry.example.com/fips/ubuntu:22.04-fips")
    fips = FIPS_SPECTRO_PUB_REPO
    assert result["config"]["spectro_pub_repo"] == fips
    assert result["config"]["spectro_luet_repo"] == PUB + "/edge"  # CanvOS never FIPS-switches the luet repo
    assert result["sources"]["provider_source_image"] == fips + "/edge/kairos-io/provider-kubeadm:v4.9.8"
    assert result["builds"][0]["k8s_payload_image"] == PUB + "/edge/luet-repo-amd:kubeadm-fips-k8s-1.33.5"


def test_jetson_base_image_is_refused():
    """CONFORMANCE 2.5: CanvOS adds /etc/kairos/mount.yaml for Jetson bases; the collection does not build it."""
    base = "registry.example.com/edge/kairos-ubuntu:22.04-core-arm64-nvidia-jetson-agx-orin-v4.0.4"
    with pytest.raises(ValidationError) as err:
        plan(base_image=base, arch="arm64", k8s_version="1.27.2")
    assert err.value.param == "base_image" and "Jetson" in str(err.value)


def test_template_with_k8s_1_33_5_names_the_documented_provider_image():
    """CONFORMANCE 1.8: the template with K8S_VERSION=1.33.5 builds ttl.sh/ubuntu:k3s-1.33.5-v4.9.21-demo."""
    options = read_arg_file(os.path.join(FIXTURES, "canvos-template.arg"))
    options["k8s_version"] = "1.33.5"
    result = BuildConfig.from_options(options).plan()
    assert result["provider_images"] == ["ttl.sh/ubuntu:k3s-1.33.5-v4.9.21-demo"]
    assert result["sources"]["stylus_framework_image"] == PUB + "/edge/stylus-framework-linux-amd64:v4.9.21"
    assert result["installer_image"] == "palette-installer-image:v4.9.21-demo"


@pytest.mark.parametrize("name", ["arch", "image_registry", "os_distribution", "pe_version", "iso_name",
                                  "image_repo", "k8s_distribution"])
def test_empty_required_values_are_refused(name):
    """CONFORMANCE B6 / 1.3: CanvOS builds on with an empty value and fails obscurely later."""
    with pytest.raises(ValidationError) as err:
        BuildConfig.from_options({name: "", "k8s_version": "1.27.2"})
    assert err.value.param == name and str(err.value).startswith("%s: '' is not valid" % name)


def test_fips_enabled_switches_only_the_default_repository():
    base = "registry.example.com/fips/ubuntu:22.04-fips"
    assert plan(fips_enabled=True, base_image=base, k8s_version="1.27.2")["config"]["spectro_pub_repo"] \
        == FIPS_SPECTRO_PUB_REPO
    mirrored = plan(fips_enabled="true", base_image=base, spectro_pub_repo="127.0.0.1:5000/mirror",
                    k8s_version="1.27.2")
    assert mirrored["config"]["spectro_pub_repo"] == "127.0.0.1:5000/mirror"
    assert mirrored["base_image"] == base


def test_spectro_pub_repo_repoints_every_upstream_image():
    result = plan(spectro_pub_repo="127.0.0.1:5000", arch="arm64", k8s_version="1.27.2", pe_version="v4.4.12")
    assert result["base_image"] == "127.0.0.1:5000/edge/kairos-ubuntu:22.04-core-arm64-generic-v4.0.4"
    assert result["sources"] == {
        "provider_source_image": "127.0.0.1:5000/edge/kairos-io/provider-k3s:v4.9.4",
        "stylus_framework_image": "127.0.0.1:5000/edge/stylus-framework-linux-arm64:v4.4.12",
        "k8s_payload_image": "127.0.0.1:5000/edge/luet-repo-arm:k3s-k8s-{k8s_version}-k3s1",
    }


def test_explicit_sources_win():
    result = plan(provider_source_image="mirror.example.com/p/provider-k3s:v1.0.0",
                  stylus_framework_image="mirror.example.com/p/stylus:v4.4.12",
                  k8s_payload_image="mirror.example.com/p/k8s:k3s-{k8s_version}",
                  spectro_luet_repo="mirror.example.com/luet", k8s_version="1.27.2")
    assert result["sources"]["provider_source_image"] == "mirror.example.com/p/provider-k3s:v1.0.0"
    assert result["builds"][0]["k8s_payload_image"] == "mirror.example.com/p/k8s:k3s-1.27.2"


def test_opensuse_defaults():
    result = plan(os_distribution="opensuse-leap", k8s_version="1.27.2")
    assert result["config"]["os_version"] == "15.6"
    assert result["config"]["image_repo"] == "opensuse-leap"
    assert result["base_image"] == PUB + "/edge/kairos-opensuse:leap-15.6-core-amd64-generic-v4.0.4"
    assert result["provider_images"] == ["ttl.sh/opensuse-leap:k3s-1.27.2-v4.9.21-demo"]


@pytest.mark.parametrize("given, normal, deprecated", [
    ("20", "20.04", True), ("22", "22.04", False), ("20.04", "20.04", False), ("24.04", "24.04", False)])
def test_ubuntu_os_version_normalisation(given, normal, deprecated):
    config = BuildConfig.from_options({"os_version": given, "k8s_version": "1.27.2"})
    assert config.as_dict()["os_version"] == normal
    assert config.plan()["base_image"] == PUB + "/edge/kairos-ubuntu:%s-core-amd64-generic-v4.0.4" % normal
    assert any("deprecated" in w for w in config.warnings) is deprecated


def test_rhel_with_base_image():
    result = plan(os_distribution="rhel", os_version="9.4", base_image="quay.io/me/kairos-rhel:9.4-core",
                  k8s_distribution="kubeadm", k8s_version="1.32.3")
    assert result["base_image"] == "quay.io/me/kairos-rhel:9.4-core"
    assert result["manifest"]["system.osName"] == "rhel"
    assert result["manifest"]["system.osVersion"] == "9.4"


def test_k8s_version_forms():
    assert plan(k8s_version="v1.27.2")["config"]["k8s_versions"] == ["1.27.2"]
    assert plan(k8s_version="1.27.2, 1.28.5")["config"]["k8s_versions"] == ["1.27.2", "1.28.5"]
    assert plan(k8s_version=["1.28.5", "1.27.2", "1.28.5"])["config"]["k8s_versions"] == ["1.28.5", "1.27.2"]
    assert plan(k8s_version="")["config"]["k8s_versions"] == K8S_VERSIONS["k3s"]
    assert plan(k8s_version=[])["config"]["k8s_versions"] == K8S_VERSIONS["k3s"]
    result = plan(k8s_version=["1.27.2", "1.28.5"], custom_tag="x1")
    assert result["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-x1", "ttl.sh/ubuntu:k3s-1.28.5-v4.9.21-x1"]
    assert [b["k8s_version"] for b in result["builds"]] == ["1.27.2", "1.28.5"]


def test_empty_custom_tag_drops_the_suffix_everywhere_and_warns():
    config = BuildConfig.from_options({"custom_tag": "", "k8s_version": "1.27.2", "pe_version": "v4.4.12"})
    result = config.plan()
    assert result["provider_images"] == ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12"]
    assert result["installer_image"] == "palette-installer-image:v4.4.12"
    assert "customTag" not in result["manifest"]["system.uri"]
    assert result["manifest"]["system.customTag"] == ""
    assert any("custom_tag is empty" in w and "system.uri" in w for w in config.warnings)


def test_pe_version_without_v_prefix_gets_one():
    assert plan(pe_version="4.4.12", k8s_version="1.27.2")["provider_images"] == [
        "ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-demo"]
    assert plan(pe_version="v4.10.0-rc.2", k8s_version="1.27.2")["config"]["pe_version"] == "v4.10.0-rc.2"


def test_boolean_strings_from_arg_files():
    cfg = plan(update_kernel="TRUE", debug="false", disable_selinux="no", cis_hardening="yes",
               k8s_version="1.27.2")["config"]
    assert (cfg["update_kernel"], cfg["debug"], cfg["disable_selinux"], cfg["cis_hardening"]) == (
        True, False, False, True)


def test_files_are_resolved_against_base_dir(tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    (tmp_path / "spc.tgz").write_bytes(b"x")
    config = BuildConfig.from_options({"proxy_cert_paths": ["ca.pem"], "clusterconfig": "spc.tgz",
                                       "k8s_version": "1.27.2"}, base_dir=str(tmp_path))
    cfg = config.as_dict()
    assert cfg["proxy_cert_paths"] == [str(tmp_path / "ca.pem")]
    assert cfg["clusterconfig"] == str(tmp_path / "spc.tgz")


def test_deprecated_proxy_cert_path_is_merged(tmp_path):
    (tmp_path / "a.pem").write_text("a")
    (tmp_path / "b.pem").write_text("b")
    config = BuildConfig.from_options({"proxy_cert_path": str(tmp_path / "b.pem"),
                                       "proxy_cert_paths": [str(tmp_path / "a.pem")], "k8s_version": "1.27.2"})
    assert config.as_dict()["proxy_cert_paths"] == [str(tmp_path / "a.pem"), str(tmp_path / "b.pem")]
    assert "proxy_cert_path" not in config.as_dict()
    assert len(config.deprecations) == 1 and "proxy_cert_paths" in config.deprecations[0]["msg"]


def test_proxy_credentials_are_masked_on_request_only():
    config = BuildConfig.from_options({"http_proxy": "http://alice:Sup3r-S3cret@proxy.example.com:3128",
                                       "https_proxy": "https://proxy.example.com:3129", "no_proxy": "localhost, .corp",
                                       "k8s_version": "1.27.2"})
    assert config.secrets() == ["Sup3r-S3cret"]
    masked = config.plan(mask=True)
    assert masked["config"]["http_proxy"] == "http://alice:********@proxy.example.com:3128"
    assert "Sup3r-S3cret" not in json.dumps(masked)
    assert "Sup3r-S3cret" not in config.arg_text(mask=True)
    assert config.as_dict()["http_proxy"] == "http://alice:Sup3r-S3cret@proxy.example.com:3128"
    assert config.as_dict()["no_proxy"] == "localhost,.corp"
    assert config.arg_file_mode == 0o600
    assert BuildConfig.from_options({}).arg_file_mode == 0o644


def test_mask_url_leaves_urls_without_password():
    assert mask_url("http://proxy:3128") == "http://proxy:3128"
    assert mask_url("http://user@proxy:3128") == "http://user@proxy:3128"
    assert mask_url("") == ""


def test_with_real_proxies_puts_the_real_urls_back_into_a_masked_plan():
    masked = BuildConfig.from_options({"http_proxy": "http://u:s3cret@proxy:3128",
                                       "https_proxy": "http://proxy:3129"}).as_dict(mask=True)
    assert "s3cret" not in masked["http_proxy"]
    restored = with_real_proxies(masked, {"http_proxy": "http://u:s3cret@proxy:3128", "https_proxy": None})
    assert restored["http_proxy"] == "http://u:s3cret@proxy:3128"
    assert restored["https_proxy"] == "http://proxy:3129"  # no password: the plan's own URL is the real one
    assert masked["http_proxy"] != restored["http_proxy"]  # the caller's plan is not modified


def test_with_real_proxies_refuses_a_masked_password_it_cannot_restore():
    masked = BuildConfig.from_options({"https_proxy": "http://u:s3cret@proxy:3128"}).as_dict(mask=True)
    with pytest.raises(ValidationError) as err:
        with_real_proxies(masked, {})
    assert err.value.param == "https_proxy"
    assert "pass https_proxy" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(ValidationError):
        with_real_proxies(masked, {"https_proxy": "ftp://proxy"})


def test_as_dict_is_accepted_back_unchanged(tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    for options in ({}, {"custom_tag": "", "k8s_version": ["1.27.2", "1.28.5"]},
                    {"k8s_distribution": "kubeadm-fips", "k8s_version": "1.33.5"},
                    {"os_distribution": "sles", "os_version": "15.6", "base_image": "r.example.com/sles:15.6",
                     "proxy_cert_paths": [str(tmp_path / "ca.pem")], "http_proxy": "http://u:p@h:1"}):
        first = BuildConfig.from_options(options)
        second = BuildConfig.from_options(first.as_dict())
        assert second.as_dict() == first.as_dict()
        assert second.plan() == first.plan()


def test_k8s_versions_file_replaces_the_table(tmp_path):
    table = tmp_path / "k8s_version.json"
    table.write_text(json.dumps({"k3s": ["1.30.1", "1.31.2"], "rke2": []}))
    result = plan(k8s_versions_file=str(table))
    assert result["config"]["k8s_versions"] == ["1.30.1", "1.31.2"]
    assert result["config"]["k8s_versions_file"] == str(table)
    with pytest.raises(ValidationError) as err:
        plan(k8s_versions_file=str(table), k8s_version="1.27.2")
    assert err.value.param == "k8s_version" and str(table) in str(err.value)
    with pytest.raises(ValidationError) as err:
        plan(k8s_versions_file=str(table), k8s_distribution="rke2")
    assert err.value.param == "k8s_distribution"


@pytest.mark.parametrize("content, param", [
    ("{not json", "k8s_versions_file"),
    ("[]", "k8s_versions_file"),
    ('{"k3s": "1.27.2"}', "k8s_versions_file[k3s]"),
    ('{"k3s": ["v1.27.2"]}', "k8s_versions_file[k3s]"),
    ('{"k3s": ["1.27.2", "1.27.2"]}', "k8s_versions_file[k3s]"),
])
def test_bad_versions_file(tmp_path, content, param):
    table = tmp_path / "versions.json"
    table.write_text(content)
    with pytest.raises(ValidationError) as err:
        plan(k8s_versions_file=str(table))
    assert err.value.param == param


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
SHIPPED_JSON = os.path.join(REPO_ROOT, "plugins", "module_utils", "config", "k8s_version.json")
CANVOS_SHA256 = "926cbeaaba86e8dbc183268ee03fde64a9a7ad23db13bad12c0966b06d720fd2"  # CanvOS v4.10.0


def test_shipped_versions_table_is_canvos_k8s_version_json():
    with open(SHIPPED_JSON, "rb") as handle:
        raw = handle.read()
    assert hashlib.sha256(raw).hexdigest() == CANVOS_SHA256 == SOURCE_SHA256
    shipped = json.loads(raw)
    assert K8S_VERSIONS == shipped and list(K8S_VERSIONS) == list(shipped)  # same data, same order
    assert load_versions() == shipped
    counts = {dist: len(versions) for dist, versions in K8S_VERSIONS.items()}
    assert counts == {"k3s": 58, "kubeadm": 62, "rke2": 68, "kubeadm-fips": 60, "nodeadm": 4, "canonical": 11}
    assert K8S_VERSIONS["nodeadm"] == ["1.29.0", "1.30.0", "1.31.0", "1.32.0"]
    for dist, versions in K8S_VERSIONS.items():
        keys = [tuple(int(p) for p in v.split(".")) for v in versions]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), dist


def test_the_generated_table_is_current():
    """scripts/gen-k8s-versions.py --check: the Python module equals what the generator makes of the JSON."""
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "gen-k8s-versions.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_k3s_1_35_2_is_offered_and_1_35_0_is_not():
    """The versions CanvOS v4.10.0 builds, not an older guess of them (issue: 1.35.2 refused, 1.35.0 offered)."""
    assert plan(k8s_version="1.35.2")["provider_images"] == ["ttl.sh/ubuntu:k3s-1.35.2-v4.9.21-demo"]
    with pytest.raises(ValidationError) as err:
        plan(k8s_version="1.35.0")
    assert err.value.param == "k8s_version"


# ---------------------------------------------------------------------------------------------------------------
# Every validation rule: one bad value -> one ValidationError naming the parameter, the value and what is allowed.

BAD_INPUTS = [
    # (id, options, param, value shown, allowed text)
    ("custom_tag uppercase", {"custom_tag": "Demo"}, "custom_tag", "Demo", "lowercase letters, digits and '-'"),
    ("custom_tag space", {"custom_tag": "my tag"}, "custom_tag", "my tag", "lowercase letters"),
    ("custom_tag underscore", {"custom_tag": "my_tag"}, "custom_tag", "my_tag", "lowercase letters"),
    ("custom_tag leading dash", {"custom_tag": "-demo"}, "custom_tag", "-demo", "not at either end"),
    ("custom_tag too long", {"custom_tag": "a" * 120, "k8s_version": "1.27.2"}, "custom_tag", "a" * 120,
     "128 characters"),
    ("registry scheme", {"image_registry": "https://ttl.sh"}, "image_registry", "https://ttl.sh", "no scheme"),
    ("registry underscore", {"image_registry": "my_registry.io"}, "image_registry", "my_registry.io",
     "underscores are not allowed"),
    ("registry uppercase", {"image_registry": "Docker.io/me"}, "image_registry", "Docker.io/me", "uppercase"),
    ("registry bad port", {"image_registry": "reg.example.com:99999"}, "image_registry", "reg.example.com:99999",
     "port must be 1-65535"),
    ("registry bad label", {"image_registry": "-reg.example.com"}, "image_registry", "-reg.example.com",
     "DNS rules"),
    ("registry trailing slash", {"image_registry": "docker.io/me/"}, "image_registry", "docker.io/me/", "DNS rules"),
    ("image_repo uppercase", {"image_repo": "Ubuntu"}, "image_repo", "Ubuntu", "Docker repository name"),
    ("image_repo bad chars", {"image_repo": "ubu ntu"}, "image_repo", "ubu ntu", "Docker repository name"),
    ("os_distribution unknown", {"os_distribution": "debian"}, "os_distribution", "debian",
     "ubuntu, opensuse-leap, rhel, sles"),
    ("os_version ubuntu", {"os_version": "18.04"}, "os_version", "18.04", "20, 20.04, 22, 22.04, 24.04"),
    ("os_version opensuse", {"os_distribution": "opensuse-leap", "os_version": "15.5"}, "os_version", "15.5",
     "15.6"),
    ("os_version rhel missing", {"os_distribution": "rhel", "base_image": "quay.io/me/rhel:9"}, "os_version", "",
     "required for rhel"),
    ("os_version sles format", {"os_distribution": "sles", "os_version": "sp5", "base_image": "quay.io/me/sles:5"},
     "os_version", "sp5", "numeric version"),
    ("base_image rhel missing", {"os_distribution": "rhel", "os_version": "9.4"}, "base_image", "",
     "required for os_distribution rhel"),
    ("base_image sles missing", {"os_distribution": "sles", "os_version": "15.6"}, "base_image", "",
     "required for os_distribution sles"),
    ("base_image fips missing", {"fips_enabled": True}, "base_image", "", "required when fips_enabled"),
    ("base_image scheme", {"base_image": "docker://quay.io/kairos/ubuntu:22.04"}, "base_image",
     "docker://quay.io/kairos/ubuntu:22.04", "without a scheme"),
    ("base_image uppercase path", {"base_image": "quay.io/Kairos/ubuntu:22.04"}, "base_image",
     "quay.io/Kairos/ubuntu:22.04", "lowercase repository path"),
    ("k8s_distribution empty", {"k8s_distribution": ""}, "k8s_distribution", "",
     "CanvOS would silently build no provider image"),
    ("k8s_distribution unknown", {"k8s_distribution": "k0s"}, "k8s_distribution", "k0s",
     "k3s, kubeadm, kubeadm-fips, rke2, nodeadm, canonical"),
    ("k8s_distribution upper case", {"k8s_distribution": "K3S"}, "k8s_distribution", "K3S",
     "k3s, kubeadm, kubeadm-fips, rke2, nodeadm, canonical"),
    ("k8s_version unlisted", {"k8s_version": "1.27.3"}, "k8s_version", "1.27.3", "a version listed for k3s"),
    ("k8s_version bad format", {"k8s_version": "1.27"}, "k8s_version", "1.27", "a version listed for k3s"),
    ("k8s_version wrong dist", {"k8s_distribution": "nodeadm", "k8s_version": "1.33.5"}, "k8s_version", "1.33.5",
     "1.29.0, 1.30.0, 1.31.0, 1.32.0"),
    ("k8s_version dict", {"k8s_version": {"v": 1}}, "k8s_version", {"v": 1}, "a string or a list of strings"),
    ("arch", {"arch": "x86_64"}, "arch", "x86_64", "amd64, arm64"),
    ("iso_name extension", {"iso_name": "installer.iso"}, "iso_name", "installer.iso", "leave out the .iso"),
    ("iso_name uppercase", {"iso_name": "Installer"}, "iso_name", "Installer", "lowercase letters, digits, '-'"),
    ("pe_version", {"pe_version": "latest"}, "pe_version", "latest", "vX.Y.Z"),
    ("kairos_version", {"kairos_version": "v4.0"}, "kairos_version", "v4.0", "vX.Y.Z"),
    ("spectro_pub_repo scheme", {"spectro_pub_repo": "https://mirror.local"}, "spectro_pub_repo",
     "https://mirror.local", "no scheme"),
    ("spectro_luet_repo underscore", {"spectro_luet_repo": "mirror.local/luet_repo"}, "spectro_luet_repo",
     "mirror.local/luet_repo", "underscores"),
    ("fips excludes update_kernel", {"fips_enabled": True, "update_kernel": True, "base_image": "r.io/f:1"},
     "update_kernel", True, "false when fips_enabled is true"),
    ("bool garbage", {"debug": "maybe"}, "debug", "maybe", "true or false"),
    ("cis_hardening opensuse", {"cis_hardening": True, "os_distribution": "opensuse-leap"}, "cis_hardening", True,
     "ubuntu and arch is amd64"),
    ("cis_hardening arm64", {"cis_hardening": True, "arch": "arm64"}, "cis_hardening", True,
     "ubuntu and arch is amd64"),
    ("http_proxy scheme", {"http_proxy": "socks5://proxy:1080"}, "http_proxy", "socks5://proxy:1080",
     "http:// or https:// URL"),
    ("http_proxy no scheme", {"http_proxy": "proxy.example.com:3128"}, "http_proxy", "proxy.example.com:3128",
     "http:// or https:// URL"),
    ("https_proxy bad port", {"https_proxy": "http://proxy:99999"}, "https_proxy", "http://proxy:99999",
     "port must be 1-65535"),
    ("https_proxy path", {"https_proxy": "http://proxy:3128/x"}, "https_proxy", "http://proxy:3128/x",
     "no path"),
    ("http_proxy masked password", {"http_proxy": "http://u:********@proxy:3128"}, "http_proxy",
     "http://u:********@proxy:3128", "the password is masked"),
    ("no_proxy space", {"no_proxy": "localhost,my host"}, "no_proxy", "localhost,my host", "comma-separated"),
    ("proxy_cert_paths missing", {"proxy_cert_paths": ["/nonexistent/ca.pem"]}, "proxy_cert_paths",
     "/nonexistent/ca.pem", "the path of an existing file"),
    ("proxy_cert_path missing", {"proxy_cert_path": "/nonexistent/ca.pem"}, "proxy_cert_paths",
     "/nonexistent/ca.pem", "the path of an existing file"),
    ("clusterconfig missing", {"clusterconfig": "/nonexistent/spc.tgz"}, "clusterconfig", "/nonexistent/spc.tgz",
     "the path of an existing file"),
    ("edge_custom_config missing", {"edge_custom_config": "/nonexistent/e.yaml"}, "edge_custom_config",
     "/nonexistent/e.yaml", "the path of an existing file"),
    ("k8s_versions_file missing", {"k8s_versions_file": "/nonexistent/v.json"}, "k8s_versions_file",
     "/nonexistent/v.json", "the path of an existing file"),
    ("region", {"region": "US-EAST-1"}, "region", "US-EAST-1", "AWS region name"),
    ("region format", {"region": "useast1"}, "region", "useast1", "AWS region name"),
    ("s3_bucket uppercase", {"s3_bucket": "My-Bucket"}, "s3_bucket", "My-Bucket", "S3 bucket name"),
    ("s3_bucket short", {"s3_bucket": "ab"}, "s3_bucket", "ab", "3-63"),
    ("s3_bucket ip", {"s3_bucket": "192.168.1.10"}, "s3_bucket", "192.168.1.10", "not an IP address"),
    ("s3_bucket dots", {"s3_bucket": "my..bucket"}, "s3_bucket", "my..bucket", "no '..'"),
    ("s3_key chars", {"s3_key": "images/my image.raw"}, "s3_key", "images/my image.raw", "S3 object key"),
    ("s3_key leading slash", {"s3_key": "/images/a.raw"}, "s3_key", "/images/a.raw", "not starting with '/'"),
    ("ami_name short", {"ami_name": "ab"}, "ami_name", "ab", "3-128 characters"),
    ("ami_name chars", {"ami_name": "edge#1"}, "ami_name", "edge#1", "3-128 characters"),
    ("provider_source_image", {"provider_source_image": "http://x/provider"}, "provider_source_image",
     "http://x/provider", "without a scheme"),
    ("stylus_framework_image", {"stylus_framework_image": "reg.io/Stylus:v1"}, "stylus_framework_image",
     "reg.io/Stylus:v1", "lowercase repository path"),
    ("k8s_payload_image no placeholder", {"k8s_payload_image": "reg.io/luet:k8s"}, "k8s_payload_image",
     "reg.io/luet:k8s", "{k8s_version}"),
    ("k8s_payload_image other placeholder", {"k8s_payload_image": "reg.io/luet:{dist}-{k8s_version}"},
     "k8s_payload_image", "reg.io/luet:{dist}-{k8s_version}", "only placeholder"),
    ("unknown option", {"custom_tags": "x"}, "config", "custom_tags", "option names"),
]


@pytest.mark.parametrize("options, param, value, allowed", [row[1:] for row in BAD_INPUTS],
                         ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_refused_with_one_clear_message(options, param, value, allowed):
    with pytest.raises(ValidationError) as err:
        BuildConfig.from_options(options)
    message = str(err.value)
    assert err.value.param == param
    assert message.startswith(param + ":")
    assert repr(value) in message, message
    assert allowed in message, message


def test_bad_input_table_covers_every_option():
    covered = {row[2] for row in BAD_INPUTS}
    free_form = {"no_proxy"}  # has its own row; listed for clarity
    uncovered = set(OPTIONS) - covered - free_form - {
        # booleans share one rule (the "bool garbage" row); k8s_versions_file and the derived sources have rows.
        "fips_enabled", "force_interactive_install", "disable_selinux",
    }
    assert uncovered == set()


def test_proxy_password_never_appears_in_a_validation_message():
    with pytest.raises(ValidationError) as err:
        BuildConfig.from_options({"http_proxy": "http://bob:hunter2xyz@proxy:3128/path"})
    assert "hunter2xyz" not in str(err.value)
