# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry credentials in a Docker client configuration file (``~/.docker/config.json``), written on request."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import atomic_write
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.references import DOCKER_HUB, DOCKER_HUB_INDEX


def docker_config_entry(registry, username, password):
    """The ``auths`` entry of a ``~/.docker/config.json`` for one registry."""
    key = DOCKER_HUB_INDEX if registry in (DOCKER_HUB, "index.docker.io") else registry
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    return key, {"auth": token}


def write_docker_config(path, registry, username, password):
    """Merge one registry's credentials into a Docker config file (mode 0600). Returns True if it changed."""
    path = os.path.expanduser(path)
    data = {}
    if os.path.exists(path):
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
        data = json.loads(text) if text.strip() else {}
    key, entry = docker_config_entry(registry, username, password)
    auths = data.setdefault("auths", {})
    if auths.get(key) == entry:
        return False
    auths[key] = entry
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)
    return True
