# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BYOOS (edge-native-byoi) pack manifest printed after a provider build, as a file.

Exactly the structure of the user guide: ``pack.content.images`` with the ``system.uri`` reference, the commented
drain defaults, and ``options`` with the ``system.uri`` template followed by the ``system.*`` values. Unlike CanvOS
(which prints the nearest git tag), ``system.peVersion`` is always the PE_VERSION that went into the image tags, and
``system.uri`` only appends ``-customTag`` when the tags have one.

Plain Python (no Ansible import): unit-tested without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

PACK = "edge-native-byoi"
PREFIX = ".spectro.pack.%s.options.system" % PACK
BANNER = ("PASTE THE CONTENT BELOW INTO YOUR CLUSTER PROFILE IN PALETTE REPLACING ALL THE CONTENTS IN THE PROFILE")

DRAIN_COMMENTS = [
    "  # Below config is default value, please uncomment if you want to modify default values",
    "  # drain:",
    "    # cordon: true",
    "    # timeout: 60 # The length of time to wait before giving up, zero means infinite",
    "    # gracePeriod: 60 # Period of time in seconds given to each pod to terminate gracefully. If negative, "
    "the default value specified in the pod will be used",
    "    # ignoreDaemonSets: true",
    "    # deleteLocalData: true # Continue even if there are pods using emptyDir (local data that will be deleted "
    "when the node is drained)",
    "    # force: true # Continue even if there are pods that do not declare a controller",
    "    # disableEviction: false # Force drain to use delete, even if eviction is supported. This will bypass "
    "checking PodDisruptionBudgets, use with caution",
    "    # skipWaitForDeleteTimeout: 60 # If pod DeletionTimestamp older than N seconds, skip waiting for the pod. "
    "Seconds must be greater than 0 to skip.",
]

VALUE_KEYS = ("system.registry", "system.repo", "system.k8sDistribution", "system.osName", "system.peVersion",
              "system.customTag", "system.osVersion")


def uri_template(custom_tag):
    """The ``system.uri`` template; ``-customTag`` only when there is a custom tag (CanvOS always appends it)."""
    uri = ("{{ %s.registry }}/{{ %s.repo }}:{{ %s.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}"
           "-{{ %s.peVersion }}" % (PREFIX, PREFIX, PREFIX, PREFIX))
    if custom_tag:
        uri += "-{{ %s.customTag }}" % PREFIX
    return uri


def manifest_values(config):
    """The ``options`` values for a normalised build configuration."""
    return {
        "system.uri": uri_template(config.get("custom_tag")),
        "system.registry": config["image_registry"],
        "system.repo": config["image_repo"],
        "system.k8sDistribution": config["k8s_distribution"],
        "system.osName": config["os_distribution"],
        "system.peVersion": config["pe_version"],
        "system.customTag": config.get("custom_tag") or "",
        "system.osVersion": str(config["os_version"]),
    }


_PLAIN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._/-]*$")
_YAML_WORDS = ("true", "false", "yes", "no", "on", "off", "null", "y", "n")


def _scalar(value):
    """A YAML string scalar: plain like the guide when that stays a string, else JSON double quotes."""
    value = str(value)
    if _PLAIN_RE.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)


def render(values, images=None):
    """The pack manifest text. ``images``: optional list of pushed references, listed as a trailing comment."""
    lines = [
        "pack:",
        "  content:",
        "    images:",
        "      - image: \"{{%s.uri}}\"" % PREFIX,
    ]
    lines += DRAIN_COMMENTS
    lines += ["options:", "  system.uri: %s" % _scalar(values["system.uri"])]
    for key in VALUE_KEYS:
        lines.append("  %s: %s" % (key, _scalar(values[key])))
    if images:
        lines.append("# Provider images built for this pack (system.uri resolves to one per Kubernetes version):")
        lines += ["#   %s" % image for image in images]
    return "\n".join(lines) + "\n"


def expand_uri(values, k8s_version):
    """What Palette makes of ``system.uri`` for one Kubernetes version (to check it against the pushed tags)."""
    uri = values["system.uri"]
    mapping = {
        "registry": values["system.registry"], "repo": values["system.repo"],
        "k8sDistribution": values["system.k8sDistribution"], "peVersion": values["system.peVersion"],
        "customTag": values["system.customTag"],
    }
    for key, value in mapping.items():
        uri = uri.replace("{{ %s.%s }}" % (PREFIX, key), value)
    return uri.replace("{{ .spectro.system.kubernetes.version }}", k8s_version)
