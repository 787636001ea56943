# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references (``registry/repository:tag``) and registry names, without the Docker SDK."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCKER_HUB = "docker.io"
DOCKER_HUB_INDEX = "https://index.docker.io/v1/"


def split_reference(reference):
    """``registry/repo:tag`` -> (registry, repository-with-registry, tag). The registry is ``docker.io`` for Hub."""
    repository, tag = parse_reference(reference)
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        registry = first
    else:
        registry = DOCKER_HUB
    return registry, repository, tag or "latest"


def parse_reference(reference):
    """Split ``name[:tag][@digest]`` into (name, tag-or-digest) without the Docker SDK."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, None


def registry_label(registry):
    """How the registry is named to the user (Docker Hub spelled out)."""
    return "Docker Hub (docker.io)" if registry in (DOCKER_HUB, "index.docker.io", DOCKER_HUB_INDEX) else registry
