# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build configuration: CanvOS ``.arg`` parameters, validated and turned into a build plan.

``BuildConfig.from_options(options)`` takes the flat lower-case option names (CanvOS ``.arg`` keys in lower case),
applies the CanvOS defaults, validates EVERY value before anything else happens (one ValidationError naming the
parameter, the value and what is allowed) and derives what the builders need: the base image, the upstream image
sources, one provider image reference per Kubernetes version, the installer image, the ISO path and the BYOOS pack
values. ``plan()`` returns all of it as the documented dict; ``as_dict()`` the normalised configuration, which
``from_options`` accepts back unchanged.

``read_arg_file(path)`` / ``write_arg_file(path, config)`` move configurations to and from CanvOS ``.arg`` files.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress
import os
import re
from collections import OrderedDict

from urllib.parse import urlsplit, urlunsplit

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError, atomic_write
from ansible_collections.edgeforge.artifacts.plugins.module_utils import arg_file as _arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.k8s_versions import load_versions


# ---------------------------------------------------------------------------------------------------------------
# Pinned defaults (CanvOS v4.10.0 release)

DEFAULT_PE_VERSION = "v4.9.21"
DEFAULT_KAIROS_VERSION = "v4.0.4"
DEFAULT_SPECTRO_PUB_REPO = "us-docker.pkg.dev/palette-images"
FIPS_SPECTRO_PUB_REPO = "us-docker.pkg.dev/palette-images-fips"

PROVIDER_VERSIONS = {
    "k3s": "v4.9.4",
    "kubeadm": "v4.9.8",
    "rke2": "v4.9.3",
    "nodeadm": "v4.9.3",
    "canonical": "v4.9.3",
}
# kubeadm-fips uses the kubeadm agent provider.
PROVIDER_FOR_DISTRIBUTION = {
    "k3s": "k3s",
    "kubeadm": "kubeadm",
    "kubeadm-fips": "kubeadm",
    "rke2": "rke2",
    "nodeadm": "nodeadm",
    "canonical": "canonical",
}
K8S_DISTRIBUTIONS = ("k3s", "kubeadm", "kubeadm-fips", "rke2", "nodeadm", "canonical")
# Suffix of the luet package version (not of image tags).
PACKAGE_VERSION_SUFFIX = {"k3s": "-k3s1", "rke2": "-rke2r1"}

OS_DISTRIBUTIONS = ("ubuntu", "opensuse-leap", "rhel", "sles")
OS_VERSIONS = {
    "ubuntu": ("20", "20.04", "22", "22.04", "24.04"),
    "opensuse-leap": ("15.6",),
}
OS_VERSION_ALIASES = {"20": "20.04", "22": "22.04"}
DEFAULT_OS_VERSION = {"ubuntu": "22.04", "opensuse-leap": "15.6"}
ARCHES = ("amd64", "arm64")
ARCH_SHORT = {"amd64": "amd", "arm64": "arm"}

# The CanvOS template defaults of these two are "use it if it exists"; we keep them empty and refuse a missing file.
CANVOS_IF_EXISTS_DEFAULTS = {"clusterconfig": "spc.tgz", "edge_custom_config": ".edge-custom-config.yaml"}

MASK = "********"

ARG_HEADER = [
    "CanvOS build arguments written by edgeforge.artifacts.build_config.",
    "K8S_VERSION may hold a comma-separated list (the edgeforge build matrix); CanvOS reads a single version.",
    "PROXY_CERT_PATHS, K8S_VERSIONS_FILE and the *_IMAGE sources are edgeforge extensions.",
]

# Option name -> (kind, default). kind: str, bool, list, versions. A default of None is derived (see _derive).
OPTIONS = OrderedDict([
    ("custom_tag", ("str", "demo")),
    ("image_registry", ("str", "ttl.sh")),
    ("os_distribution", ("str", "ubuntu")),
    ("image_repo", ("str", None)),
    ("os_version", ("str", None)),
    ("k8s_distribution", ("str", "k3s")),
    ("k8s_version", ("versions", [])),
    ("arch", ("str", "amd64")),
    ("iso_name", ("str", "palette-edge-installer")),
    ("base_image", ("str", None)),
    ("pe_version", ("str", DEFAULT_PE_VERSION)),
    ("kairos_version", ("str", DEFAULT_KAIROS_VERSION)),
    ("spectro_pub_repo", ("str", DEFAULT_SPECTRO_PUB_REPO)),
    ("spectro_luet_repo", ("str", None)),
    ("fips_enabled", ("bool", False)),
    ("update_kernel", ("bool", False)),
    ("http_proxy", ("str", "")),
    ("https_proxy", ("str", "")),
    ("no_proxy", ("str", "")),
    ("proxy_cert_paths", ("list", [])),
    ("clusterconfig", ("str", "")),
    ("edge_custom_config", ("str", "")),
    ("cis_hardening", ("bool", False)),
    ("disable_selinux", ("bool", True)),
    ("force_interactive_install", ("bool", False)),
    ("debug", ("bool", False)),
    ("region", ("str", "")),
    ("s3_bucket", ("str", "")),
    ("s3_key", ("str", "")),
    ("ami_name", ("str", "")),
    ("k8s_versions_file", ("str", "")),
    ("provider_source_image", ("str", None)),
    ("stylus_framework_image", ("str", None)),
    ("k8s_payload_image", ("str", None)),
])
# Accepted on input, not part of the normalised configuration.
DEPRECATED_OPTIONS = ("proxy_cert_path",)
# Present in as_dict() output (derived); accepted back by from_options and recomputed.
DERIVED_KEYS = ("k8s_versions",)
# Options whose value is derived when not given: written to a .arg only when the user set them.
DERIVED_OPTIONS = ("base_image", "spectro_luet_repo", "provider_source_image", "stylus_framework_image",
                   "k8s_payload_image", "image_repo", "spectro_pub_repo")
