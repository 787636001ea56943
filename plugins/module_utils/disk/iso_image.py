# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installer ISO as a container image (CanvOS ``+iso-disk-image``, CONFORMANCE 5.16): a scratch image holding
only ``/disk/<ISO_NAME>.iso``, so a registry carries the ISO where a build directory does not last (an AWX job's).

Built through the Docker engine under a temporary tag, tagged with its reference when complete. The image carries the
ISO's SHA-256 as a label: an image of the reference with the same label is up to date and is not built again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import secrets
import shutil
import tempfile

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    SHA256_HEX_RE, ValidationError, sha256_file)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.references import parse_reference

SHA256_LABEL = "org.edgeforge.artifacts.iso.sha256"
NAME_LABEL = "org.edgeforge.artifacts.iso.name"
REFERENCE_RE = re.compile(r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def dockerfile(iso_file):
    return "FROM scratch\nCOPY %s /disk/%s\n" % (iso_file, iso_file)


def check_inputs(iso_path, reference, iso_sha256=None):
    """Validate before any work; returns the ISO's SHA-256 (the given one, else computed)."""
    if not reference or not REFERENCE_RE.match(reference) or "@" in reference:
        raise ValidationError("reference", reference, "an image reference with a tag, <registry>/<repo>/<name>:<tag>, "
                              "in lower case")
    if not iso_path or not os.path.isfile(iso_path):
        raise ValidationError("iso_path", iso_path, "the path of a built ISO (the installer_iso module's iso_path)")
    if not iso_path.endswith(".iso"):
        raise ValidationError("iso_path", iso_path, "a file named <ISO_NAME>.iso")
    if iso_sha256:
        digest = str(iso_sha256).strip().lower()
        if not SHA256_HEX_RE.match(digest):
            raise ValidationError("iso_sha256", iso_sha256, "the 64 hex digits of the ISO's SHA-256")
        return digest
    return sha256_file(iso_path)


def up_to_date(engine, reference, iso_sha256):
    """The engine's image of ``reference`` when it holds this very ISO, else None."""
    found = engine.image(reference)
    labels = ((found or {}).get("Config") or {}).get("Labels") or {}
    return found if labels.get(SHA256_LABEL) == iso_sha256 else None


def _stage(context, iso_path):
    """The build context: the Dockerfile and the ISO (a hard link when the filesystem allows: no copy)."""
    name = os.path.basename(iso_path)
    with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile(name))
    try:
        os.link(iso_path, os.path.join(context, name))
    except OSError:
        shutil.copyfile(iso_path, os.path.join(context, name))


def build(engine, iso_path, reference, iso_sha256, log_path=None, progress=None):
    """Build the scratch image of ``iso_path`` under a temporary tag, then tag it ``reference``; returns its id."""
    repository, _tag = parse_reference(reference)
    partial = "%s:edgeforge-partial-%s" % (repository, secrets.token_hex(4))
    # beside the ISO (same filesystem, so the ISO is linked, not copied), hidden, removed afterwards
    context = tempfile.mkdtemp(prefix=".edgeforge-iso-image-", dir=os.path.dirname(os.path.abspath(iso_path)))
    try:
        _stage(context, iso_path)
        labels = {SHA256_LABEL: iso_sha256, NAME_LABEL: os.path.basename(iso_path)}
        image_id = engine.build(context, partial, labels=labels, log_path=log_path, progress=progress,
                                label=os.path.basename(iso_path))
        engine.tag(image_id, reference)
    finally:
        engine.untag(partial)
        shutil.rmtree(context, ignore_errors=True)
    return image_id
