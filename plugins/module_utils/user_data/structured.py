# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user-data document built from the module's structured options, merged over a user-supplied document."""

from __future__ import annotations

import copy
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.schema import (
    USERS_STAGE_NAME, VMXNET3_STAGE_NAME, UserDataError, _problem)


def vmxnet3_stage(interface):
    """The documented initramfs stage that works around the VMXNET3 UDP tunnel segmentation issue."""
    if not isinstance(interface, str) or not re.match(r"^[A-Za-z0-9_.:@-]{1,15}$", interface):
        raise UserDataError([_problem("vmxnet3_interface", interface,
                                      "expected a network interface name such as ens192 (1-15 characters)")])
    return {
        "name": VMXNET3_STAGE_NAME,
        "commands": [
            "ethtool --offload %s tx-udp_tnl-segmentation off" % interface,
            "ethtool --offload %s tx-udp_tnl-csum-segmentation off" % interface,
        ],
    }


def _users_stage(users):
    """Users as the documented initramfs stage: `users: {name: {groups, passwd, ...}}`."""
    entries = {}
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not user.get("name"):
            raise UserDataError([_problem("users[%d].name" % index, None, "every user needs a name")])
        entry = {}
        for key in ("groups", "passwd", "ssh_authorized_keys", "lock_passwd"):
            if user.get(key) is not None:
                entry[key] = user[key]
        entries[user["name"]] = entry
    return {"name": USERS_STAGE_NAME, "users": entries}


def _set(doc, keys, value):
    """Set doc[k1][k2]...= value, creating mappings; skip None (option not given)."""
    if value is None:
        return
    node = doc
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _drop_none(mapping):
    return {key: value for key, value in (mapping or {}).items() if value is not None}


_NETWORK_KEYS = {
    "http_proxy": "httpProxy",
    "https_proxy": "httpsProxy",
    "no_proxy": "noProxy",
    "nameserver": "nameserver",
    "interfaces": "interfaces",
}
_INTERFACE_KEYS = {"type": "type", "ip_address": "ipAddress", "ipAddress": "ipAddress", "mask": "mask",
                   "gateway": "gateway", "nameserver": "nameserver", "mac_address": "macAddress",
                   "macAddress": "macAddress"}
_REGISTRY_KEYS = {"domain": "domain", "username": "username", "password": "password", "insecure": "insecure",
                  "encoded_password": "encodedPassword", "encodedPassword": "encodedPassword"}


def _network(network):
    out = {}
    for key, value in _drop_none(network).items():
        target = _NETWORK_KEYS.get(key, key)
        if target == "interfaces" and isinstance(value, dict):
            value = {nic: ({_INTERFACE_KEYS.get(k, k): v for k, v in _drop_none(conf).items()}
                           if isinstance(conf, dict) else conf)
                     for nic, conf in value.items()}
        out[target] = value
    return out


def structured_document(options):
    """The document described by the structured options alone (keys only for options that were given).

    ``options`` uses the module's option names: edge_host_token, palette_endpoint, project_name, project_uid,
    tags, name, registration_url, ca_certs, network, registry_credentials, install, stages, users,
    vmxnet3_interface, extra.
    """
    doc = {}
    site = ("stylus", "site")
    _set(doc, site + ("paletteEndpoint",), options.get("palette_endpoint"))
    _set(doc, site + ("edgeHostToken",), options.get("edge_host_token"))
    _set(doc, site + ("projectName",), options.get("project_name"))
    _set(doc, site + ("projectUid",), options.get("project_uid"))
    _set(doc, site + ("tags",), options.get("tags") or None)
    _set(doc, site + ("name",), options.get("name"))
    _set(doc, site + ("registrationURL",), options.get("registration_url"))
    _set(doc, site + ("caCerts",), options.get("ca_certs") or None)
    network = _network(options.get("network"))
    _set(doc, site + ("network",), network or None)
    creds = {_REGISTRY_KEYS.get(k, k): v for k, v in _drop_none(options.get("registry_credentials")).items()}
    _set(doc, ("stylus", "registryCredentials"), creds or None)
    install = _drop_none(options.get("install"))
    _set(doc, ("install",), install or None)
    stages = copy.deepcopy(options.get("stages")) or {}
    initramfs = []
    if options.get("users"):
        initramfs.append(_users_stage(options["users"]))
    if options.get("vmxnet3_interface"):
        initramfs.append(vmxnet3_stage(options["vmxnet3_interface"]))
    if initramfs:
        if "initramfs" in stages and not isinstance(stages["initramfs"], list):
            raise UserDataError([_problem("stages.initramfs", stages["initramfs"], "expected a list of steps")])
        stages["initramfs"] = list(stages.get("initramfs") or []) + initramfs
    _set(doc, ("stages",), stages or None)
    extra = options.get("extra")
    if extra:
        doc = merge_documents(doc, extra)
    return doc


def _merge_stage_steps(base, overlay):
    """Steps of one stage: a step with the same name replaces the old one; new steps are appended."""
    result = list(base)
    for step in overlay:
        name = step.get("name") if isinstance(step, dict) else None
        replaced = False
        if name:
            for index, old in enumerate(result):
                if isinstance(old, dict) and old.get("name") == name:
                    result[index] = copy.deepcopy(step)
                    replaced = True
                    break
        if not replaced and step not in result:
            result.append(copy.deepcopy(step))
    return result


def merge_documents(base, overlay, _path=()):
    """Deep-merge ``overlay`` over ``base``: mappings merge, stage step lists merge by step name, other values
    (lists included) are replaced. Neither input is modified; key order of ``base`` is kept."""
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in overlay.items():
        path = _path + (key,)
        old = result.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = merge_documents(old, value, path)
        elif len(path) == 2 and path[0] == "stages" and isinstance(old, list) and isinstance(value, list):
            result[key] = _merge_stage_steps(old, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def build_document(options, base=None):
    """The final document: ``base`` (a user-supplied document, already parsed) with structured options over it."""
    structured = structured_document(options)
    if base:
        return merge_documents(base, structured)
    return structured
