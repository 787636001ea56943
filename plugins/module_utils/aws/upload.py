# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 side of the import: is the image already at the key, and the multipart upload (resumable, bounded).

An identical object is not sent again; a different one is replaced only with ``overwrite``; an interrupted multipart
upload of the same key is resumed after its parts are verified against the local file, and only the missing parts
are sent. With ``disk_format: vmdk`` the image is first converted to a stream-optimized VMDK.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import os
import tempfile
import threading

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error, error_code
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import bounded, timed
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import multipart as mp
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.vmdk import convert_to_vmdk


@dataclasses.dataclass
class UploadOutcome:
    """What the S3 step did; ``decision`` is absent, same or replace (see multipart.object_decision)."""

    decision: str
    upload: str
    source_sha256: str = None
    bytes_sent: int = 0
    parts: int = 0
    parts_reused: int = 0
    converted_size: int = None
    seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def changed(self):
        return self.upload in ("uploaded", "resumed", "replaced")


def head_object(s3, bucket, key):
    """The HeadObject answer, or None when there is no object at the key."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except Exception as err:  # pylint: disable=broad-except
        if error_code(err) in ("404", "NoSuchKey", "NotFound"):
            return None
        if error_code(err) == "NoSuchBucket":
            raise EdgeforgeError("S3 bucket %s does not exist" % bucket) from None
        raise describe_error("S3 HeadObject s3://%s/%s" % (bucket, key), err) from None


def object_with_checksums(s3, bucket, key):
    """HeadObject of the key, its metadata completed with the checksum tags of an upload that computed the image's
    SHA-256 while sending it (metadata is fixed when the upload starts; tags can be set afterwards)."""
    head = head_object(s3, bucket, key)
    if head is None or mp.lower_metadata(head).get(mp.META_SHA256):
        return head
    try:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    except Exception as err:  # pylint: disable=broad-except
        if error_code(err) in ("NotImplemented", "501", "AccessDenied"):
            return head
        raise describe_error("S3 GetObjectTagging s3://%s/%s" % (bucket, key), err) from None
    metadata = dict(head.get("Metadata") or {})
    metadata.update({t["Key"]: t["Value"] for t in tags if t.get("Key") in (mp.META_SHA256, mp.META_SOURCE_SHA256)})
    return dict(head, Metadata=metadata)


def ensure_object(ctx, opts, image_missing=False):
    """Checksum the image, compare it with the object at the key and upload it when needed (UploadOutcome).

    A differing object without ``overwrite`` raises. In check mode nothing is uploaded; an image that does not exist
    yet (built by an earlier step of the same check-mode run) is planned as a new upload.
    """
    if image_missing:
        ctx.log("check mode: %s does not exist yet (an earlier step builds it): planned as a new upload"
                % opts["image_path"])
        return UploadOutcome("absent", "would upload")
    seconds = {}
    size = os.path.getsize(opts["image_path"])
    head = object_with_checksums(ctx.conn.s3, opts["bucket"], opts["key"])
    if opts["image_sha256"]:
        # The producer of the image (e.g. raw_disk_image and its .sha256 file) already read every byte.
        source_sha = opts["image_sha256"]
        ctx.log("using the given SHA-256 of %s: %s" % (opts["image_path"], source_sha))
    elif head is None and opts["disk_format"] == "raw" and not ctx.check_mode:
        # Nothing to compare with: one read pass, the SHA-256 is computed as the parts are read for the upload.
        source_sha = None
    else:
        with timed(seconds, "checksum"):
            ctx.log("computing the SHA-256 of %s (%s)" % (opts["image_path"], mp.format_bytes(size)))
            source_sha = mp.file_sha256(opts["image_path"])
    decision = mp.object_decision(head, size, source_sha, opts["disk_format"], opts["overwrite"])
    if decision == "refuse":
        raise EdgeforgeError(
            "s3://%s/%s already exists and differs from %s (object: %s; local: size %d, sha256 %s, format %s). "
            "Set overwrite: true to replace it, or choose another s3_key."
            % (opts["bucket"], opts["key"], opts["image_path"], mp.describe_object(head), size, source_sha,
               opts["disk_format"])
        )
    if ctx.check_mode:
        return UploadOutcome(decision, "skipped" if decision == "same" else "would upload", source_sha, seconds=seconds)
    if decision == "same":
        ctx.log("s3://%s/%s already holds this image (sha256 %s): not sent again"
                % (opts["bucket"], opts["key"], source_sha))
        return UploadOutcome(decision, "skipped", source_sha, seconds=seconds)
    outcome = _upload_image(ctx, opts, size, source_sha, seconds)
    outcome.decision = decision
    if decision == "replace" and outcome.upload == "uploaded":
        outcome.upload = "replaced"
    return outcome


def _upload_image(ctx, opts, raw_size, source_sha, seconds):
    deadline = bounded(opts.get("upload_timeout"))
    if opts["disk_format"] != "vmdk":
        with timed(seconds, "upload"):
            outcome = MultipartUpload(ctx, opts, deadline).run(opts["image_path"], raw_size, source_sha, source_sha)
        outcome.seconds = seconds
        return outcome
    work_dir = opts["work_dir"] or os.path.dirname(os.path.abspath(opts["image_path"]))
    os.makedirs(work_dir, exist_ok=True)
    fd, vmdk_path = tempfile.mkstemp(prefix=".edgeforge-", suffix=".vmdk", dir=work_dir)
    os.close(fd)
    os.unlink(vmdk_path)
    try:
        with timed(seconds, "convert"):
            convert_to_vmdk(opts["image_path"], vmdk_path, ctx.log)
        vmdk_size = os.path.getsize(vmdk_path)
        ctx.log("VMDK is %s for a %s raw image" % (mp.format_bytes(vmdk_size), mp.format_bytes(raw_size)))
        with timed(seconds, "checksum"):
            content_sha = mp.file_sha256(vmdk_path)
        with timed(seconds, "upload"):
            outcome = MultipartUpload(ctx, opts, deadline).run(vmdk_path, vmdk_size, content_sha, source_sha)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(vmdk_path)
    outcome.converted_size = vmdk_size
    outcome.seconds = seconds
    return outcome


class UploadFailed(EdgeforgeError):
    """An upload that failed, with the bytes this run sent before it did."""

    def __init__(self, message, bytes_sent):
        super().__init__(message)
        self.bytes_sent = bytes_sent


class MultipartUpload:
    """One multipart upload of a file to the key: resumes an interrupted one with ``resume``, bounded by a deadline."""

    def __init__(self, ctx, opts, deadline):
        self.ctx = ctx
        self.s3 = ctx.conn.s3
        self.bucket, self.key = opts["bucket"], opts["key"]
        self.opts = opts
        self.deadline = deadline
        self._lock = threading.Lock()

    def run(self, path, size, content_sha, source_sha):
        """Upload ``path``; a ``content_sha`` of None is computed while the parts are read and recorded afterwards."""
        hasher = hashlib.sha256() if content_sha is None else None
        metadata = {mp.META_FORMAT: self.opts["disk_format"]}
        if hasher is None:
            metadata.update({mp.META_SHA256: content_sha, mp.META_SOURCE_SHA256: source_sha})
        uploads = self._interrupted_uploads()
        part_size = mp.effective_part_size(size, self.opts["part_size"])
        upload_id, reused, part_size = self._resume(uploads, path, size, part_size)
        for stale in uploads:
            if stale["UploadId"] != upload_id:
                self._abort(stale["UploadId"], "aborted the abandoned multipart upload %s of %s")
        plan = mp.plan_parts(size, part_size)
        resumed = upload_id is not None
        if upload_id is None:
            upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, Metadata=metadata, ContentType="application/octet-stream",
                ChecksumAlgorithm=mp.PART_CHECKSUM,
            )["UploadId"]
            self.ctx.log("started multipart upload of %s to s3://%s/%s: %d parts of %s, %d in parallel%s"
                         % (mp.format_bytes(size), self.bucket, self.key, len(plan), mp.format_bytes(part_size),
                            self.opts["concurrency"], ", SHA-256 computed on the way" if hasher else ""))
        sent = {"bytes": 0, "done": sum(length for number, _o, length in plan if number in reused)}
        try:
            completed = self._send_parts(path, size, plan, upload_id, reused, sent, hasher)
            if hasher is not None:
                content_sha = source_sha = hasher.hexdigest()
            self._complete(upload_id, [completed[number] for number, _o, _l in plan], size, content_sha)
        except BaseException as err:
            self._after_failure(upload_id)
            if not isinstance(err, Exception):
                raise
            message = str(err) if isinstance(err, EdgeforgeError) else "upload of %s to s3://%s/%s failed: %s" % (
                path, self.bucket, self.key, err)
            raise UploadFailed(message, sent["bytes"]) from None
        self.ctx.log("upload of s3://%s/%s complete: %s sent, %d part(s) reused"
                     % (self.bucket, self.key, mp.format_bytes(sent["bytes"]), len(reused)))
        checksums = {mp.META_SHA256: content_sha, mp.META_SOURCE_SHA256: source_sha}
        if hasher is not None:
            self._tag_checksums(checksums)
        if resumed or hasher is not None:
            # Checksums in the metadata must be this file's; without tags they must be there.
            self._fix_metadata(dict(metadata, **checksums), required=hasher is None)
        return UploadOutcome("absent", "resumed" if reused else "uploaded", source_sha, sent["bytes"], len(plan),
                             len(reused))

    def _interrupted_uploads(self):
        uploads = []
        try:
            paginator = self.s3.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key):
                uploads.extend(u for u in page.get("Uploads", []) if u.get("Key") == self.key)
        except Exception as err:  # pylint: disable=broad-except
            if error_code(err) not in ("NotImplemented", "501"):
                raise describe_error("S3 ListMultipartUploads on %s" % self.bucket, err) from None
            # Some S3-compatible stores cannot list uploads: nothing can be resumed or cleaned up there.
            self.ctx.log("the object store cannot list multipart uploads: starting a new upload")
        return uploads

    def _resume(self, uploads, path, size, part_size):
        """(upload id, verified parts, part size) of the interrupted upload to continue, or (None, {}, part_size)."""
        candidate = mp.choose_resumable_upload(uploads, self.key) if self.opts["resume"] else None
        if not candidate:
            return None, {}, part_size
        listed = []
        for page in self.s3.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=self.key, UploadId=candidate["UploadId"]
        ):
            listed.extend(page.get("Parts", []))
        part_size = mp.resume_part_size(listed, size, part_size)
        plan = mp.plan_parts(size, part_size)
        reused = mp.reusable_parts(
            listed, plan, lambda number, offset, length: mp.part_checksums(mp.read_range(path, offset, length))
        )
        self.ctx.log("resuming upload %s of %s: %d of %d parts already there and verified"
                     % (candidate["UploadId"][:16], self.key, len(reused), len(plan)))
        return candidate["UploadId"], reused, part_size

    def _send_parts(self, path, size, plan, upload_id, reused, sent, hasher):
        """Read the parts in order (one pass, feeding ``hasher`` when given) and send them with a thread pool; at most
        concurrency + 1 parts are held in memory."""
        completed = dict(reused)

        def send(number, data):
            checksum = mp.crc32_b64(data)
            answer = self.s3.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=data,
                ChecksumAlgorithm=mp.PART_CHECKSUM, ChecksumCRC32=checksum,
            )
            with self._lock:
                sent["bytes"] += len(data)
                sent["done"] += len(data)
                completed[number] = {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": checksum}
                self.ctx.log("part %d/%d sent: %d bytes (%s of %s, %.1f%%)"
                             % (number, len(plan), len(data), mp.format_bytes(sent["done"]), mp.format_bytes(size),
                                mp.percent(sent["done"], size)))

        window = self.opts["concurrency"] + 1
        pending = set()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.opts["concurrency"]) as pool:
            try:
                with open(path, "rb") as handle:
                    for number, offset, length in plan:
                        if number in reused and hasher is None:
                            continue
                        data = _read_at(handle, path, offset, length)
                        if hasher is not None:
                            hasher.update(data)
                        if number in reused:
                            continue
                        self._check_deadline(sent, size)
                        while len(pending) >= window:
                            done, pending = concurrent.futures.wait(
                                pending, return_when=concurrent.futures.FIRST_COMPLETED)
                            for future in done:
                                future.result()
                        pending.add(pool.submit(send, number, data))
                for future in concurrent.futures.as_completed(pending):
                    future.result()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return completed

    def _check_deadline(self, sent, size):
        if self.deadline() <= 0:
            raise EdgeforgeError(
                "the upload to s3://%s/%s did not finish within upload_timeout %ss (%s of %s sent); raise "
                "upload_timeout, or run again with resume: true to send only the rest"
                % (self.bucket, self.key, self.opts["upload_timeout"], mp.format_bytes(sent["done"]),
                   mp.format_bytes(size)))

    def _complete(self, upload_id, parts, size, content_sha):
        self.ctx.log("completing the upload of %d parts" % len(parts))
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception:  # pylint: disable=broad-except
            # A retried Complete may find the upload already completed by the first attempt.
            head = head_object(self.s3, self.bucket, self.key) or {}
            stored_sha = mp.lower_metadata(head).get(mp.META_SHA256)
            if not (int(head.get("ContentLength", -1)) == size and stored_sha in (content_sha, None)):
                raise

    def _after_failure(self, upload_id):
        if self.opts["resume"]:
            self.ctx.log("left multipart upload %s for a resumed run (resume: true)" % upload_id[:16])
        else:
            self._abort(upload_id, "aborted multipart upload %s of %s after a failure")

    def _abort(self, upload_id, message):
        # An interrupted upload that is not resumed only costs storage.
        with contextlib.suppress(Exception):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            self.ctx.log(message % (upload_id[:16], self.key))

    def _tag_checksums(self, checksums):
        """Record a SHA-256 computed during the upload on the object (its metadata was fixed when the upload began)."""
        try:
            self.s3.put_object_tagging(Bucket=self.bucket, Key=self.key, Tagging={
                "TagSet": [{"Key": k, "Value": v} for k, v in sorted(checksums.items())]})
        except Exception as err:  # pylint: disable=broad-except
            if error_code(err) not in ("NotImplemented", "501"):
                raise describe_error("S3 PutObjectTagging s3://%s/%s" % (self.bucket, self.key), err) from None
            # A store without object tags: the metadata is rewritten instead (a server-side copy).
            self._fix_metadata(dict(mp.lower_metadata(head_object(self.s3, self.bucket, self.key)), **checksums),
                               required=True)

    def _fix_metadata(self, metadata, required):
        """Make the object's metadata hold ``metadata`` when ``required``, else only correct checksums it names (a
        resumed upload carries the metadata of the run that started it)."""
        stored = mp.lower_metadata(head_object(self.s3, self.bucket, self.key))
        names_checksum = any(stored.get(k) for k in (mp.META_SHA256, mp.META_SOURCE_SHA256))
        if all(stored.get(k) == v for k, v in metadata.items()) or not (required or names_checksum):
            return
        self.s3.copy(
            {"Bucket": self.bucket, "Key": self.key}, self.bucket, self.key,
            ExtraArgs={"Metadata": metadata, "MetadataDirective": "REPLACE",
                       "ContentType": "application/octet-stream"},
        )
        self.ctx.log("refreshed the checksum metadata of s3://%s/%s" % (self.bucket, self.key))


def _read_at(handle, path, offset, length):
    handle.seek(offset)
    data = handle.read(length)
    if len(data) != length:
        raise EdgeforgeError("%s changed while it was read (short read at offset %d)" % (path, offset))
    return data
