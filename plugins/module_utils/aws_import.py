# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raw disk image -> S3 -> EC2 snapshot import -> AMI: what CanvOS's `+aws-cloud-image` does, without its gaps.

Plain Python over boto3 (no Ansible import). The steps:

1. look for an AMI of the wanted name (available: done, nothing uploaded; pending: wait for it);
2. preflight of the VM import service role (`vmimport`), created on request with the policies AWS documents;
3. upload: multipart with a thread pool, a CRC32 checksum per part that S3 verifies on receipt (ChecksumAlgorithm
   CRC32, the cheapest S3 offers without awscrt) and the whole file's SHA-256 in the object metadata
   (`edgeforge-sha256`); an identical object is not sent again, a different
   one is replaced only with `overwrite`; an interrupted multipart upload of the same key is resumed after its parts
   are verified against the local file, and only the missing parts are sent;
4. optional conversion to a stream-optimized VMDK (qemu-img) which sends only the allocated data;
5. ImportSnapshot + bounded polling of DescribeImportSnapshotTasks;
6. RegisterImage + bounded wait for `available`; tags on the snapshot and the AMI.
"""

from __future__ import annotations

import base64
import concurrent.futures
import zlib
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from urllib.parse import unquote

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError,
    ValidationError,
    atomic_output,
    deadline_after,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws_connection import error_code


MiB = 1024 * 1024
GiB = 1024 * MiB
S3_MIN_PART = 5 * MiB
S3_MAX_PART = 5 * GiB
S3_MAX_PARTS = 10000
META_SHA256 = "edgeforge-sha256"
META_SOURCE_SHA256 = "edgeforge-source-sha256"
META_FORMAT = "edgeforge-disk-format"
VMIE_SERVICE = "vmie.amazonaws.com"

ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
BOOT_MODES = ("uefi", "legacy-bios", "uefi-preferred")
DISK_FORMATS = ("raw", "vmdk")
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
IMPORT_FAILED = ("deleted", "deleting", "cancelled", "cancelling", "error", "failed")

DEFAULTS = {
    "state": "present",
    "image_path": None,
    "image_sha256": None,
    "bucket": None,
    "key": None,
    "disk_format": "raw",
    "part_size": 64 * MiB,
    "concurrency": 4,
    "overwrite": False,
    "resume": False,
    "role_name": "vmimport",
    "create_vmimport_role": False,
    "import_description": None,
    "ami_name": None,
    "ami_description": None,
    "arch": "amd64",
    "root_device_name": "/dev/xvda",
    "volume_size": None,
    "volume_type": "gp3",
    "delete_on_termination": True,
    "boot_mode": "uefi",
    "ena_support": True,
    "tags": None,
    "wait_timeout": 3600,
    "poll_interval": 15,
    "delete_object_after": False,
    "work_dir": None,
}


# ---------------------------------------------------------------------------------------------------------------
# Pure logic (unit-tested)
# ---------------------------------------------------------------------------------------------------------------


def normalise_options(options):
    """Defaults applied and every value checked; raises ValidationError naming the parameter."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    if opts["state"] not in ("present", "info"):
        raise ValidationError("state", opts["state"], "use present or info")
    if not opts["bucket"]:
        raise ValidationError("bucket", opts["bucket"], "name the S3 bucket that receives the image")
    if opts["state"] == "present" and not opts["image_path"]:
        raise ValidationError("image_path", opts["image_path"], "give the path of the raw disk image to import")
    if not opts["key"]:
        if not opts["image_path"]:
            raise ValidationError("key", None, "give the S3 key (it defaults to the image file name)")
        opts["key"] = os.path.basename(opts["image_path"])  # CanvOS: S3_KEY defaults to the raw file name
    if not opts["ami_name"]:
        opts["ami_name"] = opts["key"]  # CanvOS: AMI_NAME defaults to S3_KEY
    if opts["image_sha256"]:
        digest = str(opts["image_sha256"]).strip().lower().split()[0]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValidationError("image_sha256", opts["image_sha256"], "give the 64 hex digits of the image's SHA-256")
        opts["image_sha256"] = digest
    if opts["disk_format"] not in DISK_FORMATS:
        raise ValidationError("disk_format", opts["disk_format"], "use raw or vmdk")
    if opts["arch"] not in ARCHITECTURES:
        raise ValidationError("arch", opts["arch"], "use amd64 (x86_64) or arm64")
    if opts["boot_mode"] not in BOOT_MODES:
        raise ValidationError("boot_mode", opts["boot_mode"], "use one of %s" % ", ".join(BOOT_MODES))
    if opts["volume_type"] not in VOLUME_TYPES:
        raise ValidationError("volume_type", opts["volume_type"], "use one of %s" % ", ".join(VOLUME_TYPES))
    part_size = int(opts["part_size"])
    if part_size < S3_MIN_PART or part_size > S3_MAX_PART:
        raise ValidationError("part_size", part_size, "S3 parts are 5 MiB to 5 GiB (give bytes)")
    opts["part_size"] = part_size
    if int(opts["concurrency"]) < 1 or int(opts["concurrency"]) > 64:
        raise ValidationError("concurrency", opts["concurrency"], "use 1 to 64 parallel part uploads")
    opts["concurrency"] = int(opts["concurrency"])
    for name in ("wait_timeout", "poll_interval"):
        if float(opts[name]) <= 0:
            raise ValidationError(name, opts[name], "use a positive number of seconds")
    if opts["volume_size"] is not None and int(opts["volume_size"]) < 1:
        raise ValidationError("volume_size", opts["volume_size"], "use a size in GiB, at least the image size")
    tags = opts["tags"] or {}
    if not isinstance(tags, dict):
        raise ValidationError("tags", tags, "use a dictionary of tag names to values")
    opts["tags"] = {str(k): str(v) for k, v in tags.items()}
    if not opts["import_description"]:
        opts["import_description"] = "Import %s" % opts["key"]
    return opts


