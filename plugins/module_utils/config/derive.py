# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names derived from a (partially normalised) configuration: image tags, the default base image, upstream sources.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.rules import OS_VERSION_ALIASES

# Kairos agent providers of the CanvOS v4.10.0 release; kubeadm-fips uses the kubeadm provider.
PROVIDER_VERSIONS = {
    "k3s": "v4.9.4",
    "kubeadm": "v4.9.8",
    "rke2": "v4.9.3",
    "nodeadm": "v4.9.3",
    "canonical": "v4.9.3",
}
PROVIDER_FOR_DISTRIBUTION = {
    "k3s": "k3s",
    "kubeadm": "kubeadm",
    "kubeadm-fips": "kubeadm",
    "rke2": "rke2",
    "nodeadm": "nodeadm",
    "canonical": "canonical",
}
# Suffix of the luet package version (not of image tags).
PACKAGE_VERSION_SUFFIX = {"k3s": "-k3s1", "rke2": "-rke2r1"}
ARCH_SHORT = {"amd64": "amd", "arm64": "arm"}


def provider_tag(k8s_distribution, k8s_version, pe_version, custom_tag):
    """K8S_DISTRIBUTION-K8S_VERSION-PE_VERSION[-CUSTOM_TAG]."""
    tag = "%s-%s-%s" % (k8s_distribution, k8s_version, pe_version)
    return "%s-%s" % (tag, custom_tag) if custom_tag else tag


def default_base_image(cfg):
    base = cfg["spectro_pub_repo"] + "/edge"
    os_version = OS_VERSION_ALIASES.get(cfg["os_version"], cfg["os_version"])
    if cfg["os_distribution"] == "ubuntu":
        return "%s/kairos-ubuntu:%s-core-%s-generic-%s" % (base, os_version, cfg["arch"], cfg["kairos_version"])
    if cfg["os_distribution"] == "opensuse-leap":
        return "%s/kairos-opensuse:leap-%s-core-%s-generic-%s" % (
            base, os_version, cfg["arch"], cfg["kairos_version"])
    raise ValidationError("base_image", "", "an image reference: required for os_distribution %s"
                          % cfg["os_distribution"])


def default_sources(cfg):
    dist = cfg["k8s_distribution"]
    provider = PROVIDER_FOR_DISTRIBUTION[dist]
    return {
        "provider_source_image": "%s/edge/kairos-io/provider-%s:%s" % (cfg["spectro_pub_repo"], provider,
                                                                       PROVIDER_VERSIONS[provider]),
        "stylus_framework_image": "%s/edge/stylus-framework-linux-%s:%s" % (cfg["spectro_pub_repo"], cfg["arch"],
                                                                            cfg["pe_version"]),
        "k8s_payload_image": payload_image_template(cfg["spectro_luet_repo"], cfg["arch"], dist),
    }


def payload_image_template(luet_repo, arch, k8s_distribution):
    """The luet package image of ``k8s/<dist>@<version>``, with ``{k8s_version}`` left to fill in.

    luet tags a package image ``<name>-<category>-<version>`` (``+`` turned into ``-``); CanvOS installs the
    version with ``-k3s1`` / ``-rke2r1`` for k3s / rke2 and the plain version otherwise (CONFORMANCE 4.8).
    """
    return "%s/luet-repo-%s:%s-k8s-{k8s_version}%s" % (
        luet_repo, ARCH_SHORT[arch], k8s_distribution, PACKAGE_VERSION_SUFFIX.get(k8s_distribution, ""))
