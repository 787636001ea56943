"""Helpers for the provider image tests: ask a registry's v2 API (not the local engine) what it holds."""

from __future__ import annotations

import os
import textwrap
import uuid

from tests.testbed.session_names import mark


def unique(prefix="edgeforge-test"):
    """A name no other run uses; the engine's tags holding it are removed when the session ends."""
    return mark("%s-%s" % (prefix, uuid.uuid4().hex[:8]))


def split_ref(reference, registry):
    """'HOST/name/path:tag' -> ('name/path', 'tag') for a reference on ``registry``."""
    assert reference.startswith(registry.host + "/"), reference
    path = reference[len(registry.host) + 1:]
    name, _sep, tag = path.rpartition(":")
    return name, tag


def remote_manifest(registry, reference):
    """(manifest digest, manifest JSON) from the registry, or (None, None) when the tag is absent."""
    name, tag = split_ref(reference, registry)
    status, headers, body = registry.api("/v2/%s/manifests/%s" % (name, tag))
    if status == 404:
        return None, None
    assert status == 200, (status, body)
    return headers.get("Docker-Content-Digest"), body


def remote_labels(registry, reference):
    """The image config labels of ``reference`` as stored in the registry."""
    name, _tag = split_ref(reference, registry)
    _digest, manifest = remote_manifest(registry, reference)
    assert manifest, "%s is not in the registry" % reference
    status, _headers, config = registry.api("/v2/%s/blobs/%s" % (name, manifest["config"]["digest"]))
    assert status == 200, status
    return (config.get("config") or {}).get("Labels") or {}


def write_playbook(directory, name, tasks_yaml, hosts="localhost"):
    """Write a one-play playbook running ``tasks_yaml`` (YAML text of the task list) and return its path."""
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("---\n- name: %s\n  hosts: %s\n  gather_facts: false\n  tasks:\n" % (name, hosts))
        handle.write(textwrap.indent(textwrap.dedent(tasks_yaml).strip("\n") + "\n", "    "))
    return path
