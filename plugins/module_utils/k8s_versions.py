# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes versions a provider image can be built for, per distribution.

Same shape as CanvOS's ``k8s_version.json``: distribution -> list of ``"x.y.z"`` strings, oldest first
(no ``v`` prefix, no ``k3s1``/``rke2r1`` flavour suffix). An empty ``k8s_version`` builds every version listed
for the distribution, so users trim the matrix with ``k8s_version`` or with their own table
(``k8s_versions_file``: a JSON file of the same shape that replaces this one).

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def _expand(spec):
    """Turn ``{"1.27": (2, 9), ...}`` into ``["1.27.2", "1.27.9", ...]`` (minor keys and patches in order)."""
    return ["%s.%d" % (minor, patch) for minor, patches in spec for patch in patches]


# Versions shipped with the collection, oldest first. Kept as (minor, patches) pairs so a new patch release is a
# one-number edit.
K8S_VERSIONS = {
    "k3s": _expand([
        ("1.26", (14,)),
        ("1.27", (2, 9, 11, 15)),
        ("1.28", (5, 7, 11, 13, 14, 15)),
        ("1.29", (0, 2, 6, 8, 9, 10, 12, 13, 14, 15)),
        ("1.30", (4, 5, 6, 8, 9, 10, 11, 13, 14)),
        ("1.31", (1, 4, 5, 6, 7, 9, 12, 13)),
        ("1.32", (1, 2, 3, 5, 8, 10, 11)),
        ("1.33", (1, 3, 5, 7, 9)),
        ("1.34", (1, 3, 5)),
        ("1.35", (0, 1, 3)),
    ]),
    "kubeadm": _expand([
        ("1.27", (2, 5, 7, 9, 11, 15, 16)),
        ("1.28", (2, 5, 9, 11, 12, 13, 14, 15)),
        ("1.29", (0, 6, 7, 8, 9, 10, 12, 13, 14, 15)),
        ("1.30", (4, 5, 6, 8, 9, 10, 11, 13, 14)),
        ("1.31", (6, 7, 9, 12, 13, 14)),
        ("1.32", (2, 3, 5, 8, 10, 11, 12)),
        ("1.33", (1, 3, 5, 7, 9)),
        ("1.34", (1, 3, 5, 6)),
        ("1.35", (0, 2, 4, 6)),
    ]),
    "kubeadm-fips": _expand([
        ("1.27", (2, 9, 14, 15, 16)),
        ("1.28", (5, 10, 11, 12, 13, 14, 15)),
        ("1.29", (0, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15)),
        ("1.30", (4, 5, 6, 8, 9, 10, 11, 13, 14)),
        ("1.31", (6, 7, 9, 12, 13, 14)),
        ("1.32", (2, 3, 5, 8, 10, 11)),
        ("1.33", (1, 3, 5, 7, 9)),
        ("1.34", (1, 3, 5, 6)),
        ("1.35", (0, 2, 4, 6)),
    ]),
    "rke2": _expand([
        ("1.27", (2, 5, 7, 9, 11, 13, 14, 15)),
        ("1.28", (2, 5, 7, 9, 10, 11, 12, 13, 14, 15)),
        ("1.29", (3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15)),
        ("1.30", (3, 4, 5, 6, 8, 9, 10, 11, 13, 14)),
        ("1.31", (1, 4, 5, 6, 7, 9, 12, 13)),
        ("1.32", (1, 2, 3, 5, 8, 10, 11)),
        ("1.33", (1, 3, 5, 7)),
        ("1.34", (1, 3, 5)),
        ("1.35", (0, 1, 3)),
    ]),
    "nodeadm": ["1.29.0", "1.30.0", "1.31.0", "1.32.0"],
    "canonical": _expand([
        ("1.32", (3, 5, 8)),
        ("1.33", (1, 3, 5)),
        ("1.34", (1, 3)),
        ("1.35", (0, 1, 2)),
    ]),
}


def version_key(version):
    """Sort key for ``"x.y.z"`` strings."""
    return tuple(int(part) for part in version.split("."))


def validate_table(table, source="k8s_versions_file"):
    """Check a versions table's shape; return a deep copy. Raises ValidationError naming ``source``."""
    if not isinstance(table, dict) or not table:
        raise ValidationError(source, table if not isinstance(table, dict) else "{}",
                              "a JSON object mapping each Kubernetes distribution to a list of \"x.y.z\" versions")
    checked = {}
    for dist, versions in table.items():
        if not isinstance(dist, str) or not dist:
            raise ValidationError(source, dist, "distribution names are non-empty strings")
        if not isinstance(versions, list):
            raise ValidationError("%s[%s]" % (source, dist), versions, "a list of \"x.y.z\" version strings")
        for version in versions:
            if not isinstance(version, str) or not VERSION_RE.match(version):
                raise ValidationError("%s[%s]" % (source, dist), version,
                                      "versions are \"x.y.z\" strings without a 'v' prefix or flavour suffix")
        if len(set(versions)) != len(versions):
            dupes = sorted({v for v in versions if versions.count(v) > 1}, key=version_key)
            raise ValidationError("%s[%s]" % (source, dist), ", ".join(dupes), "each version listed once")
        checked[dist] = list(versions)
    return checked


def load_versions(path=None):
    """Return the versions table: the shipped one, or the JSON file at ``path`` (which replaces it)."""
    if not path:
        return copy.deepcopy(K8S_VERSIONS)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            table = json.load(handle)
    except (IOError, OSError) as err:
        raise ValidationError("k8s_versions_file", path, "a readable JSON file (%s)" % err.strerror)
    except ValueError as err:
        raise ValidationError("k8s_versions_file", path, "valid JSON in the shape of CanvOS k8s_version.json (%s)" % err)
    return validate_table(table)


def dump_versions(table):
    """JSON text of a table, in the layout of CanvOS's k8s_version.json."""
    return json.dumps(table, indent=2) + "\n"
