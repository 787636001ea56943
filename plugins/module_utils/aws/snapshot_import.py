# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ImportSnapshot that a re-run re-attaches to instead of starting a second import.

CanvOS starts a new import on every run and sends no ClientToken (CONFORMANCE 6.8-6.9, B15). Here every import
carries a token derived from everything that shapes it (the image's SHA-256 and format, the object, the AMI name, the
region, encryption and KMS key, the role) as its ClientToken and as a tag on the task; the snapshot it produces gets
the same tag. Before ImportSnapshot, in this order:

1. a completed snapshot of ours tagged with the token (an import whose registration failed): taken as it is;
2. an import task tagged with the token: active, it is waited for; completed, its snapshot is taken;
3. otherwise a new import. Tasks of the token that failed (or whose snapshot is gone) are counted into the token, so
   the new import is not answered with the old failed task, which AWS returns for a repeated ClientToken.

``force`` skips the look-up and imports anew under a token of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error, error_code

TOKEN_TAG = "edgeforge-import-token"
IMPORT_FAILED = ("deleted", "deleting", "cancelled", "cancelling", "error", "failed")


@dataclasses.dataclass
class ImportOutcome:
    """Where the snapshot came from: ``how`` is imported, waited (a running import), completed (a finished import
    task) or snapshot (a tagged snapshot whose registration had failed)."""

    snapshot_id: str
    task_id: str = None
    how: str = "imported"

    @property
    def started(self):
        return self.how == "imported"


def import_state(task):
    """(status, message, progress) of a DescribeImportSnapshotTasks entry."""
    detail = (task or {}).get("SnapshotTaskDetail") or {}
    return (
        str(detail.get("Status", "unknown")).lower(),
        detail.get("StatusMessage") or "",
        detail.get("Progress") or "",
    )


def import_token(opts, source_sha256, region):
    """The base ClientToken of an import (pure): 50 characters, the same for the same inputs."""
    shaping = {
        "sha256": source_sha256,
        "format": opts["disk_format"],
        "object": "s3://%s/%s" % (opts["bucket"], opts["key"]),
        "ami_name": opts["ami_name"],
        "region": region,
        "encrypted": bool(opts.get("encrypted") or opts.get("kms_key_id")),
        "kms_key_id": opts.get("kms_key_id") or "",
        "role": opts["role_name"],
    }
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode("utf-8")).hexdigest()
    return "edgeforge-%s" % digest[:40]


def token_matches(value, base):
    return value == base or str(value).startswith(base + "-")


def import_request(opts, client_token=None):
    """The ImportSnapshot parameters (pure; unit-tested)."""
    tags = [{"Key": "Name", "Value": "Import-%s" % opts["key"]}]
    tags += [{"Key": k, "Value": v} for k, v in sorted(opts["tags"].items()) if k not in ("Name", TOKEN_TAG)]
    request = {
        "Description": opts["import_description"],
        "DiskContainer": {
            "Description": "Snapshot for %s" % opts["key"],
            "Format": opts["disk_format"].upper(),
            "UserBucket": {"S3Bucket": opts["bucket"], "S3Key": opts["key"]},
        },
        "RoleName": opts["role_name"],
        "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": tags}],
    }
    if client_token:
        request["ClientToken"] = client_token
        tags.append({"Key": TOKEN_TAG, "Value": client_token})
    if opts.get("encrypted") or opts.get("kms_key_id"):
        request["Encrypted"] = True
    if opts.get("kms_key_id"):
        request["KmsKeyId"] = opts["kms_key_id"]
    return request


def _tag(task, name):
    return {t.get("Key"): t.get("Value") for t in task.get("Tags") or []}.get(name)


def tasks_of_token(ctx, base):
    """The account's import tasks tagged with the token (any attempt), oldest first."""
    tasks, kwargs = [], {}
    while True:
        answer = ctx.conn.ec2.describe_import_snapshot_tasks(**kwargs)
        tasks += [t for t in answer.get("ImportSnapshotTasks", []) if token_matches(_tag(t, TOKEN_TAG) or "", base)]
        if not answer.get("NextToken"):
            return tasks
        kwargs = {"NextToken": answer["NextToken"]}


def tagged_snapshot(ctx, base):
    """A completed snapshot of ours carrying the token tag, or None."""
    answer = ctx.conn.ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:%s" % TOKEN_TAG, "Values": [base]}]
    )
    done = [s for s in answer.get("Snapshots", []) if s.get("State") == "completed"]
    return sorted(done, key=lambda s: str(s.get("StartTime", "")))[-1]["SnapshotId"] if done else None


