# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A generated Docker build context, its inputs digest, and the checks of what users put into it.

Each context carries an *inputs digest* (configuration that affects the image, Dockerfile text, every file copied
in with its mode, the ids of the images it reads from); it is stored as the ``io.edgeforge.inputs-digest`` label, so
an image whose label matches is up to date and is not rebuilt.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    ValidationError, atomic_write, inputs_digest, sha256_hex)


LABEL_DIGEST = "io.edgeforge.inputs-digest"
LABEL_KIND = "io.edgeforge.kind"
LABEL_PREFIX = "io.edgeforge."
FORMAT_VERSION = "2"  # bump when the generated Dockerfiles change meaning, to rebuild everything once

_FROM_RE = re.compile(r"^\s*FROM\s", re.IGNORECASE | re.MULTILINE)
_CERT_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


class BuildContext:
    """A generated Docker build context held in memory until written: Dockerfile text + files + digest parts.

    ``files`` maps a context-relative path to bytes; ``modes`` gives the mode of a file that is not 0644 (COPY keeps
    the mode a file has in the context).
    """

    def __init__(self, kind, name, dockerfile, files=None, sources=None, config=None, labels=None, modes=None):
        self.kind = kind
        self.name = name
        self.files = dict(files or {})
        self.modes = dict(modes or {})
        self.sources = dict(sources or {})  # role -> image id (or reference when the id is unknown)
        self.config = dict(config or {})
        self.labels = dict(labels or {})
        self.labels[LABEL_KIND] = kind
        # Metadata labels in one LABEL instruction (one build step); only the digest is added by the engine.
        self.dockerfile = dockerfile.rstrip("\n") + "\nLABEL " + " ".join(
            "%s=%s" % (key, json.dumps(str(value))) for key, value in sorted(self.labels.items())) + "\n"
        self.digest = inputs_digest({
            "format": FORMAT_VERSION,
            "kind": kind,
            "dockerfile": self.dockerfile,
            "files": {path: sha256_hex(data) for path, data in sorted(self.files.items())},
            "modes": {path: "%o" % mode for path, mode in sorted(self.modes.items())},
            "sources": self.sources,
            "config": self.config,
        })
        self.labels[LABEL_DIGEST] = self.digest

    @property
    def build_labels(self):
        """Labels the engine adds at build time (only the inputs digest; the rest is in the Dockerfile)."""
        return {LABEL_DIGEST: self.digest}

    @property
    def short_digest(self):
        return self.digest.split(":", 1)[1][:16]

    def write(self, directory):
        """Write the context under ``directory`` (replacing what a previous run left) and return its path."""
        os.makedirs(directory, exist_ok=True)
        wanted = set(self.files) | {"Dockerfile"}
        for root, _dirs, names in os.walk(directory):
            for name in names:
                rel = os.path.relpath(os.path.join(root, name), directory)
                if rel not in wanted:
                    os.unlink(os.path.join(root, name))
        atomic_write(os.path.join(directory, "Dockerfile"), self.dockerfile)
        for rel, data in self.files.items():
            path = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, data, mode=self.modes.get(rel, 0o644))
        return directory


def context_dir_name(context):
    """A file-system friendly directory name for a context."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", context.name.split("/")[-1])
    return "%s-%s" % (context.kind, name)


def subset(config, keys):
    return {key: config.get(key) for key in keys}


# ---------------------------------------------------------------------------------------------------------------
# What users put into the builds, checked before any build starts

def builds_of_share(builds, share):
    """The builds of the plan for the Kubernetes versions in ``share`` (a build host's part of the matrix).

    An empty share builds nothing; a version outside the configuration's matrix is an error.
    """
    matrix = [build["k8s_version"] for build in builds]
    unknown = [version for version in share if version not in matrix]
    if unknown:
        raise ValidationError("k8s_versions", unknown, "versions of the configuration's matrix (%s)"
                              % ", ".join(matrix))
    return [build for build in builds if build["k8s_version"] in share]


def user_dockerfile_text(dockerfile=None, dockerfile_content=None):
    """The user's Dockerfile customisations (instructions run on top of the base image), validated."""
    text = ""
    if dockerfile:
        if not os.path.isfile(dockerfile):
            raise ValidationError("dockerfile", dockerfile, "the path of an existing file of Dockerfile instructions")
        with open(dockerfile, "r", encoding="utf-8") as handle:
            text = handle.read()
    if dockerfile_content:
        text = (text.rstrip("\n") + "\n" if text else "") + dockerfile_content
    if _FROM_RE.search(text):
        raise ValidationError("dockerfile", (dockerfile or "(inline)"),
                              "Dockerfile instructions without FROM: they run on top of the base image "
                              "(RUN, ENV, COPY --from=<image> ...); the base image is set by base_image")
    return text.strip("\n")


def read_cert_files(paths):
    """{context-relative name: bytes} for the extra CA certificates (names end in .crt, kept unique)."""
    files = {}
    for index, path in enumerate(paths or []):
        if not os.path.isfile(path):
            raise ValidationError("proxy_cert_paths", path, "paths of existing PEM certificate files")
        with open(path, "rb") as handle:
            data = handle.read()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValidationError("proxy_cert_paths", path, "PEM certificate files (-----BEGIN CERTIFICATE-----)")
        stem = _CERT_NAME_RE.sub("-", os.path.splitext(os.path.basename(path))[0]).strip("-") or "cert"
        files["certs/%02d-%s.crt" % (index, stem)] = data
    return files


def read_tree(directory, prefix):
    """({prefix/relative path: bytes}, {path: mode}) of every regular file under ``directory``."""
    files = {}
    modes = {}
    if not directory or not os.path.isdir(directory):
        return files, modes
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            if os.path.isfile(path):
                rel = "%s/%s" % (prefix, os.path.relpath(path, directory))
                with open(path, "rb") as handle:
                    files[rel] = handle.read()
                if os.stat(path).st_mode & 0o111:
                    modes[rel] = 0o755
    return files, modes


def proxy_build_args(config):
    """The engine's predefined proxy build args (never persisted in the image), upper and lower case."""
    args = {}
    for key in ("http_proxy", "https_proxy", "no_proxy"):
        value = config.get(key) or ""
        if value:
            args[key.upper()] = value
            args[key] = value
    return args