def aws_architecture(arch):
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValidationError("arch", arch, "use amd64 (x86_64) or arm64") from None


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


def b64_digest(digest_bytes):
    return base64.b64encode(digest_bytes).decode("ascii")


def read_range(path, offset, length):
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise EdgeforgeError("%s changed while it was read (short read at offset %d)" % (path, offset))
    return data


PART_CHECKSUM = "CRC32"


def crc32_b64(data):
    """S3's ChecksumCRC32 form: the big-endian CRC32, base64."""
    return b64_digest((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))


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


def object_decision(head, size, source_sha256, disk_format, overwrite):
    """What to do with the object at the key: 'absent' (upload), 'same' (skip), 'replace' or 'refuse'.

    ``head`` is the HeadObject answer (None when there is no object). An object is the same when it was made from a
    source of the same SHA-256 in the same disk format (and, for raw, has the same size); an object without our
    metadata cannot be verified and counts as different.
    """
    if head is None:
        return "absent"
    meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
    stored_source = meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256)
    stored_format = meta.get(META_FORMAT, "raw")
    same = stored_source == source_sha256 and stored_format == disk_format
    if same and disk_format == "raw" and int(head.get("ContentLength", -1)) != size:
        same = False
    if same:
        return "same"
    return "replace" if overwrite else "refuse"


def describe_object(head):
    meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return "size %s, sha256 %s, format %s" % (
        head.get("ContentLength"),
        meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256) or "unknown (no %s metadata)" % META_SHA256,
        meta.get(META_FORMAT, "raw"),
    )


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


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_policy(document):
    if isinstance(document, dict):
        return document
    if not document:
        return {}
    text = str(document)
    if text.startswith("%7B") or text.startswith("%7b"):
        text = unquote(text)
    return json.loads(text)


def trust_allows_vmie(document):
    """True when the trust policy lets vmie.amazonaws.com call sts:AssumeRole."""
    policy = parse_policy(document)
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal") or {}
        if principal == "*":
            return True
        services = _as_list(principal.get("Service") if isinstance(principal, dict) else None)
        if VMIE_SERVICE in services:
            return True
    return False


def vmimport_trust_policy():
    """The trust policy AWS documents for the VM Import/Export service role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": VMIE_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:Externalid": "vmimport"}},
            }
        ],
    }


def vmimport_role_policy(bucket):
    """The role policy AWS documents: read the import bucket, and the EC2 snapshot/image permissions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket],
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:ModifySnapshotAttribute", "ec2:CopySnapshot", "ec2:RegisterImage", "ec2:Describe*"],
                "Resource": "*",
            },
        ],
    }


def policy_grants_bucket(document, bucket):
    policy = parse_policy(document)
    wanted = ("arn:aws:s3:::%s/*" % bucket, "arn:aws:s3:::*", "*")
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("s3:GetObject", "s3:Get*", "s3:*", "*") for a in actions):
            continue
        if any(r in wanted for r in _as_list(statement.get("Resource"))):
            return True
    return False


