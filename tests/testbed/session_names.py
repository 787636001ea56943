"""Names only this test session uses (unique namespaces and tags, its registries' addresses), and the removal of the
engine's image tags that hold them when the session ends: a run leaves no tags behind, the layers stay cached.

Nothing reads these tags in a later run (they are unique), so removing them never changes what a test sees.
"""

from __future__ import annotations

import docker

_MARKERS = set()
_PREFIXES = set()


def mark(name):
    """Remember ``name`` (a unique part of image references) and return it."""
    _MARKERS.add(name)
    return name


def mark_registry(host):
    """Remember a registry started for this session: every local tag under ``host/`` is the session's."""
    _PREFIXES.add(host + "/")


def is_session_tag(tag, markers=None, prefixes=None):
    markers = _MARKERS if markers is None else markers
    prefixes = _PREFIXES if prefixes is None else prefixes
    return tag.startswith(tuple(prefixes)) or any(marker in tag for marker in markers)


def remove_session_tags(client, markers=None, prefixes=None):
    """Untag the engine's images named with this session's names (noprune: the layers stay for the next run).
    Returns the tags removed."""
    removed = []
    for image in client.images.list():
        for tag in image.tags:
            if is_session_tag(tag, markers, prefixes):
                try:
                    client.api.remove_image(tag, noprune=True)
                    removed.append(tag)
                except docker.errors.APIError:  # already gone, or used by a container left running
                    pass
    return removed