# Written to a .arg even when empty (an empty value means something there); other empty options are left out.
ARG_KEEP_EMPTY = ("custom_tag", "k8s_version", "http_proxy", "https_proxy")
PATH_OPTIONS = ("proxy_cert_paths", "clusterconfig", "edge_custom_config", "k8s_versions_file", "proxy_cert_path")

_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n", "")

# ---------------------------------------------------------------------------------------------------------------
# Value rules

_DNS_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_HOST_RE = re.compile(r"^%s(?:\.%s)*$" % (_DNS_LABEL, _DNS_LABEL))
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_CUSTOM_TAG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_ISO_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_RELEASE_RE = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?$")
_K8S_VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_OS_VERSION_RE = re.compile(r"^[0-9]+(?:\.[0-9]+){0,2}$")
_REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$")
_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_KEY_RE = re.compile(r"^[A-Za-z0-9!_.*'()/-]+$")
_AMI_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\] ./'@_-]{3,128}$")
_NO_PROXY_ENTRY_RE = re.compile(r"^[A-Za-z0-9.*_:\[\]/-]+$")

ALLOWED = {
    "custom_tag": "lowercase letters, digits and '-' (not at either end), e.g. palette-learn; empty for no suffix",
    "image_registry": ("a registry host[:port][/namespace...] following DNS rules: lowercase, no scheme "
                       "(no http:// or https://), no underscores, e.g. ttl.sh or docker.io/myuser"),
    "image_repo": ("a Docker repository name: lowercase letters and digits, separated by '.', '_', '__' or '-', "
                   "path parts separated by '/', e.g. ubuntu"),
    "os_distribution": "one of %s" % ", ".join(OS_DISTRIBUTIONS),
    "k8s_distribution": "one of %s" % ", ".join(K8S_DISTRIBUTIONS),
    "arch": "one of %s" % ", ".join(ARCHES),
    "iso_name": "lowercase letters, digits, '-' and '_' (the file name without .iso), e.g. palette-edge-installer",
    "pe_version": "a Palette agent release tag vX.Y.Z[-pre.release], e.g. v4.4.12",
    "kairos_version": "a Kairos release tag vX.Y.Z[-pre.release], e.g. v4.0.4",
    "bool": "true or false",
    "proxy": "an http:// or https:// URL with a host and optional port, e.g. http://proxy.example.com:3128",
    "no_proxy": "a comma-separated list of host names, domains (.example.com), IP addresses or CIDRs",
    "file": "the path of an existing file",
    "region": "an AWS region name such as us-east-1 or eu-central-1",
    "s3_bucket": ("an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
                  "letter or digit, no '..', not an IP address"),
    "s3_key": "an S3 object key of at most 1024 bytes using letters, digits and ! - _ . * ' ( ) /, not starting with '/'",
    "ami_name": "3-128 characters: letters, digits, spaces and ( ) [ ] . / - ' @ _",
    "image_ref": "an image reference registry/path[:tag][@digest] without a scheme, with a lowercase repository path",
}


def _allowed(param):
    return ALLOWED.get(param, "")


