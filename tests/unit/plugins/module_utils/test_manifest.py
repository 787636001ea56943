"""BYOOS pack manifest: the guide's structure, values from the configuration, system.uri matches the tags."""

import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.manifest import DRAIN_COMMENTS, expand_uri, manifest_values, render


def _config(**options):
    return BuildConfig.from_options(options).config


def test_structure_matches_the_guide():
    text = render(manifest_values(_config(custom_tag="palette-learn", k8s_version="1.27.2")))
    data = yaml.safe_load(text)
    assert data["pack"] == {"content": {"images": [{"image": "{{.spectro.pack.edge-native-byoi.options.system.uri}}"}]}}
    assert list(data["options"]) == ["system.uri", "system.registry", "system.repo", "system.k8sDistribution",
                                     "system.osName", "system.peVersion", "system.customTag", "system.osVersion"]
    assert data["options"]["system.registry"] == "ttl.sh"
    assert data["options"]["system.repo"] == "ubuntu"
    assert data["options"]["system.k8sDistribution"] == "k3s"
    assert data["options"]["system.customTag"] == "palette-learn"
    assert data["options"]["system.osVersion"] == "22.04"  # a string, not the float 22.04
    for line in DRAIN_COMMENTS:
        assert line in text.splitlines()
    assert "# drain:" in text and "skipWaitForDeleteTimeout: 60" in text
    # the drain block sits between pack.content and options, as CanvOS prints it
    assert text.index("# drain:") < text.index("options:")


def test_pe_version_is_the_one_in_the_tags():
    config = _config(custom_tag="demo", pe_version="v4.4.12", k8s_version="1.27.2")
    values = manifest_values(config)
    assert values["system.peVersion"] == "v4.4.12"
    plan = BuildConfig.from_options(config).plan()
    assert expand_uri(values, "1.27.2") == plan["provider_images"][0]


def test_uri_resolves_to_every_tag_of_the_matrix():
    config = _config(custom_tag="edge", image_registry="docker.io/me", os_distribution="opensuse-leap",
                     k8s_version=["1.26.14", "1.27.2"])
    values = manifest_values(config)
    plan = BuildConfig.from_options(config).plan()
    assert [expand_uri(values, build["k8s_version"]) for build in plan["builds"]] == plan["provider_images"]


def test_empty_custom_tag_has_no_trailing_suffix():
    config = _config(custom_tag="", k8s_version="1.27.2")
    values = manifest_values(config)
    assert "customTag" not in values["system.uri"]
    assert expand_uri(values, "1.27.2") == "ttl.sh/ubuntu:k3s-1.27.2-v4.9.21"
    assert yaml.safe_load(render(values))["options"]["system.customTag"] == ""


def test_registry_with_port_stays_a_string_and_images_are_listed_as_comments():
    config = _config(image_registry="127.0.0.1:5000/edge", k8s_version="1.27.2")
    values = manifest_values(config)
    text = render(values, ["127.0.0.1:5000/edge/ubuntu:k3s-1.27.2-v4.9.21-demo"])
    data = yaml.safe_load(text)
    assert data["options"]["system.registry"] == "127.0.0.1:5000/edge"
    assert "#   127.0.0.1:5000/edge/ubuntu:k3s-1.27.2-v4.9.21-demo" in text.splitlines()
