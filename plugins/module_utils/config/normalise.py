# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From the options a user gave to the normalised configuration: types, every value rule, the derived values.

``normalise(options, base_dir)`` runs the steps below in order; the first bad value raises one ValidationError,
before anything else is done.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from collections import OrderedDict

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config import derive, rules
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.schema import (
    ARCHES,
    BY_NAME,
    CONFIG_NAMES,
    DEFAULT_SPECTRO_PUB_REPO,
    FIPS_SPECTRO_PUB_REPO,
    INPUT_NAMES,
    OS_DISTRIBUTIONS,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.proxies import PROXY_NAMES, validate_proxy
from ansible_collections.edgeforge.artifacts.plugins.module_utils.k8s_versions import load_versions


class Draft:
    """The configuration being normalised, and what the steps found on the way."""

    def __init__(self, cfg, explicit, base_dir, given_cert_path):
        self.cfg = cfg
        self.explicit = explicit
        self.base_dir = base_dir
        self.given_cert_path = given_cert_path
        self.table = None
        self.warnings = []
        self.deprecations = []  # [{"msg": ..., "version": ...}]


def normalise(options, base_dir=None):
    """Validate ``options`` (flat lower-case names; None = not given); return the finished Draft."""
    draft = _typed(_given(options), base_dir)
    for step in (_deprecated_cert_path, _names_and_os, _distribution_and_release, _matrix, _exclusions,
                 _repositories, _base_image, _proxies, _files, _aws, _sources, _tag_lengths, _advice):
        step(draft)
    return draft


def _given(options):
    """The options that were set (None is "not set"); unknown names are refused."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ValidationError("config", options, "a dict of build configuration options")
    for key in options:
        if key not in INPUT_NAMES:
            raise ValidationError("config", key, "option names: %s" % ", ".join(sorted(CONFIG_NAMES)))
    return dict((k, v) for k, v in options.items() if v is not None and k != "k8s_versions")


def _typed(given, base_dir):
    """Every option typed (strings stripped, booleans parsed, lists split) or set to its default."""
    cfg = OrderedDict()
    for name in CONFIG_NAMES:
        option = BY_NAME[name]
        if name not in given:
            cfg[name] = copy.deepcopy(option.default)
        elif option.kind == "bool":
            cfg[name] = rules.to_bool(name, given[name])
        elif option.kind == "list":
            cfg[name] = rules.to_list(name, given[name], split_re=r"\s*,\s*")
        elif option.kind == "versions":
            cfg[name] = rules.to_list(name, given[name])
        else:
            cfg[name] = rules.to_str(name, given[name])
    explicit = set(name for name in CONFIG_NAMES if name in given)
    return Draft(cfg, explicit, base_dir, rules.to_str("proxy_cert_path", given.get("proxy_cert_path")))


def _deprecated_cert_path(draft):
    """The single proxy CA path (CanvOS PROXY_CERT_PATH) is merged into proxy_cert_paths, with a deprecation."""
    single = draft.given_cert_path
    if not single:
        return
    draft.deprecations.append({
        "msg": "proxy_cert_path (CanvOS PROXY_CERT_PATH) is deprecated; use the list proxy_cert_paths. "
               "%s was added to proxy_cert_paths." % single,
        "version": "2.0.0"})
    if single not in draft.cfg["proxy_cert_paths"]:
        draft.cfg["proxy_cert_paths"] = draft.cfg["proxy_cert_paths"] + [single]
    draft.explicit.add("proxy_cert_paths")


def _names_and_os(draft):
    cfg = draft.cfg
    rules.check_custom_tag(cfg["custom_tag"])
    rules.validate_registry_path("image_registry", cfg["image_registry"])
    rules.check_choice("os_distribution", cfg["os_distribution"], OS_DISTRIBUTIONS)
    if cfg["image_repo"] is None:
        cfg["image_repo"] = cfg["os_distribution"]
    rules.validate_repo_name("image_repo", cfg["image_repo"])
    cfg["os_version"] = rules.os_version(cfg["os_distribution"], cfg["os_version"], draft.warnings)


def _distribution_and_release(draft):
    cfg = draft.cfg
    rules.check_k8s_distribution(cfg["k8s_distribution"])
    rules.check_choice("arch", cfg["arch"], ARCHES)
    rules.check_iso_name(cfg["iso_name"])
    for name in ("pe_version", "kairos_version"):
        cfg[name] = rules.release(name, cfg[name])


def _matrix(draft):
    """The versions table (shipped or the user's) and the build matrix k8s_versions."""
    cfg = draft.cfg
    dist = cfg["k8s_distribution"]
    table_path = cfg["k8s_versions_file"]
    if table_path:
        table_path = cfg["k8s_versions_file"] = rules.validate_file("k8s_versions_file", table_path, draft.base_dir)
    draft.table = load_versions(table_path or None)
    table_name = ("the versions table %s" % table_path) if table_path else "the shipped versions table"
    listed = draft.table.get(dist)
    if not listed:
        raise ValidationError("k8s_distribution", dist, "a distribution with versions in %s (it lists: %s)" % (
            table_name, ", ".join(sorted(d for d in draft.table if draft.table[d])) or "none"))
    requested = []
    for version in cfg["k8s_version"]:
        version = rules.k8s_version(version, listed, dist, table_name)
        if version not in requested:
            requested.append(version)
    cfg["k8s_version"] = requested
    cfg["k8s_versions"] = list(requested or listed)
    if not requested and len(listed) > 3:
        draft.warnings.append("k8s_version is empty: the build matrix is every %s version in %s (%d provider images "
                              "of about 4-5 GB each); set k8s_version to build only what you need."
                              % (dist, table_name, len(listed)))


def _exclusions(draft):
    cfg = draft.cfg
    if cfg["fips_enabled"] and cfg["update_kernel"]:
        raise ValidationError("update_kernel", True,
                              "false when fips_enabled is true (a FIPS build keeps its certified kernel)")
    if cfg["cis_hardening"] and (cfg["os_distribution"] != "ubuntu" or cfg["arch"] != "amd64"):
        raise ValidationError("cis_hardening", True,
                              "false unless os_distribution is ubuntu and arch is amd64 (the CIS hardening "
                              "script supports only Ubuntu amd64; got %s %s)" % (cfg["os_distribution"], cfg["arch"]))


def _repositories(draft):
    """As CanvOS (CONFORMANCE 2.1): only fips_enabled moves the default spectro_pub_repo to palette-images-fips,
    and never the luet repository, which follows the registry the user chose (a mirror)."""
    cfg = draft.cfg
    rules.validate_registry_path("spectro_pub_repo", cfg["spectro_pub_repo"])
    if not cfg["spectro_luet_repo"]:
        cfg["spectro_luet_repo"] = cfg["spectro_pub_repo"] + "/edge"
    if cfg["fips_enabled"] and cfg["spectro_pub_repo"] == DEFAULT_SPECTRO_PUB_REPO:
        cfg["spectro_pub_repo"] = FIPS_SPECTRO_PUB_REPO
    if cfg["k8s_distribution"] == "kubeadm-fips" and not cfg["fips_enabled"]:
        draft.warnings.append("k8s_distribution is kubeadm-fips but fips_enabled is false: as in CanvOS, the base "
                              "image, provider and stylus images come from %s, not the FIPS registry; set "
                              "fips_enabled and a FIPS base_image for a FIPS build." % cfg["spectro_pub_repo"])
    rules.validate_registry_path("spectro_luet_repo", cfg["spectro_luet_repo"])


def _base_image(draft):
    cfg = draft.cfg
    dist = cfg["os_distribution"]
    if cfg["base_image"]:
        rules.validate_image_ref("base_image", cfg["base_image"])
        rules.check_not_jetson(cfg["base_image"])
    elif dist in ("rhel", "sles"):
        raise ValidationError("base_image", "", "an image reference of a Kairos %s core image: required for "
                              "os_distribution %s (CanvOS publishes no default base image for it)" % (dist, dist))
    elif cfg["fips_enabled"]:
        raise ValidationError("base_image", "", "an image reference of a FIPS-enabled Kairos core image: required "
                              "when fips_enabled is true")
    else:
        cfg["base_image"] = derive.default_base_image(cfg)


def _proxies(draft):
    cfg = draft.cfg
    for name in PROXY_NAMES:
        if cfg[name]:
            validate_proxy(name, cfg[name])
    cfg["no_proxy"] = rules.no_proxy(cfg["no_proxy"])


def _files(draft):
    """Refuse a path the user gave that does not exist (CanvOS silently ignores typos); store it absolute."""
    cfg = draft.cfg
    cfg["proxy_cert_paths"] = [rules.validate_file("proxy_cert_paths", p, draft.base_dir)
                               for p in cfg["proxy_cert_paths"]]
    for name in ("clusterconfig", "edge_custom_config"):
        if cfg[name]:
            cfg[name] = rules.validate_file(name, cfg[name], draft.base_dir)


def _aws(draft):
    rules.check_region(draft.cfg["region"])
    rules.check_s3_bucket(draft.cfg["s3_bucket"])
    rules.check_s3_key(draft.cfg["s3_key"])
    rules.check_ami_name(draft.cfg["ami_name"])


def _sources(draft):
    """The upstream images: the user's (validated) or the CanvOS defaults."""
    cfg = draft.cfg
    defaults = derive.default_sources(cfg)
    for name in ("provider_source_image", "stylus_framework_image"):
        if cfg[name]:
            rules.validate_image_ref(name, cfg[name])
        else:
            cfg[name] = defaults[name]
    if cfg["k8s_payload_image"]:
        rules.check_payload_template(cfg["k8s_payload_image"], defaults["k8s_payload_image"])
    else:
        cfg["k8s_payload_image"] = defaults["k8s_payload_image"]


def _tag_lengths(draft):
    cfg = draft.cfg
    for version in cfg["k8s_versions"]:
        rules.check_tag_length(derive.provider_tag(cfg["k8s_distribution"], version, cfg["pe_version"],
                                                   cfg["custom_tag"]), cfg["custom_tag"])


def _advice(draft):
    cfg = draft.cfg
    if not cfg["custom_tag"]:
        draft.warnings.append("custom_tag is empty: provider image tags end with the PE version (no custom tag). The "
                              "stock BYOOS pack's system.uri appends -<customTag>, so it will not match: use the "
                              "system.uri from this plan's manifest, or set a custom_tag.")
    if cfg["image_registry"] == "ttl.sh" or cfg["image_registry"].startswith("ttl.sh/"):
        draft.warnings.append("image_registry is ttl.sh: images pushed there expire (24 hours by default); hosts that "
                              "install or upgrade later will fail to pull the provider image.")