def mask_url(url):
    """Replace the password of ``scheme://user:password@host`` with ********."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc
    userinfo, hostport = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, "%s:%s@%s" % (user, MASK, hostport), parts.path, parts.query, parts.fragment))


def url_password(url):
    """The password part of a proxy URL, or None."""
    if not url or "@" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def with_real_proxies(config, proxies):
    """``config`` (a plan's masked configuration) with the real proxy URLs of ``proxies`` put back.

    A proxy whose password the plan masked and that ``proxies`` does not give cannot be used: the build would
    send ******** to the proxy, so that is an error naming the option to set.
    """
    out = dict(config)
    for name in ("http_proxy", "https_proxy"):
        real = proxies.get(name)
        if real:
            validate_proxy(name, real)
            out[name] = real
        elif url_password(out.get(name)) == MASK:
            raise ValidationError(name, out[name], "the real proxy URL: the build plan masks the proxy password, so "
                                  "pass %s to this step as well" % name)
    return out


def _validate_host_port(param, value, hostport, allowed):
    host, sep, port = hostport.rpartition(":") if ":" in hostport and not hostport.endswith("]") else (hostport, "", "")
    if not sep:
        host = hostport
    if sep:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValidationError(param, value, allowed + " (port must be 1-65535)")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            return
        except ValueError:
            raise ValidationError(param, value, allowed)
    if "_" in host:
        raise ValidationError(param, value, allowed + " (underscores are not allowed in host names)")
    if host != host.lower():
        raise ValidationError(param, value, allowed + " (host names must be lowercase)")
    if not host or len(host) > 253 or not _HOST_RE.match(host):
        raise ValidationError(param, value, allowed)


def validate_registry_path(param, value, allowed=None):
    """host[:port][/namespace...] as used by IMAGE_REGISTRY, SPECTRO_PUB_REPO and SPECTRO_LUET_REPO."""
    allowed = allowed or _allowed("image_registry")
    if "://" in value:
        raise ValidationError(param, value, allowed)
    if "_" in value:
        raise ValidationError(param, value, allowed + " (underscores are not allowed)")
    if value != value.lower():
        raise ValidationError(param, value, allowed + " (uppercase letters are not allowed)")
    if not value or value.startswith("/") or value.endswith("/") or " " in value:
        raise ValidationError(param, value, allowed)
    parts = value.split("/")
    _validate_host_port(param, value, parts[0], allowed)
    for part in parts[1:]:
        if not _PATH_COMPONENT_RE.match(part):
            raise ValidationError(param, value, allowed)


def validate_repo_name(param, value):
    allowed = _allowed("image_repo")
    if not value or len(value) > 255 or value != value.lower():
        raise ValidationError(param, value, allowed)
    for part in value.split("/"):
        if not _PATH_COMPONENT_RE.match(part):
            raise ValidationError(param, value, allowed)


def validate_image_ref(param, value):
    """A full image reference: [registry[:port]/]path[:tag][@digest], no scheme."""
    allowed = _allowed("image_ref")
    if not value or "://" in value or " " in value:
        raise ValidationError(param, value, allowed)
    name, digest = value, None
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ValidationError(param, value, allowed + " (bad digest)")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise ValidationError(param, value, allowed + " (a tag has at most 128 letters, digits, '_', '.', '-')")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        _validate_host_port(param, value, parts[0], allowed)
        parts = parts[1:]
    if not parts or not all(_PATH_COMPONENT_RE.match(p) for p in parts):
        raise ValidationError(param, value, allowed)


def validate_proxy(param, value):
    allowed = _allowed("proxy")
    if any(c.isspace() for c in value):
        raise ValidationError(param, mask_url(value), allowed)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError(param, mask_url(value), allowed + " (port must be 1-65535)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(param, mask_url(value), allowed)
    if port is not None and not 0 < port < 65536:
        raise ValidationError(param, mask_url(value), allowed + " (port must be 1-65535)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError(param, mask_url(value), allowed + " (no path, query or fragment)")
    if parts.password == MASK:
        raise ValidationError(param, mask_url(value),
                              allowed + "; the password is masked (a value copied from returned output): pass the "
                              "real proxy URL")


def _to_bool(param, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(param, value, _allowed("bool"))


def _to_str(param, value):
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (list, dict, tuple)):
        raise ValidationError(param, value, "a string")
    return str(value).strip()


def _to_list(param, value, split_re=r"[,\s]+"):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, (list, dict, tuple, bool)) or item is None:
                raise ValidationError(param, value, "a string or a list of strings")
            items.extend(re.split(split_re, str(item).strip()))
    elif isinstance(value, (dict, bool)):
        raise ValidationError(param, value, "a string or a list of strings")
    else:
        items = re.split(split_re, str(value).strip())
    return [item for item in items if item]


def _resolve_path(path, base_dir):
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    return os.path.normpath(path)


def _validate_file(param, value, base_dir):
    path = _resolve_path(value, base_dir)
    if not os.path.isfile(path):
        raise ValidationError(param, value, _allowed("file") + " (not found: %s)" % path)
    return path


class BuildConfig:
    """A validated build configuration. Build with ``from_options``; read with ``as_dict``/``plan``."""

    def __init__(self, config, versions_table, explicit, warnings, deprecations):
        self._config = config
        self._versions_table = versions_table
        self._explicit = frozenset(explicit)
        self.warnings = list(warnings)
        self.deprecations = list(deprecations)  # [{"msg": ..., "version": ...}]

    # -----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_options(cls, options, base_dir=None):
        """Validate ``options`` (flat lower-case names; None = not given) and return a BuildConfig.

        Relative file paths are resolved against ``base_dir`` (default: the current directory) and stored absolute.
        Raises ValidationError for the first bad value, before anything else is done.
        """
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ValidationError("config", options, "a dict of build configuration options")
        known = set(OPTIONS) | set(DEPRECATED_OPTIONS) | set(DERIVED_KEYS)
        for key in options:
            if key not in known:
                raise ValidationError("config", key, "option names: %s" % ", ".join(sorted(OPTIONS)))
        given = dict((k, v) for k, v in options.items() if v is not None and k not in DERIVED_KEYS)
        warnings = []
        deprecations = []
        cfg = OrderedDict()

        # 1. Types (strings stripped, booleans parsed, lists split).
        for name, (kind, default) in OPTIONS.items():
            if name not in given:
                cfg[name] = copy.deepcopy(default)
                continue
            value = given[name]
            if kind == "bool":
                cfg[name] = _to_bool(name, value)
            elif kind == "list":
                cfg[name] = _to_list(name, value, split_re=r"\s*,\s*")
            elif kind == "versions":
                cfg[name] = _to_list(name, value)
            else:
                cfg[name] = _to_str(name, value)
        explicit = set(name for name in OPTIONS if name in given)

        # Deprecated single proxy CA path (CanvOS PROXY_CERT_PATH): merged into proxy_cert_paths.
        single = _to_str("proxy_cert_path", given.get("proxy_cert_path"))
        if single:
            deprecations.append({
                "msg": "proxy_cert_path (CanvOS PROXY_CERT_PATH) is deprecated; use the list proxy_cert_paths. "
                       "%s was added to proxy_cert_paths." % single,
                "version": "2.0.0"})
            if single not in cfg["proxy_cert_paths"]:
                cfg["proxy_cert_paths"] = cfg["proxy_cert_paths"] + [single]
            explicit.add("proxy_cert_paths")

        # 2. Values, one rule at a time; the first bad value raises.
        tag = cfg["custom_tag"]
        if tag and not _CUSTOM_TAG_RE.match(tag):
            raise ValidationError("custom_tag", tag, _allowed("custom_tag"))
        validate_registry_path("image_registry", cfg["image_registry"])

        dist = cfg["os_distribution"]
        if dist not in OS_DISTRIBUTIONS:
            raise ValidationError("os_distribution", dist, _allowed("os_distribution"))
        if cfg["image_repo"] is None:
            cfg["image_repo"] = dist
        validate_repo_name("image_repo", cfg["image_repo"])

        os_version = cfg["os_version"]
        if os_version is None or os_version == "":
            if dist not in DEFAULT_OS_VERSION:
                raise ValidationError("os_version", os_version or "",
                                      "an OS version (e.g. 9.4 for rhel, 15.6 for sles): required for %s" % dist)
            os_version = DEFAULT_OS_VERSION[dist]
        if dist in OS_VERSIONS:
            if os_version not in OS_VERSIONS[dist]:
                raise ValidationError("os_version", os_version,
                                      "for %s one of %s" % (dist, ", ".join(OS_VERSIONS[dist])))
            if os_version == "20":
                warnings.append("os_version 20 (Ubuntu 20.04) is deprecated by CanvOS; prefer 22.04 or 24.04.")
            os_version = OS_VERSION_ALIASES.get(os_version, os_version)
        elif not _OS_VERSION_RE.match(os_version):
            raise ValidationError("os_version", os_version, "a numeric version such as 9.4 or 15.6 for %s" % dist)
        cfg["os_version"] = os_version

        k8s_dist = cfg["k8s_distribution"]
        if k8s_dist == "":
            raise ValidationError("k8s_distribution", k8s_dist,
                                  _allowed("k8s_distribution") + " (empty is refused: CanvOS would silently build "
                                  "no provider image)")
        if k8s_dist not in K8S_DISTRIBUTIONS:
            raise ValidationError("k8s_distribution", k8s_dist, _allowed("k8s_distribution"))

        if cfg["arch"] not in ARCHES:
            raise ValidationError("arch", cfg["arch"], _allowed("arch"))

        iso = cfg["iso_name"]
        if not _ISO_NAME_RE.match(iso) or len(iso) > 200:
            hint = " (leave out the .iso extension)" if iso.lower().endswith(".iso") else ""
            raise ValidationError("iso_name", iso, _allowed("iso_name") + hint)

        for name in ("pe_version", "kairos_version"):
            value = cfg[name]
            if re.match(r"^[0-9]", value):
                value = "v" + value  # 4.4.12 as printed by the Palette API -> the v4.4.12 tag
            if not _RELEASE_RE.match(value):
                raise ValidationError(name, cfg[name], _allowed(name))
            cfg[name] = value

        # Versions table and the build matrix.
        table_path = cfg["k8s_versions_file"]
        if table_path:
            table_path = _validate_file("k8s_versions_file", table_path, base_dir)
            cfg["k8s_versions_file"] = table_path
        table = load_versions(table_path or None)
        table_name = ("the versions table %s" % table_path) if table_path else "the shipped versions table"
        listed = table.get(k8s_dist)
        if not listed:
            raise ValidationError("k8s_distribution", k8s_dist,
                                  "a distribution with versions in %s (it lists: %s)"
                                  % (table_name, ", ".join(sorted(d for d in table if table[d])) or "none"))
        requested = []
        for version in cfg["k8s_version"]:
            version = version[1:] if version[:1] in ("v", "V") else version
            if not _K8S_VERSION_RE.match(version) or version not in listed:
                raise ValidationError("k8s_version", version,
                                      "a version listed for %s in %s: %s (or point k8s_versions_file at your own table)"
                                      % (k8s_dist, table_name, ", ".join(listed)))
            if version not in requested:
                requested.append(version)
        cfg["k8s_version"] = requested
        k8s_versions = list(requested) if requested else list(listed)
        if not requested and len(listed) > 3:
            warnings.append("k8s_version is empty: the build matrix is every %s version in %s (%d provider images "
                            "of about 4-5 GB each); set k8s_version to build only what you need."
                            % (k8s_dist, table_name, len(listed)))

        if cfg["fips_enabled"] and cfg["update_kernel"]:
            raise ValidationError("update_kernel", True,
                                  "false when fips_enabled is true (a FIPS build keeps its certified kernel)")
        if cfg["cis_hardening"] and (dist != "ubuntu" or cfg["arch"] != "amd64"):
            raise ValidationError("cis_hardening", True,
                                  "false unless os_distribution is ubuntu and arch is amd64 (the CIS hardening "
                                  "script supports only Ubuntu amd64; got %s %s)" % (dist, cfg["arch"]))

        # Upstream repositories. The luet repository follows the registry the user chose (a mirror), never the FIPS
        # switch: CanvOS keeps SPECTRO_LUET_REPO on palette-images for FIPS builds (CONFORMANCE 2.1).
        fips = cfg["fips_enabled"] or k8s_dist == "kubeadm-fips"
        validate_registry_path("spectro_pub_repo", cfg["spectro_pub_repo"])
        if not cfg["spectro_luet_repo"]:
            cfg["spectro_luet_repo"] = cfg["spectro_pub_repo"] + "/edge"
        if fips and cfg["spectro_pub_repo"] == DEFAULT_SPECTRO_PUB_REPO:
            cfg["spectro_pub_repo"] = FIPS_SPECTRO_PUB_REPO
        validate_registry_path("spectro_luet_repo", cfg["spectro_luet_repo"])

        # Base image.
        if cfg["base_image"]:
            validate_image_ref("base_image", cfg["base_image"])
        elif dist in ("rhel", "sles"):
            raise ValidationError("base_image", "",
                                  "an image reference of a Kairos %s core image: required for os_distribution %s "
                                  "(CanvOS publishes no default base image for it)" % (dist, dist))
        elif cfg["fips_enabled"]:
            raise ValidationError("base_image", "",
                                  "an image reference of a FIPS-enabled Kairos core image: required when "
                                  "fips_enabled is true")
        else:
            cfg["base_image"] = default_base_image(cfg)

        # Proxies.
        for name in ("http_proxy", "https_proxy"):
            if cfg[name]:
                validate_proxy(name, cfg[name])
        entries = [e.strip() for e in cfg["no_proxy"].split(",") if e.strip()]
        for entry in entries:
            if not _NO_PROXY_ENTRY_RE.match(entry):
                raise ValidationError("no_proxy", cfg["no_proxy"], _allowed("no_proxy") + " (bad entry %r)" % entry)
        cfg["no_proxy"] = ",".join(entries)

        # Files: refuse a path the user gave that does not exist (CanvOS silently ignores typos).
        cfg["proxy_cert_paths"] = [_validate_file("proxy_cert_paths", p, base_dir) for p in cfg["proxy_cert_paths"]]
        for name in ("clusterconfig", "edge_custom_config"):
            if cfg[name]:
                cfg[name] = _validate_file(name, cfg[name], base_dir)

        # AWS.
        if cfg["region"] and not _REGION_RE.match(cfg["region"]):
            raise ValidationError("region", cfg["region"], _allowed("region"))
        bucket = cfg["s3_bucket"]
        if bucket:
            bad = (not _S3_BUCKET_RE.match(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket
                   or bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")))
            if not bad:
                try:
                    ipaddress.IPv4Address(bucket)
                    bad = True
                except ValueError:
                    pass
            if bad:
                raise ValidationError("s3_bucket", bucket, _allowed("s3_bucket"))
        key = cfg["s3_key"]
        if key and (not _S3_KEY_RE.match(key) or key.startswith("/") or len(key.encode("utf-8")) > 1024):
            raise ValidationError("s3_key", key, _allowed("s3_key"))
        if cfg["ami_name"] and not _AMI_NAME_RE.match(cfg["ami_name"]):
            raise ValidationError("ami_name", cfg["ami_name"], _allowed("ami_name"))

        # Upstream image sources.
        defaults = default_sources(cfg)
        for name in ("provider_source_image", "stylus_framework_image"):
            if cfg[name]:
                validate_image_ref(name, cfg[name])
            else:
                cfg[name] = defaults[name]
        if cfg["k8s_payload_image"]:
            template = cfg["k8s_payload_image"]
            if "{k8s_version}" not in template:
                raise ValidationError("k8s_payload_image", template,
                                      "an image reference template containing {k8s_version}, e.g. "
                                      "%s" % defaults["k8s_payload_image"])
            try:
                sample = template.format(k8s_version="1.0.0")
            except (KeyError, IndexError, ValueError):
                raise ValidationError("k8s_payload_image", template,
                                      "an image reference template whose only placeholder is {k8s_version}")
            validate_image_ref("k8s_payload_image", sample)
        else:
            cfg["k8s_payload_image"] = defaults["k8s_payload_image"]

        # Derived tags must be valid Docker tags (at most 128 characters).
        for version in k8s_versions:
            full_tag = provider_tag(k8s_dist, version, cfg["pe_version"], tag)
            if len(full_tag) > 128:
                raise ValidationError("custom_tag", tag, _allowed("custom_tag") + " (the provider image tag %s "
                                      "would exceed Docker's 128 characters)" % full_tag)

        # 3. Advice.
        if not tag:
            warnings.append("custom_tag is empty: provider image tags end with the PE version (no custom tag). The "
                            "stock BYOOS pack's system.uri appends -<customTag>, so it will not match: use the "
                            "system.uri from this plan's manifest, or set a custom_tag.")
        if cfg["image_registry"] == "ttl.sh" or cfg["image_registry"].startswith("ttl.sh/"):
            warnings.append("image_registry is ttl.sh: images pushed there expire (24 hours by default); hosts that "
                            "install or upgrade later will fail to pull the provider image.")

        cfg["k8s_versions"] = k8s_versions
        return cls(cfg, table, explicit, warnings, deprecations)

    # -----------------------------------------------------------------------------------------------------------
    def as_dict(self, mask=False):
        """The normalised configuration (every option, defaults applied; ``k8s_versions`` = the build matrix)."""
        cfg = copy.deepcopy(dict(self._config))
        if mask:
            for name in ("http_proxy", "https_proxy"):
                cfg[name] = mask_url(cfg[name])
        return cfg

    @property
    def config(self):
        return self.as_dict()

    def secrets(self):
        """Values that must never be printed (proxy passwords)."""
        found = []
        for name in ("http_proxy", "https_proxy"):
            password = url_password(self._config[name])
            if password:
                found.append(password)
        return found

    @property
    def image_tag(self):
        """PE_VERSION[-CUSTOM_TAG]: the tag part shared by provider images and the installer image."""
        cfg = self._config
        return "%s-%s" % (cfg["pe_version"], cfg["custom_tag"]) if cfg["custom_tag"] else cfg["pe_version"]

    def builds(self):
        cfg = self._config
        out = []
        for version in cfg["k8s_versions"]:
            tag = provider_tag(cfg["k8s_distribution"], version, cfg["pe_version"], cfg["custom_tag"])
            out.append({
                "k8s_version": version,
                "image": "%s/%s:%s" % (cfg["image_registry"], cfg["image_repo"], tag),
                "tag": tag,
                "k8s_payload_image": cfg["k8s_payload_image"].format(k8s_version=version),
            })
        return out

    def manifest(self):
        """The BYOOS (edge-native-byoi) pack option values, as CanvOS prints them after a provider build."""
        cfg = self._config
        prefix = ".spectro.pack.edge-native-byoi.options.system"
        uri = ("{{ %s.registry }}/{{ %s.repo }}:{{ %s.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}"
               "-{{ %s.peVersion }}" % (prefix, prefix, prefix, prefix))
        if cfg["custom_tag"]:
            uri += "-{{ %s.customTag }}" % prefix
        return OrderedDict([
            ("system.uri", uri),
            ("system.registry", cfg["image_registry"]),
            ("system.repo", cfg["image_repo"]),
            ("system.k8sDistribution", cfg["k8s_distribution"]),
            ("system.osName", cfg["os_distribution"]),
            ("system.peVersion", cfg["pe_version"]),
            ("system.customTag", cfg["custom_tag"]),
            ("system.osVersion", cfg["os_version"]),
        ])

    def plan(self, mask=False):
        """The build plan (the build_config module's result keys)."""
        cfg = self._config
        builds = self.builds()
        return {
            "config": self.as_dict(mask=mask),
            "provider_images": [b["image"] for b in builds],
            "builds": builds,
            "base_image": cfg["base_image"],
            "sources": {
                "provider_source_image": cfg["provider_source_image"],
                "stylus_framework_image": cfg["stylus_framework_image"],
                "k8s_payload_image": cfg["k8s_payload_image"],
            },
            "installer_image": "palette-installer-image:%s" % self.image_tag,
            "iso_path": "build/%s.iso" % cfg["iso_name"],
            "manifest": dict(self.manifest()),
        }

    # -----------------------------------------------------------------------------------------------------------
    def arg_values(self, mask=False):
        """The configuration as ordered ``.arg`` key/values (CanvOS names first, in template order)."""
        cfg = self.as_dict(mask=mask)
        values = OrderedDict()
        for name in OPTIONS:
            if name in DERIVED_OPTIONS and name not in self._explicit:
                if name == "image_repo":
                    # As the CanvOS template writes it: follows OS_DISTRIBUTION in both CanvOS and this reader.
                    values["IMAGE_REPO"] = _arg_file.Raw("$OS_DISTRIBUTION")
                continue
            value = cfg[name]
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list):
                value = ",".join(value)
            if value == "" and name not in ARG_KEEP_EMPTY:
                continue
            values[name.upper()] = value
        return values

    def arg_text(self, mask=False):
        """The configuration as ``.arg`` text (valid for CanvOS and for read_arg_file)."""
        return _arg_file.render_arg_text(self.arg_values(mask=mask), header=ARG_HEADER)

    def write_arg(self, path, mode=None):
        """Write ``arg_text()`` to ``path`` atomically (default mode: ``arg_file_mode``); return the text."""
        text = self.arg_text()
        atomic_write(path, text, mode=self.arg_file_mode if mode is None else mode)
        return text

    @property
    def arg_file_mode(self):
        """0600 when a proxy URL carries credentials, else 0644."""
        return 0o600 if self.secrets() else 0o644


# ---------------------------------------------------------------------------------------------------------------
# Derivations (pure functions of a partially normalised configuration)

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


# ---------------------------------------------------------------------------------------------------------------
# .arg files

ARG_ALIASES = {"PROXY_CERT_PATH": "proxy_cert_path", "PROXY_CERT_PATHS": "proxy_cert_paths"}
# Keys CanvOS v4.10.0 reads (Earthfile ARGs and earthly.sh, CONFORMANCE 0.2, 1.5-1.7) that this collection does not use.
CANVOS_ONLY_KEYS = frozenset((
    "TWO_NODE", "IS_UKI", "IS_MAAS", "MAAS_IMAGE_NAME", "UBUNTU_PRO_ATTACH", "MY_ORG", "UKI_BRING_YOUR_OWN_KEYS",
    "INCLUDE_MS_SECUREBOOT_KEYS", "AUTO_ENROLL_SECUREBOOT_KEYS", "EXPIRATION_IN_DAYS", "DRBD_VERSION", "KINE_VERSION",
    "CMDLINE", "BRANDING", "EFI_MAX_SIZE", "EFI_IMG_SIZE", "IS_CLOUD_IMAGE", "OSBUILDER_VERSION", "OSBUILDER_IMAGE",
    "AURORABOOT_VERSION", "AURORABOOT_IMAGE", "K3S_PROVIDER_VERSION", "KUBEADM_PROVIDER_VERSION",
    "RKE2_PROVIDER_VERSION", "NODEADM_PROVIDER_VERSION", "CANONICAL_PROVIDER_VERSION", "K3S_FLAVOR_TAG",
    "RKE2_FLAVOR_TAG", "BUILDER_3RDPARTY_VERSION", "SPECTRO_THIRD_PARTY_IMAGE", "ALPINE_TAG", "ALPINE_IMG",
    "KAIROS_BASE_IMAGE_URL", "EARTHLY_VERSION", "ETCD_VERSION", "BASE_IMAGE_URL", "GOLANG_VERSION",
))
# Keys only this collection reads: CanvOS ignores them.
EXTENSION_KEYS = frozenset(("PROXY_CERT_PATHS", "K8S_VERSIONS_FILE", "PROVIDER_SOURCE_IMAGE", "STYLUS_FRAMEWORK_IMAGE",
                            "K8S_PAYLOAD_IMAGE", "AMI_NAME"))
# CanvOS declares lower-case proxy ARGs too, but passes only the upper-case ones to its build (CONFORMANCE 1.2).
_LOWER_CASE_CANVOS_KEYS = ("http_proxy", "https_proxy", "no_proxy")
# How CanvOS reads a boolean that is not exactly "true" or "false": it compares with the literal (CONFORMANCE 1.4).
_CANVOS_BOOL_READING = {
    "update_kernel": "as true in its base image (anything but the exact word false updates the kernel) and as false "
                     "in its provider images (no kernel headers)",
}
_CANVOS_BOOL_DEFAULT_READING = "as false (only the exact word true turns it on)"


class ArgOptions(dict):
    """Options read from a ``.arg`` file.

    ``ignored``: keys this collection does not use; ``notes``: advice; ``differences``: one message per key that
    CanvOS reads differently from this collection (another case, unknown keys, empty or non-literal booleans).
    """

    def __init__(self, *args, **kwargs):
        super(ArgOptions, self).__init__(*args, **kwargs)
        self.ignored = []
        self.notes = []
        self.differences = []


def _key_differences(key, spelled, name):
    """Messages for a key CanvOS reads differently because of its spelling or because one side ignores it."""
    if name not in OPTIONS and name not in DEPRECATED_OPTIONS:
        if key in CANVOS_ONLY_KEYS and spelled == key:
            return ["%s: CanvOS reads this key; edgeforge.artifacts does not support it and ignores it." % key]
        return ["%s: neither CanvOS nor edgeforge.artifacts reads this key (a typo?); ignored." % spelled]
    if spelled != key:
        if spelled in _LOWER_CASE_CANVOS_KEYS:
            return ["%s: CanvOS reads it as its own lower-case build argument and never passes it to the build (only "
                    "%s); edgeforge.artifacts reads it as %s." % (spelled, key, key)]
        return ["%s: CanvOS matches keys case-sensitively, ignores %s and keeps its default for %s; "
                "edgeforge.artifacts reads it as %s." % (spelled, spelled, key, key)]
    if key in EXTENSION_KEYS:
        return ["%s: an edgeforge.artifacts key; CanvOS ignores it." % key]
    return []


def _value_differences(key, name, value):
    """(keep the value?, messages) for a value CanvOS reads differently (booleans, K8S_VERSION lists)."""
    if OPTIONS.get(name, ("",))[0] == "bool" and value not in ("true", "false"):
        canvos = _CANVOS_BOOL_READING.get(name, _CANVOS_BOOL_DEFAULT_READING)
        default = "true" if OPTIONS[name][1] else "false"
        if value == "":
            return False, ["%s is empty: edgeforge.artifacts uses its default (%s); CanvOS would read it %s."
                           % (key, default, canvos)]
        return True, ["%s=%s: edgeforge.artifacts reads it as a boolean; CanvOS compares with the exact word and "
                      "would read it %s." % (key, value, canvos)]
    if name == "k8s_version" and "," in value:
        return True, ["K8S_VERSION=%s: edgeforge.artifacts builds each listed version; CanvOS reads one version (a "
                      "list gives it an invalid image tag)." % value]
    return True, []


def read_arg_file(path):
    """Read a CanvOS ``.arg`` file into build_config options (lower-case names).

    Keys are matched case-insensitively; relative paths are resolved against the file's directory (the CanvOS
    checkout); the template's "if it exists" defaults (CLUSTERCONFIG=spc.tgz, EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml)
    are dropped with a note when the file is absent, as CanvOS does. Keys this collection does not use are listed in
    ``.ignored``. An empty boolean takes this collection's default. Every key CanvOS reads differently gets a message
    in ``.differences``.
    """
    raw = _arg_file.read_arg_file(path)
    base_dir = os.path.dirname(os.path.abspath(path))
    options = ArgOptions()
    for key, value in raw.items():
        name = ARG_ALIASES.get(key, key.lower())
        options.differences += _key_differences(key, raw.spelled.get(key, key), name)
        if name not in OPTIONS and name not in DEPRECATED_OPTIONS:
            options.ignored.append(key)
            continue
        keep, messages = _value_differences(key, name, value)
        options.differences += messages
        if not keep:
            continue
        if name == "image_repo" and raw.raw.get(key) in ("$OS_DISTRIBUTION", "${OS_DISTRIBUTION}"):
            continue  # the template's "follow OS_DISTRIBUTION" is our default too: keep it a default
        if name in CANVOS_IF_EXISTS_DEFAULTS and value == CANVOS_IF_EXISTS_DEFAULTS[name] \
                and not os.path.isfile(os.path.join(base_dir, value)):
            options.notes.append("%s=%s (the CanvOS template default) names no file next to %s: ignored, as "
                                 "CanvOS does." % (key, value, path))
            continue
        if name in PATH_OPTIONS and value:
            if name == "proxy_cert_paths":
                value = ",".join(_resolve_path(p, base_dir) for p in _to_list(name, value, r"\s*,\s*"))
            else:
                value = _resolve_path(value, base_dir)
        options[name] = value
    if raw.unresolved:
        options.notes.append("%s: $%s named no earlier key and expanded to an empty string."
                             % (path, ", $".join(sorted(set(raw.unresolved)))))
    return options


def write_arg_file(path, config):
    """Write ``config`` (a BuildConfig or an options dict) as a CanvOS ``.arg`` file atomically; return the text.

    Mode 0600 when a proxy URL carries credentials.
    """
    if not isinstance(config, BuildConfig):
        config = BuildConfig.from_options(config)
    return config.write_arg(path)
