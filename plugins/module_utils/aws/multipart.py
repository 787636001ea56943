# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure side of the S3 upload: part plan, checksums, whether the object at the key is ours, what to resume.

Every part carries a CRC32 checksum that S3 verifies on receipt (ChecksumAlgorithm CRC32, the cheapest S3 offers
without awscrt); the object's metadata holds the whole image's SHA-256, so a re-run recognises it.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import MiB, S3_MAX_PART, S3_MIN_PART

S3_MAX_PARTS = 10000
META_SHA256 = "edgeforge-sha256"
META_SOURCE_SHA256 = "edgeforge-source-sha256"
META_FORMAT = "edgeforge-disk-format"
PART_CHECKSUM = "CRC32"


def effective_part_size(size, part_size, max_parts=S3_MAX_PARTS):
    """The part size actually used: the wanted one, grown (MiB-aligned) so the file fits in S3's 10,000 parts."""
    part_size = max(int(part_size), S3_MIN_PART)
    if size > part_size * max_parts:
        needed = -(-size // max_parts)
        part_size = -(-needed // MiB) * MiB
    if part_size > S3_MAX_PART:
        raise ValidationError("image_path", size, "S3 objects are at most 10,000 parts of 5 GiB")
    return part_size


def plan_parts(size, part_size, max_parts=S3_MAX_PARTS):
    """[(part_number, offset, length), ...] covering ``size`` bytes; an empty file is one empty part."""
    part_size = effective_part_size(size, part_size, max_parts)
    if size == 0:
        return [(1, 0, 0)]
    parts = []
    offset = 0
    number = 1
    while offset < size:
        length = min(part_size, size - offset)
        parts.append((number, offset, length))
        offset += length
        number += 1
    return parts


def read_range(path, offset, length):
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise EdgeforgeError("%s changed while it was read (short read at offset %d)" % (path, offset))
    return data


def crc32_b64(data):
    """S3's ChecksumCRC32 form: the big-endian CRC32, base64."""
    return base64.b64encode((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode("ascii")


def part_checksums(data):
    """(md5 hex = the S3 ETag of an unencrypted part, crc32 base64 = S3 ChecksumCRC32)."""
    return hashlib.md5(data).hexdigest(), crc32_b64(data)  # nosec - ETag, not security


def file_sha256(path, chunk_size=8 * MiB, progress=None):
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return digest.hexdigest()


def percent(done, total):
    return 100.0 if not total else round(100.0 * done / total, 1)


def format_bytes(count):
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return "%.0f %s" % (value, unit) if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return "%d B" % count  # pragma: no cover


def lower_metadata(head):
    return {str(k).lower(): v for k, v in ((head or {}).get("Metadata") or {}).items()}


def object_decision(head, size, source_sha256, disk_format, overwrite):
    """What to do with the object at the key: 'absent' (upload), 'same' (skip), 'replace' or 'refuse'.

    ``head`` is the HeadObject answer (None when there is no object). An object is the same when it was made from a
    source of the same SHA-256 in the same disk format (and, for raw, has the same size); an object without our
    metadata cannot be verified and counts as different.
    """
    if head is None:
        return "absent"
    meta = lower_metadata(head)
    stored_source = meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256)
    stored_format = meta.get(META_FORMAT, "raw")
    same = stored_source == source_sha256 and stored_format == disk_format
    if same and disk_format == "raw" and int(head.get("ContentLength", -1)) != size:
        same = False
    if same:
        return "same"
    return "replace" if overwrite else "refuse"


def describe_object(head):
    meta = lower_metadata(head)
    return "size %s, sha256 %s, format %s" % (
        head.get("ContentLength"),
        meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256) or "unknown (no %s metadata)" % META_SHA256,
        meta.get(META_FORMAT, "raw"),
    )


def object_summary(head):
    """The info module's view of an object (None when absent)."""
    if head is None:
        return None
    meta = lower_metadata(head)
    return {
        "size": head.get("ContentLength"),
        "sha256": meta.get(META_SHA256),
        "source_sha256": meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256),
        "disk_format": meta.get(META_FORMAT, "raw"),
        "etag": str(head.get("ETag", "")).strip('"'),
    }


def choose_resumable_upload(uploads, key):
    """The newest in-progress multipart upload of exactly ``key`` created with CRC32 part checksums, or None."""
    candidates = [
        u for u in uploads if u.get("Key") == key and u.get("ChecksumAlgorithm", PART_CHECKSUM) in (PART_CHECKSUM, None)
    ]
    if not candidates:
        return None
    return sorted(candidates, key=lambda u: str(u.get("Initiated", "")))[-1]


def resume_part_size(listed_parts, size, wanted_part_size):
    """The part size an interrupted upload used (all its parts but the last are equal), else the wanted one."""
    ordered = sorted(listed_parts, key=lambda p: int(p["PartNumber"]))
    if not ordered:
        return wanted_part_size
    first = ordered[0]
    if int(first["PartNumber"]) == 1:
        candidate = int(first["Size"])
        if candidate >= S3_MIN_PART and candidate * S3_MAX_PARTS >= size:
            return candidate
    return wanted_part_size


def reusable_parts(listed_parts, plan, local_checksums):
    """Part numbers of an interrupted upload whose size and ETag/ChecksumCRC32 match the local file.

    ``local_checksums(number, offset, length)`` returns (md5 hex, crc32 base64) of that part of the local file.
    A part is reused only if it can be verified: its ETag is the local MD5, or (when the store's ETag is not an MD5,
    e.g. with SSE-KMS) its ChecksumCRC32 equals the local one; a listed CRC32 that differs always disqualifies it.
    """
    by_number = {number: (offset, length) for number, offset, length in plan}
    good = {}
    for part in listed_parts:
        number = int(part["PartNumber"])
        if number not in by_number:
            continue
        offset, length = by_number[number]
        if int(part.get("Size", -1)) != length:
            continue
        md5_hex, crc_b64 = local_checksums(number, offset, length)
        remote_crc = part.get("ChecksumCRC32")
        remote_etag = str(part.get("ETag", "")).strip('"')
        if remote_crc and remote_crc != crc_b64:
            continue
        etag_is_md5 = len(remote_etag) == 32 and all(c in "0123456789abcdef" for c in remote_etag)
        if remote_etag == md5_hex or (remote_crc and not etag_is_md5):
            good[number] = {"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": crc_b64}
    return good
