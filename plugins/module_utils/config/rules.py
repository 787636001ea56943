# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Value rules of the build options: one ValidationError naming the option, the value and what is allowed.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.schema import (
    ARCHES,
    K8S_DISTRIBUTIONS,
    OS_DISTRIBUTIONS,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.proxies import ALLOWED_PROXY

OS_VERSIONS = {
    "ubuntu": ("20", "20.04", "22", "22.04", "24.04"),
    "opensuse-leap": ("15.6",),
}
OS_VERSION_ALIASES = {"20": "20.04", "22": "22.04"}
DEFAULT_OS_VERSION = {"ubuntu": "22.04", "opensuse-leap": "15.6"}

_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n", "")

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
    "proxy": ALLOWED_PROXY,
    "no_proxy": "a comma-separated list of host names, domains (.example.com), IP addresses or CIDRs",
    "file": "the path of an existing file",
    "region": "an AWS region name such as us-east-1 or eu-central-1",
    "s3_bucket": ("an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
                  "letter or digit, no '..', not an IP address"),
    "s3_key": ("an S3 object key of at most 1024 bytes using letters, digits and ! - _ . * ' ( ) /, not starting "
               "with '/'"),
    "ami_name": "3-128 characters: letters, digits, spaces and ( ) [ ] . / - ' @ _",
    "image_ref": "an image reference registry/path[:tag][@digest] without a scheme, with a lowercase repository path",
}


def _allowed(param):
    return ALLOWED.get(param, "")


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


def to_bool(param, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(param, value, _allowed("bool"))


def to_str(param, value):
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict, tuple)):
        raise ValidationError(param, value, "a string")
    return str(value).strip()


def to_list(param, value, split_re=r"[,\s]+"):
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


def resolve_path(path, base_dir):
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    return os.path.normpath(path)


def validate_file(param, value, base_dir):
    path = resolve_path(value, base_dir)
    if not os.path.isfile(path):
        raise ValidationError(param, value, _allowed("file") + " (not found: %s)" % path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# One option's rule each (the first bad value raises)


def check_custom_tag(tag):
    if tag and not _CUSTOM_TAG_RE.match(tag):
        raise ValidationError("custom_tag", tag, _allowed("custom_tag"))


def check_choice(name, value, choices):
    if value not in choices:
        raise ValidationError(name, value, _allowed(name))


def check_k8s_distribution(value):
    if value == "":
        raise ValidationError("k8s_distribution", value, _allowed("k8s_distribution") + " (empty is refused: CanvOS "
                              "would silently build no provider image)")
    check_choice("k8s_distribution", value, K8S_DISTRIBUTIONS)


def os_version(dist, value, warnings):
    """The normalised OS version for ``dist`` (22 -> 22.04; the default when empty)."""
    if value is None or value == "":
        if dist not in DEFAULT_OS_VERSION:
            raise ValidationError("os_version", value or "",
                                  "an OS version (e.g. 9.4 for rhel, 15.6 for sles): required for %s" % dist)
        value = DEFAULT_OS_VERSION[dist]
    if dist not in OS_VERSIONS:
        if not _OS_VERSION_RE.match(value):
            raise ValidationError("os_version", value, "a numeric version such as 9.4 or 15.6 for %s" % dist)
        return value
    if value not in OS_VERSIONS[dist]:
        raise ValidationError("os_version", value, "for %s one of %s" % (dist, ", ".join(OS_VERSIONS[dist])))
    if value == "20":
        warnings.append("os_version 20 (Ubuntu 20.04) is deprecated by CanvOS; prefer 22.04 or 24.04.")
    return OS_VERSION_ALIASES.get(value, value)


def check_not_jetson(base_image):
    """CanvOS adds a Jetson mount overlay (/etc/kairos/mount.yaml) to these bases; this collection does not."""
    if "nvidia-jetson-agx-orin" in base_image:
        raise ValidationError("base_image", base_image, "a base image other than a Jetson (nvidia-jetson-agx-orin) "
                              "one: CanvOS adds its /etc/kairos/mount.yaml overlay to those, which this collection "
                              "does not build")


def check_iso_name(iso):
    if not _ISO_NAME_RE.match(iso) or len(iso) > 200:
        hint = " (leave out the .iso extension)" if iso.lower().endswith(".iso") else ""
        raise ValidationError("iso_name", iso, _allowed("iso_name") + hint)


def release(name, value):
    """A release tag vX.Y.Z; 4.4.12 as the Palette API prints it gets its v."""
    tag = "v" + value if re.match(r"^[0-9]", value) else value
    if not _RELEASE_RE.match(tag):
        raise ValidationError(name, value, _allowed(name))
    return tag


def k8s_version(version, listed, dist, table_name):
    """A requested Kubernetes version, without its v, that the versions table lists for ``dist``."""
    version = version[1:] if version[:1] in ("v", "V") else version
    if not _K8S_VERSION_RE.match(version) or version not in listed:
        raise ValidationError("k8s_version", version,
                              "a version listed for %s in %s: %s (or point k8s_versions_file at your own table)"
                              % (dist, table_name, ", ".join(listed)))
    return version


def no_proxy(value):
    """The NO_PROXY list, blanks removed."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    for entry in entries:
        if not _NO_PROXY_ENTRY_RE.match(entry):
            raise ValidationError("no_proxy", value, _allowed("no_proxy") + " (bad entry %r)" % entry)
    return ",".join(entries)


def check_region(region):
    if region and not _REGION_RE.match(region):
        raise ValidationError("region", region, _allowed("region"))


def check_s3_bucket(bucket):
    if not bucket:
        return
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


def check_s3_key(key):
    if key and (not _S3_KEY_RE.match(key) or key.startswith("/") or len(key.encode("utf-8")) > 1024):
        raise ValidationError("s3_key", key, _allowed("s3_key"))


def check_ami_name(name):
    if name and not _AMI_NAME_RE.match(name):
        raise ValidationError("ami_name", name, _allowed("ami_name"))


def check_payload_template(template, example):
    """A k8s_payload_image template: an image reference once {k8s_version} is filled in."""
    if "{k8s_version}" not in template:
        raise ValidationError("k8s_payload_image", template,
                              "an image reference template containing {k8s_version}, e.g. %s" % example)
    try:
        sample = template.format(k8s_version="1.0.0")
    except (KeyError, IndexError, ValueError):
        raise ValidationError("k8s_payload_image", template,
                              "an image reference template whose only placeholder is {k8s_version}")
    validate_image_ref("k8s_payload_image", sample)


def check_tag_length(full_tag, custom_tag):
    """Derived tags must be valid Docker tags (at most 128 characters)."""
    if len(full_tag) > 128:
        raise ValidationError("custom_tag", custom_tag, _allowed("custom_tag") + " (the provider image tag %s would "
                              "exceed Docker's 128 characters)" % full_tag)
