# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests, checksum files and the inputs stamp that make disk builds idempotent.

Beside each artifact: ``<name>.sha256`` (``sha256sum`` format) and ``.<name>.edgeforge-inputs`` (JSON: the digest of
every input and the artifact's checksum). The artifact is up to date when the three agree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import atomic_write, sha256_file

MIB = 1024 * 1024


def file_fingerprint(path):
    """Small files are hashed; large ones (content bundles) are identified by size and modification time."""
    if not path:
        return None
    stat = os.stat(path)
    if stat.st_size <= 64 * MIB:
        return {"sha256": sha256_file(path), "size": stat.st_size}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def stamp_path(output_path):
    return os.path.join(os.path.dirname(output_path), ".%s.edgeforge-inputs" % os.path.basename(output_path))


def read_sha256_file(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read().split()[0]
    except (OSError, IndexError):
        return None


def sha256_line(digest, filename):
    """The sha256sum format: '<hex>  <name>' (two spaces, text mode)."""
    return "%s  %s\n" % (digest, filename)


def up_to_date(output_path, digest, verify=True):
    """True when the output, its .sha256 and the stamp agree with ``digest`` (and the file matches its checksum)."""
    stamp = stamp_path(output_path)
    sha_path = output_path + ".sha256"
    if not (os.path.isfile(output_path) and os.path.isfile(sha_path) and os.path.isfile(stamp)):
        return False
    try:
        with open(stamp, "r", encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError):
        return False
    written = read_sha256_file(sha_path)
    if recorded.get("inputs") != digest or not written or recorded.get("sha256") != written:
        return False
    if verify and sha256_file(output_path) != written:
        return False
    return True


def write_stamps(output_path, checksum, digest):
    """The .sha256 file and the inputs stamp of an artifact whose checksum is known."""
    atomic_write(output_path + ".sha256", sha256_line(checksum, os.path.basename(output_path)))
    atomic_write(stamp_path(output_path), json.dumps({"inputs": digest, "sha256": checksum}, sort_keys=True) + "\n")


def write_checksum_and_stamp(output_path, digest):
    checksum = sha256_file(output_path)
    write_stamps(output_path, checksum, digest)
    return checksum


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512
