# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes versions a provider image can be built for, per distribution.

Exactly CanvOS v4.10.0's ``k8s_version.json`` (shipped beside ``config/k8s_version_table.py``, which
``scripts/gen-k8s-versions.py`` generates from it): distribution -> list of ``"x.y.z"`` strings, oldest first
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
# The shipped table: CanvOS v4.10.0's k8s_version.json, as a generated Python module (AnsiballZ carries only .py).
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.k8s_version_table import K8S_VERSIONS


VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


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