def snapshot_exists(ctx, snapshot_id):
    try:
        answer = ctx.conn.ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=[snapshot_id])
    except Exception as err:  # pylint: disable=broad-except
        if error_code(err) == "InvalidSnapshot.NotFound":
            return False
        raise describe_error("EC2 DescribeSnapshots %s" % snapshot_id, err) from None
    return bool(answer.get("Snapshots"))


def previous_import(ctx, base):
    """(ImportOutcome to resume or None, the number of unusable earlier attempts of the token)."""
    snapshot_id = tagged_snapshot(ctx, base)
    if snapshot_id:
        return ImportOutcome(snapshot_id, how="snapshot"), 0
    unusable = 0
    for task in reversed(tasks_of_token(ctx, base)):
        status = import_state(task)[0]
        if status in IMPORT_FAILED:
            unusable += 1
            continue
        if status == "completed":
            snapshot_id = (task.get("SnapshotTaskDetail") or {}).get("SnapshotId")
            if snapshot_id and snapshot_exists(ctx, snapshot_id):
                return ImportOutcome(snapshot_id, task["ImportTaskId"], "completed"), unusable
            unusable += 1
            continue
        return ImportOutcome(None, task["ImportTaskId"], "waited"), unusable
    return None, unusable


def obtain_snapshot(ctx, opts, base, s3_uri, deadline):
    """The snapshot of the object: from an earlier import of the same token, or a new import (ImportOutcome)."""
    unusable = 0
    if not opts.get("force"):
        found, unusable = previous_import(ctx, base)
        if found and found.snapshot_id:
            ctx.log("snapshot %s of an earlier import of %s (%s) is taken: no new import"
                    % (found.snapshot_id, s3_uri, found.task_id or "tagged %s" % TOKEN_TAG))
            return found
        if found:
            ctx.log("import task %s of %s is still running: waiting for it instead of importing again"
                    % (found.task_id, s3_uri))
            found.snapshot_id = wait_import(ctx, opts, found.task_id, s3_uri, deadline)
            return found
    if opts.get("force"):
        token = "%s-f%s" % (base, uuid.uuid4().hex[:8])
    else:
        token = base if not unusable else "%s-%d" % (base, unusable)
    task_id = start_import(ctx, opts, s3_uri, token)
    return ImportOutcome(wait_import(ctx, opts, task_id, s3_uri, deadline), task_id, "imported")


def start_import(ctx, opts, s3_uri, client_token):
    """ImportSnapshot of the object under ``client_token``; returns the task id (a repeat returns the same task)."""
    try:
        task_id = ctx.conn.ec2.import_snapshot(**import_request(opts, client_token))["ImportTaskId"]
    except Exception as err:  # pylint: disable=broad-except
        raise describe_error("EC2 ImportSnapshot of %s" % s3_uri, err) from None
    ctx.log("import task %s started for %s (format %s, role %s)"
            % (task_id, s3_uri, opts["disk_format"].upper(), opts["role_name"]))
    return task_id


def wait_import(ctx, opts, task_id, s3_uri, deadline):
    """Poll the import task until it completes (its snapshot id), fails or the deadline passes."""
    last = None
    while True:
        tasks = ctx.conn.ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id]).get("ImportSnapshotTasks", [])
        task = tasks[0] if tasks else {}
        status, message, progress = import_state(task)
        if (status, message, progress) != last:
            ctx.log(" ".join(x for x in ("import task %s:" % task_id, status, message,
                                         ("%s%%" % progress) if progress else "") if x))
            last = (status, message, progress)
        if status == "completed":
            snapshot_id = (task.get("SnapshotTaskDetail") or {}).get("SnapshotId")
            if not snapshot_id:
                raise EdgeforgeError("import task %s completed without a snapshot id" % task_id)
            return snapshot_id
        if status in IMPORT_FAILED:
            raise EdgeforgeError("import task %s of %s ended %s: %s"
                                 % (task_id, s3_uri, status, message or "no status message"))
        remaining = deadline()
        if remaining <= 0:
            raise EdgeforgeError(
                "import task %s of %s still %s (%s%s) after wait_timeout %ss; it goes on in AWS and the next run "
                "waits for it. Raise wait_timeout, or check the task with aws ec2 describe-import-snapshot-tasks "
                "--import-task-ids %s"
                % (task_id, s3_uri, status, message or "no message", (", %s%%" % progress) if progress else "",
                   opts["wait_timeout"], task_id)
            )
        ctx.sleep(min(float(opts["poll_interval"]), max(remaining, 0.01)))