def import_state(task):
    """(status, message, progress) of a DescribeImportSnapshotTasks entry."""
    detail = (task or {}).get("SnapshotTaskDetail") or {}
    return (
        str(detail.get("Status", "unknown")).lower(),
        detail.get("StatusMessage") or "",
        detail.get("Progress") or "",
    )


def ami_decision(images):
    """'absent', 'available', 'pending' or 'failed' for the images sharing our AMI name (newest wins)."""
    if not images:
        return "absent", None
    ranked = {"available": 0, "pending": 1}
    image = sorted(images, key=lambda i: (ranked.get(i.get("State"), 2), i.get("CreationDate", "")))[0]
    state = image.get("State")
    if state in ("available", "pending"):
        return state, image
    return "failed", image


def tags_to_add(current, wanted):
    """Tags (AWS list form) to create so that ``current`` (dict) holds every ``wanted`` pair."""
    return [{"Key": k, "Value": v} for k, v in sorted(wanted.items()) if current.get(k) != v]


def tag_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def root_snapshot_id(image):
    for mapping in (image or {}).get("BlockDeviceMappings") or []:
        if mapping.get("DeviceName") == image.get("RootDeviceName") and mapping.get("Ebs"):
            return mapping["Ebs"].get("SnapshotId")
    for mapping in (image or {}).get("BlockDeviceMappings") or []:
        if mapping.get("Ebs", {}).get("SnapshotId"):
            return mapping["Ebs"]["SnapshotId"]
    return None


def register_request(opts, snapshot_id):
    """The RegisterImage parameters (pure; unit-tested)."""
    ebs = {
        "SnapshotId": snapshot_id,
        "VolumeType": opts["volume_type"],
        "DeleteOnTermination": bool(opts["delete_on_termination"]),
    }
    if opts.get("volume_size"):
        ebs["VolumeSize"] = int(opts["volume_size"])
    return {
        "Name": opts["ami_name"],
        "Description": opts["ami_description"]
        or "AMI for %s created from snapshot %s" % (opts["ami_name"], snapshot_id),
        "Architecture": aws_architecture(opts["arch"]),
        "RootDeviceName": opts["root_device_name"],
        "BlockDeviceMappings": [{"DeviceName": opts["root_device_name"], "Ebs": ebs}],
        "VirtualizationType": "hvm",
        "BootMode": opts["boot_mode"],
        "EnaSupport": bool(opts["ena_support"]),
    }


def import_request(opts):
    return {
        "Description": opts["import_description"],
        "DiskContainer": {
            "Description": "Snapshot for %s" % opts["key"],
            "Format": opts["disk_format"].upper(),
            "UserBucket": {"S3Bucket": opts["bucket"], "S3Key": opts["key"]},
        },
        "RoleName": opts["role_name"],
        "TagSpecifications": [
            {
                "ResourceType": "import-snapshot-task",
                "Tags": [{"Key": "Name", "Value": "Import-%s" % opts["key"]}]
                + [{"Key": k, "Value": v} for k, v in sorted(opts["tags"].items()) if k != "Name"],
            }
        ],
    }


