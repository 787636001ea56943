# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build options to and from CanvOS ``.arg`` files, naming every key CanvOS would read differently.

``read_arg_file(path)`` returns the options of a ``.arg`` file; ``write_arg_file(path, config)`` writes one.
The dotenv syntax itself is ``module_utils/arg_file.py``.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils import arg_file as _arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.plan import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.rules import resolve_path, to_list
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.schema import BY_NAME

# The CanvOS template's defaults of these two mean "use it if it exists": dropped with a note when absent.
CANVOS_IF_EXISTS_DEFAULTS = {"clusterconfig": "spc.tgz", "edge_custom_config": ".edge-custom-config.yaml"}
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
# CanvOS declares lower-case proxy ARGs too, but passes only the upper-case ones to its build (CONFORMANCE 1.2).
_LOWER_CASE_CANVOS_KEYS = ("http_proxy", "https_proxy", "no_proxy")


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


def _key_differences(key, spelled, option):
    """Messages for a key CanvOS reads differently because of its spelling or because one side ignores it."""
    if option is None:
        if key in CANVOS_ONLY_KEYS and spelled == key:
            return ["%s: CanvOS reads this key; edgeforge.artifacts does not support it and ignores it." % key]
        return ["%s: neither CanvOS nor edgeforge.artifacts reads this key (a typo?); ignored." % spelled]
    if spelled != key:
        if spelled in _LOWER_CASE_CANVOS_KEYS:
            return ["%s: CanvOS reads it as its own lower-case build argument and never passes it to the build (only "
                    "%s); edgeforge.artifacts reads it as %s." % (spelled, key, key)]
        return ["%s: CanvOS matches keys case-sensitively, ignores %s and keeps its default for %s; "
                "edgeforge.artifacts reads it as %s." % (spelled, spelled, key, key)]
    if not option.canvos:
        return ["%s: an edgeforge.artifacts key; CanvOS ignores it." % key]
    return []


def _value_differences(key, option, value):
    """(keep the value?, messages) for a value CanvOS reads differently (booleans, K8S_VERSION lists)."""
    if option.type == "bool" and value not in ("true", "false"):
        default = "true" if option.default else "false"
        if value == "":
            return False, ["%s is empty: edgeforge.artifacts uses its default (%s); CanvOS would read it %s."
                           % (key, default, option.canvos_bool)]
        return True, ["%s=%s: edgeforge.artifacts reads it as a boolean; CanvOS compares with the exact word and "
                      "would read it %s." % (key, value, option.canvos_bool)]
    if option.name == "k8s_version" and "," in value:
        return True, ["K8S_VERSION=%s: edgeforge.artifacts builds each listed version; CanvOS reads one version (a "
                      "list gives it an invalid image tag)." % value]
    return True, []


def _option_value(option, value, base_dir):
    """The value as an option: relative paths made absolute against the file's directory."""
    if option.name == "proxy_cert_paths":
        return ",".join(resolve_path(p, base_dir) for p in to_list(option.name, value, r"\s*,\s*"))
    if option.type == "path" and value:
        return resolve_path(value, base_dir)
    return value


def _canvos_default_is_absent(option, value, base_dir):
    return CANVOS_IF_EXISTS_DEFAULTS.get(option.name) == value and not os.path.isfile(os.path.join(base_dir, value))


def read_arg_file(path):
    """Read a CanvOS ``.arg`` file into build_config options (lower-case names).

    Keys are matched case-insensitively; relative paths are resolved against the file's directory (the CanvOS
    checkout); the template's "if it exists" defaults (CLUSTERCONFIG=spc.tgz,
    EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml) are dropped with a note when the file is absent, as CanvOS does.
    Keys this collection does not use are listed in ``.ignored``. An empty boolean takes this collection's default.
    Every key CanvOS reads differently gets a message in ``.differences``.
    """
    raw = _arg_file.read_arg_file(path)
    base_dir = os.path.dirname(os.path.abspath(path))
    options = ArgOptions()
    for key, value in raw.items():
        option = BY_NAME.get(key.lower())
        if option is not None and option.scope == "module":
            option = None  # ARG_FILE / DEST are no build options
        options.differences += _key_differences(key, raw.spelled.get(key, key), option)
        if option is None:
            options.ignored.append(key)
            continue
        keep, messages = _value_differences(key, option, value)
        options.differences += messages
        if not keep:
            continue
        if option.name == "image_repo" and raw.raw.get(key) in ("$OS_DISTRIBUTION", "${OS_DISTRIBUTION}"):
            continue  # the template's "follow OS_DISTRIBUTION" is our default too: keep it a default
        if _canvos_default_is_absent(option, value, base_dir):
            options.notes.append("%s=%s (the CanvOS template default) names no file next to %s: ignored, as "
                                 "CanvOS does." % (key, value, path))
            continue
        options[option.name] = _option_value(option, value, base_dir)
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
