# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disk builder image: a Debian image with the tools that turn a root filesystem into an ISO or a raw disk.

The collection builds it from :data:`BUILDER_DOCKERFILE` (shipped as ``files/builder/Dockerfile``) and reuses it while
the recipe label holds the recipe's digest.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import sha256_hex

DEFAULT_BUILDER_BASE = "debian:bookworm-slim"
BUILDER_REPOSITORY = "edgeforge-disk-builder"
BUILDER_LABEL = "io.edgeforge.disk-builder.recipe"

BUILDER_PACKAGES = ("xorriso", "grub-pc-bin", "grub-efi-amd64-bin", "grub-common", "mtools", "squashfs-tools",
                    "dosfstools", "e2fsprogs", "fdisk", "zstd", "openssl")

BUILDER_DOCKERFILE = """\
# The edgeforge.artifacts disk builder: the tools that turn an installer image's root filesystem into an
# installer ISO or a raw disk image, without privileges, loop devices or mounts.
# Built by the collection itself (edgeforge.artifacts.installer_iso / raw_disk_image) and cached by its recipe label.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \\
 && apt-get install -y --no-install-recommends %s \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
LABEL io.edgeforge.role="disk-builder"
CMD ["/bin/bash"]
""" % " ".join(BUILDER_PACKAGES)


def builder_recipe_digest(base_image=DEFAULT_BUILDER_BASE):
    return sha256_hex(BUILDER_DOCKERFILE + "\n" + base_image)


def builder_tag(base_image=DEFAULT_BUILDER_BASE):
    return "%s:%s" % (BUILDER_REPOSITORY, builder_recipe_digest(base_image)[:12])


def ensure_builder_image(engine, base_image=DEFAULT_BUILDER_BASE, proxies=None, log_path=None, progress=None):
    """Build the builder image unless one with the same recipe label exists. Returns (tag, built?)."""
    tag = builder_tag(base_image)
    digest = builder_recipe_digest(base_image)
    found = engine.image(tag)
    if found and ((found.get("Config") or {}).get("Labels") or {}).get(BUILDER_LABEL) == digest:
        return tag, False
    if progress:
        progress("building the disk builder image %s from %s" % (tag, base_image))
    context = tempfile.mkdtemp(prefix="edgeforge-builder-")
    try:
        with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
            handle.write(BUILDER_DOCKERFILE)
        buildargs = {"BASE_IMAGE": base_image}
        for key, value in (proxies or {}).items():
            if value:
                buildargs[key] = value
        engine.build(context, tag, buildargs=buildargs, labels={BUILDER_LABEL: digest}, log_path=log_path,
                     progress=progress, label="disk builder")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag, True