def subprocess_env():
    """The environment for helper commands: never the AWS credentials."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("AWS_")}


def convert_to_vmdk(raw_path, dest_path, log=None):
    """qemu-img raw -> stream-optimized VMDK, written atomically (a half-written file never has the final name)."""
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        raise EdgeforgeError("disk_format vmdk needs qemu-img (Debian/Ubuntu package qemu-utils)")
    with atomic_output(dest_path, 0o600) as tmp_path:
        cmd = [qemu_img, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw_path, tmp_path]
        if log:
            log("converting %s to a stream-optimized VMDK" % raw_path)
        proc = subprocess.run(  # nosec - fixed argument list, no shell
            cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
        )
        if proc.returncode != 0:
            raise EdgeforgeError(
                "qemu-img convert failed (rc %d): %s" % (proc.returncode, proc.stderr.decode("utf-8", "replace"))
            )
    return dest_path


# ---------------------------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------------------------


class _Timer:
    def __init__(self, seconds, name):
        self.seconds = seconds
        self.name = name

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds[self.name] = round(self.seconds.get(self.name, 0) + time.monotonic() - self.start, 3)


def _missing(err, *codes):
    return error_code(err) in codes or str(getattr(err, "response", {}).get("Error", {}).get("Code")) in ("404",)


class ImageImporter:
    """One import: ``run()`` (state present) or ``info()``; returns the module result dict."""

    def __init__(self, connection, options, log=None, check_mode=False, sleep=time.sleep):
        self.conn = connection
        self.opts = normalise_options(options)
        self.log = log or (lambda message: None)
        self.check_mode = check_mode
        self.sleep = sleep
        self.seconds = {}
        self.changed = False
        self.result = {
            "s3_uri": "s3://%s/%s" % (self.opts["bucket"], self.opts["key"]),
            "bucket": self.opts["bucket"],
            "key": self.opts["key"],
            "ami_name": self.opts["ami_name"],
            "disk_format": self.opts["disk_format"],
            "bytes_sent": 0,
            "upload": "not needed",
            "import_task_id": None,
            "snapshot_id": None,
            "image_id": None,
            "image_state": None,
            "role_created": False,
            "object_deleted": False,
            "seconds": self.seconds,
        }

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _client_error(self, step, err):
        return EdgeforgeError("%s failed: %s" % (step, err))

    def _head(self):
        try:
            return self.conn.s3.head_object(Bucket=self.opts["bucket"], Key=self.opts["key"])
        except Exception as err:  # pylint: disable=broad-except
            if _missing(err, "404", "NoSuchKey", "NotFound"):
                return None
            if error_code(err) in ("NoSuchBucket",):
                raise EdgeforgeError("S3 bucket %s does not exist" % self.opts["bucket"]) from None
            raise self._client_error("HeadObject s3://%s/%s" % (self.opts["bucket"], self.opts["key"]), err) from None

    def find_images(self):
        answer = self.conn.ec2.describe_images(
            Owners=["self"],
            Filters=[{"Name": "name", "Values": [self.opts["ami_name"]]}],
        )
        return answer.get("Images", [])

    def ensure_tags(self, resource_ids, tags):
        """Shared tagging helper: create only the missing/different tags on each resource; True if any was made."""
        if not tags or not resource_ids:
            return False
        changed = False
        for resource_id in resource_ids:
            current = {}
            paginator = self.conn.ec2.get_paginator("describe_tags")
            for page in paginator.paginate(Filters=[{"Name": "resource-id", "Values": [resource_id]}]):
                current.update(tag_dict(page.get("Tags")))
            missing = tags_to_add(current, tags)
            if missing:
                changed = True
                if not self.check_mode:
                    self.conn.ec2.create_tags(Resources=[resource_id], Tags=missing)
                    self.log("tagged %s: %s" % (resource_id, ", ".join(t["Key"] for t in missing)))
        return changed

    def wait_image(self, image_id, deadline):
        last = None
        while True:
            images = self.conn.ec2.describe_images(ImageIds=[image_id]).get("Images", [])
            image = images[0] if images else {}
            state = image.get("State", "unknown")
            if state != last:
                self.log("AMI %s is %s" % (image_id, state))
                last = state
            if state == "available":
                return image
            if state in ("failed", "error", "deregistered", "invalid"):
                reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
                raise EdgeforgeError("AMI %s (%s) is %s: %s" % (image_id, self.opts["ami_name"], state, reason))
            remaining = deadline()
            if remaining <= 0:
                raise EdgeforgeError(
                    "AMI %s (%s) still %s after wait_timeout %ss; it may still become available: "
                    "raise wait_timeout and run again" % (image_id, self.opts["ami_name"], state, self.opts["wait_timeout"])
                )
            self.sleep(min(float(self.opts["poll_interval"]), max(remaining, 0.01)))

    # -- info ----------------------------------------------------------------------------------------------------

    def info(self):
        """Read-only: is the object in the bucket, is there an AMI of the name (the guide's Validate step)."""
        head = self._head()
        self.result["object_exists"] = head is not None
        self.result["object"] = None
        if head is not None:
            meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
            self.result["object"] = {
                "size": head.get("ContentLength"),
                "sha256": meta.get(META_SHA256),
                "source_sha256": meta.get(META_SOURCE_SHA256) or meta.get(META_SHA256),
                "disk_format": meta.get(META_FORMAT, "raw"),
                "etag": str(head.get("ETag", "")).strip('"'),
            }
        state, image = ami_decision(self.find_images())
        self.result["image_state"] = None if state == "absent" else (image or {}).get("State")
        self.result["image_exists"] = state != "absent"
        if image:
            self.result["image_id"] = image.get("ImageId")
            self.result["snapshot_id"] = root_snapshot_id(image)
            self.result["image"] = image
        self.result["upload"] = "not needed"
        self.result["changed"] = False
        return self.result

    # -- present -------------------------------------------------------------------------------------------------

    def run(self):
        opts = self.opts
        started = time.monotonic()
        deadline = deadline_after(float(opts["wait_timeout"]))
        # In check mode the raw image may be one that an earlier step of the same run would have built.
        image_missing = not os.path.isfile(opts["image_path"])
        if image_missing and not self.check_mode:
            raise ValidationError("image_path", opts["image_path"], "the raw disk image must be an existing file")

        with _Timer(self.seconds, "lookup"):
            state, image = ami_decision(self.find_images())
        if state in ("available", "pending"):
            self.log("AMI %s named %s exists (%s): no upload, no import" % (image["ImageId"], opts["ami_name"], state))
            if state == "pending" and not self.check_mode:
                with _Timer(self.seconds, "register"):
                    image = self.wait_image(image["ImageId"], deadline)
            self._finish_existing(image)
            self.seconds["total"] = round(time.monotonic() - started, 3)
            return self.result
        if state == "failed":
            reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
            raise EdgeforgeError(
                "an AMI named %s exists in state %s (%s): deregister %s or choose another ami_name"
                % (opts["ami_name"], image.get("State"), reason, image.get("ImageId"))
            )

        with _Timer(self.seconds, "preflight"):
            self.preflight_role()

        if image_missing:
            self.log("check mode: %s does not exist yet (an earlier step builds it): planned as a new upload"
                     % opts["image_path"])
            decision = "absent"
        else:
            decision = self.ensure_object()

        if self.check_mode:
            self.result["plan"] = {
                "upload": {"absent": "upload", "same": "skip (identical object)", "replace": "replace"}[decision],
                "import": "ImportSnapshot %s from %s" % (opts["disk_format"].upper(), self.result["s3_uri"]),
                "register": "RegisterImage %s (%s, %s)"
                % (opts["ami_name"], aws_architecture(opts["arch"]), opts["boot_mode"]),
                "role": self.result.get("role_plan", "exists"),
                "delete_object_after": bool(opts["delete_object_after"]),
            }
            self.result["upload"] = "skipped" if decision == "same" else "would upload"
            self.changed = True
            self.result["changed"] = True
            self.seconds["total"] = round(time.monotonic() - started, 3)
            return self.result

        with _Timer(self.seconds, "import"):
            snapshot_id = self.import_snapshot(deadline)
        self.result["snapshot_id"] = snapshot_id
        self.ensure_tags([snapshot_id], self._resource_tags())

        with _Timer(self.seconds, "register"):
            request = register_request(opts, snapshot_id)
            self.log("registering AMI %s from %s" % (opts["ami_name"], snapshot_id))
            image_id = self.conn.ec2.register_image(**request)["ImageId"]
            self.changed = True
            self.result["image_id"] = image_id
            self.ensure_tags([image_id], self._resource_tags())
            image = self.wait_image(image_id, deadline)
        self.result["image_state"] = image.get("State")
        self.result["image"] = image

        if opts["delete_object_after"]:
            self.conn.s3.delete_object(Bucket=opts["bucket"], Key=opts["key"])
            self.result["object_deleted"] = True
            self.log("deleted %s after the import" % self.result["s3_uri"])
        self.result["changed"] = True
        self.seconds["total"] = round(time.monotonic() - started, 3)
        self.log("AMI %s (%s) is available in %s" % (image_id, opts["ami_name"], self.conn.region))
        return self.result

    def ensure_object(self):
        """Checksum the image, compare it with the object at the key and upload it when needed.

        Returns the decision ('absent' and 'replace' upload, 'same' skips); a differing object without overwrite
        raises. In check mode nothing is uploaded.
        """
        opts = self.opts
        size = os.path.getsize(opts["image_path"])
        if opts["image_sha256"]:
            # The producer of the image (e.g. raw_disk_image and its .sha256 file) already read every byte.
            source_sha = opts["image_sha256"]
            self.log("using the given SHA-256 of %s: %s" % (opts["image_path"], source_sha))
        else:
            with _Timer(self.seconds, "checksum"):
                self.log("computing the SHA-256 of %s (%s)" % (opts["image_path"], format_bytes(size)))
                source_sha = file_sha256(opts["image_path"])
        self.result["source_sha256"] = source_sha
        head = self._head()
        decision = object_decision(head, size, source_sha, opts["disk_format"], opts["overwrite"])
        if decision == "refuse":
            raise EdgeforgeError(
                "s3://%s/%s already exists and differs from %s (object: %s; local: size %d, sha256 %s, format %s). "
                "Set overwrite: true to replace it, or choose another s3_key."
                % (opts["bucket"], opts["key"], opts["image_path"], describe_object(head), size, source_sha,
                   opts["disk_format"])
            )
        if self.check_mode:
            return decision
        if decision == "same":
            self.log("%s already holds this image (sha256 %s): not sent again" % (self.result["s3_uri"], source_sha))
            self.result["upload"] = "skipped"
        else:
            self._upload_image(size, source_sha, replacing=decision == "replace")
        return decision

    def _resource_tags(self):
        tags = {"Name": self.opts["ami_name"]}
        tags.update(self.opts["tags"])
        return tags

    def _finish_existing(self, image):
        snapshot_id = root_snapshot_id(image)
        tags_changed = self.ensure_tags([image["ImageId"]] + ([snapshot_id] if snapshot_id else []),
                                        self._resource_tags())
        self.result.update(
            {
                "image_id": image["ImageId"],
                "snapshot_id": snapshot_id,
                "image_state": image.get("State"),
                "image": image,
                "upload": "not needed",
                "changed": bool(tags_changed),
            }
        )

    # -- preflight -------------------------------------------------------------------------------------------------

    def preflight_role(self):
        opts = self.opts
        role = opts["role_name"]
        iam = self.conn.iam
        try:
            answer = iam.get_role(RoleName=role)
        except Exception as err:  # pylint: disable=broad-except
            if error_code(err) != "NoSuchEntity":
                raise self._client_error("IAM GetRole %s" % role, err) from None
            answer = None
        if answer is None:
            if not opts["create_vmimport_role"]:
                raise EdgeforgeError(
                    "the VM import service role %r does not exist; ImportSnapshot needs it. Set "
                    "create_vmimport_role: true to create it (trust vmie.amazonaws.com with external id vmimport, "
                    "S3 read on bucket %s), or create it as AWS documents (aws iam create-role --role-name %s "
                    "--assume-role-policy-document file://trust-policy.json; aws iam put-role-policy --role-name %s "
                    "--policy-name vmimport --policy-document file://role-policy.json), or name an existing role "
                    "with role_name." % (role, opts["bucket"], role, role)
                )
            self.result["role_plan"] = "create %s" % role
            if self.check_mode:
                return
            iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=json.dumps(vmimport_trust_policy()),
                Description="VM Import/Export service role (created by edgeforge.artifacts.ec2_image_import)",
            )
            iam.put_role_policy(
                RoleName=role, PolicyName="vmimport", PolicyDocument=json.dumps(vmimport_role_policy(opts["bucket"]))
            )
            self.result["role_created"] = True
            self.changed = True
            self.log("created the VM import service role %s" % role)
            return
        trust = answer["Role"].get("AssumeRolePolicyDocument")
        if not trust_allows_vmie(trust):
            raise EdgeforgeError(
                "the role %r exists but its trust policy does not let %s assume it; ImportSnapshot would fail. "
                "Update its trust policy (aws iam update-assume-role-policy) to the one AWS documents for VM "
                "Import/Export, or name another role with role_name." % (role, VMIE_SERVICE)
            )
        if opts["create_vmimport_role"]:
            self._ensure_bucket_policy(role)

    def _ensure_bucket_policy(self, role):
        iam = self.conn.iam
        bucket = self.opts["bucket"]
        names = iam.list_role_policies(RoleName=role).get("PolicyNames", [])
        for name in names:
            document = iam.get_role_policy(RoleName=role, PolicyName=name).get("PolicyDocument")
            if policy_grants_bucket(document, bucket):
                return
        policy_name = "vmimport-%s" % bucket
        self.result["role_plan"] = "add S3 read on %s to %s" % (bucket, role)
        if self.check_mode:
            return
        iam.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(vmimport_role_policy(bucket)))
        self.changed = True
        self.log("granted role %s read access to bucket %s" % (role, bucket))

    # -- upload ----------------------------------------------------------------------------------------------------

    def _upload_image(self, raw_size, source_sha, replacing):
        opts = self.opts
        if opts["disk_format"] == "vmdk":
            work_dir = opts["work_dir"] or os.path.dirname(os.path.abspath(opts["image_path"]))
            os.makedirs(work_dir, exist_ok=True)
            fd, tmp_dir_file = tempfile.mkstemp(prefix=".edgeforge-", suffix=".vmdk", dir=work_dir)
            os.close(fd)
            os.unlink(tmp_dir_file)
            try:
                with _Timer(self.seconds, "convert"):
                    convert_to_vmdk(opts["image_path"], tmp_dir_file, self.log)
                vmdk_size = os.path.getsize(tmp_dir_file)
                self.log("VMDK is %s for a %s raw image" % (format_bytes(vmdk_size), format_bytes(raw_size)))
                with _Timer(self.seconds, "checksum"):
                    content_sha = file_sha256(tmp_dir_file)
                self.result["converted_size"] = vmdk_size
                with _Timer(self.seconds, "upload"):
                    self.upload_file(tmp_dir_file, vmdk_size, content_sha, source_sha)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_dir_file)
        else:
            with _Timer(self.seconds, "upload"):
                self.upload_file(opts["image_path"], raw_size, source_sha, source_sha)
        if replacing and self.result["upload"] == "uploaded":
            self.result["upload"] = "replaced"
        self.changed = True

    def upload_file(self, path, size, content_sha, source_sha):
        """Multipart upload of ``path`` to the key, resuming an interrupted upload when ``resume`` is set."""
        opts = self.opts
        s3 = self.conn.s3
        bucket, key = opts["bucket"], opts["key"]
        metadata = {META_SHA256: content_sha, META_SOURCE_SHA256: source_sha, META_FORMAT: opts["disk_format"]}

        uploads = []
        try:
            paginator = s3.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                uploads.extend(u for u in page.get("Uploads", []) if u.get("Key") == key)
        except Exception as err:  # pylint: disable=broad-except
            if error_code(err) not in ("NotImplemented", "501"):
                raise self._client_error("ListMultipartUploads on %s" % bucket, err) from None
            # Some S3-compatible stores cannot list uploads: nothing can be resumed or cleaned up there.
            self.log("the object store cannot list multipart uploads: starting a new upload")

        upload_id = None
        resumed_upload = False
        reused = {}
        part_size = effective_part_size(size, opts["part_size"])
        if opts["resume"]:
            candidate = choose_resumable_upload(uploads, key)
            if candidate:
                listed = []
                for page in s3.get_paginator("list_parts").paginate(
                    Bucket=bucket, Key=key, UploadId=candidate["UploadId"]
                ):
                    listed.extend(page.get("Parts", []))
                part_size = resume_part_size(listed, size, part_size)
                plan = plan_parts(size, part_size)
                reused = reusable_parts(
                    listed, plan, lambda number, offset, length: part_checksums(read_range(path, offset, length))
                )
                upload_id = candidate["UploadId"]
                resumed_upload = True
                self.log(
                    "resuming upload %s of %s: %d of %d parts already there and verified"
                    % (upload_id[:16], key, len(reused), len(plan))
                )
                uploads = [u for u in uploads if u["UploadId"] != upload_id]
        for stale in uploads:
            # Interrupted uploads of this key that are not resumed only cost storage: abort them.
            with contextlib.suppress(Exception):
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=stale["UploadId"])
                self.log("aborted the abandoned multipart upload %s of %s" % (stale["UploadId"][:16], key))
        plan = plan_parts(size, part_size)
        if upload_id is None:
            upload_id = s3.create_multipart_upload(
                Bucket=bucket,
                Key=key,
                Metadata=metadata,
                ContentType="application/octet-stream",
                ChecksumAlgorithm=PART_CHECKSUM,
            )["UploadId"]
            self.log("started multipart upload of %s to s3://%s/%s: %d parts of %s, %d in parallel"
                     % (format_bytes(size), bucket, key, len(plan), format_bytes(part_size), opts["concurrency"]))

        done_bytes = sum(length for number, _o, length in plan if number in reused)
        sent = {"bytes": 0, "done": done_bytes}
        lock = threading.Lock()
        todo = [p for p in plan if p[0] not in reused]
        completed = dict(reused)

        def send(part):
            number, offset, length = part
            data = read_range(path, offset, length)
            checksum = crc32_b64(data)
            answer = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm=PART_CHECKSUM,
                ChecksumCRC32=checksum,
            )
            with lock:
                sent["bytes"] += length
                sent["done"] += length
                completed[number] = {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": checksum}
                self.log(
                    "part %d/%d sent: %d bytes (%s of %s, %.1f%%)"
                    % (number, len(plan), length, format_bytes(sent["done"]), format_bytes(size),
                       percent(sent["done"], size))
                )

        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=opts["concurrency"]) as pool:
                futures = [pool.submit(send, part) for part in todo]
                try:
                    for future in concurrent.futures.as_completed(futures):
                        future.result()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
            parts = [completed[number] for number, _o, _l in plan]
            self.log("completing the upload of %d parts" % len(parts))
            try:
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except Exception:  # pylint: disable=broad-except
                # A retried Complete may find the upload already completed by the first attempt.
                if not self._object_is(size, content_sha):
                    raise
        except BaseException as err:
            self.result["bytes_sent"] = sent["bytes"]
            if not opts["resume"]:
                with contextlib.suppress(Exception):
                    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                    self.log("aborted multipart upload %s after a failure" % upload_id[:16])
            else:
                self.log("left multipart upload %s for a resumed run (resume: true)" % upload_id[:16])
            if isinstance(err, EdgeforgeError) or not isinstance(err, Exception):
                raise
            raise EdgeforgeError("upload of %s to s3://%s/%s failed: %s" % (path, bucket, key, err)) from None

        self.result["bytes_sent"] = sent["bytes"]
        self.result["parts"] = len(plan)
        self.result["parts_reused"] = len(reused)
        self.result["upload"] = "resumed" if reused else "uploaded"
        self.log("upload of s3://%s/%s complete: %s sent, %d part(s) reused"
                 % (bucket, key, format_bytes(sent["bytes"]), len(reused)))
        if resumed_upload:
            self._fix_metadata(metadata)

    def _object_is(self, size, content_sha):
        head = self._head() or {}
        meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return int(head.get("ContentLength", -1)) == size and meta.get(META_SHA256) == content_sha

    def _fix_metadata(self, metadata):
        """A resumed upload carries the metadata of the run that started it: make sure it describes this file."""
        head = self._head() or {}
        stored = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
        if all(stored.get(k) == v for k, v in metadata.items()):
            return
        bucket, key = self.opts["bucket"], self.opts["key"]
        self.conn.s3.raw.copy(
            {"Bucket": bucket, "Key": key},
            bucket,
            key,
            ExtraArgs={"Metadata": metadata, "MetadataDirective": "REPLACE", "ContentType": "application/octet-stream"},
        )
        self.log("refreshed the checksum metadata of s3://%s/%s" % (bucket, key))

    # -- import ----------------------------------------------------------------------------------------------------

    def import_snapshot(self, deadline):
        opts = self.opts
        try:
            task_id = self.conn.ec2.import_snapshot(**import_request(opts))["ImportTaskId"]
        except Exception as err:  # pylint: disable=broad-except
            raise self._client_error("ImportSnapshot of %s" % self.result["s3_uri"], err) from None
        self.result["import_task_id"] = task_id
        self.changed = True
        self.log("import task %s started for %s (format %s, role %s)"
                 % (task_id, self.result["s3_uri"], opts["disk_format"].upper(), opts["role_name"]))
        last = None
        while True:
            tasks = self.conn.ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id]).get(
                "ImportSnapshotTasks", []
            )
            task = tasks[0] if tasks else {}
            status, message, progress = import_state(task)
            if (status, message, progress) != last:
                self.log(" ".join(x for x in ("import task %s:" % task_id, status, message,
                                              ("%s%%" % progress) if progress else "") if x))
                last = (status, message, progress)
            if status == "completed":
                snapshot_id = (task.get("SnapshotTaskDetail") or {}).get("SnapshotId")
                if not snapshot_id:
                    raise EdgeforgeError("import task %s completed without a snapshot id" % task_id)
                return snapshot_id
            if status in IMPORT_FAILED:
                raise EdgeforgeError(
                    "import task %s of %s ended %s: %s"
                    % (task_id, self.result["s3_uri"], status, message or "no status message")
                )
            remaining = deadline()
            if remaining <= 0:
                raise EdgeforgeError(
                    "import task %s of %s still %s (%s%s) after wait_timeout %ss; raise wait_timeout, or check the "
                    "task with aws ec2 describe-import-snapshot-tasks --import-task-ids %s"
                    % (task_id, self.result["s3_uri"], status, message or "no message",
                       (", %s%%" % progress) if progress else "", opts["wait_timeout"], task_id)
                )
            self.sleep(min(float(opts["poll_interval"]), max(remaining, 0.01)))


def import_image(connection, options, log=None, check_mode=False):
    """Entry point for the module: state present (import) or info (read-only)."""
    importer = ImageImporter(connection, options, log=log, check_mode=check_mode)
    if importer.opts["state"] == "info":
        return importer.info()
    return importer.run()
