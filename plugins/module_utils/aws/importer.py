# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raw disk image -> S3 -> EC2 snapshot import -> AMI: what CanvOS's ``+aws-cloud-image`` does, without its gaps.

The steps, each a function of its own package module returning its outcome:

1. an AMI of the wanted name already ours (available: done, nothing uploaded; pending: wait for it) (ec2);
2. preflight of the VM import service role (vmimport);
3. the object at the key: same image (skip), absent or replaced (multipart upload) (upload);
4. the snapshot: from an earlier import of the same object for the same AMI, or ImportSnapshot, with its bounded
   wait (snapshot_import); RegisterImage and its bounded wait; tags (ec2);
5. launch permissions (sharing), deprecation time (ec2), copies in other regions (copies).

``state: absent`` removes instead (removal).

``wait_timeout`` bounds step 4 and starts after the upload, which has its own optional ``upload_timeout``.
"""

from __future__ import annotations

import os
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2, snapshot_import
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import bounded, timed
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.copies import ensure_copies
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import aws_architecture, deprecation_time
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.removal import remove_image
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.sharing import ensure_launch_permissions
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import ensure_object
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.vmimport import ensure_vmimport_role

PLAN_WORDS = {"absent": "upload", "same": "skip (identical object)", "replace": "replace"}


def _base_result(opts):
    return {
        "s3_uri": "s3://%s/%s" % (opts["bucket"], opts["key"]),
        "bucket": opts["bucket"],
        "key": opts["key"],
        "ami_name": opts["ami_name"],
        "disk_format": opts["disk_format"],
        "bytes_sent": 0,
        "upload": "not needed",
        "import_task_id": None,
        "snapshot_id": None,
        "image_id": None,
        "image_state": None,
        "role_created": False,
        "object_deleted": False,
        "changed": False,
    }


def import_image(ctx, opts):
    """Import the image described by normalised ``opts`` (see options.normalise_options); the module result."""
    if opts["state"] == "absent":
        return remove_image(ctx, opts)
    started = time.monotonic()
    seconds = {}
    result = _base_result(opts)
    # In check mode the raw image may be one that an earlier step of the same run would have built.
    image_missing = not os.path.isfile(opts["image_path"])
    if image_missing and not ctx.check_mode:
        raise ValidationError("image_path", opts["image_path"], "the raw disk image must be an existing file")

    with timed(seconds, "lookup"):
        state, image = ec2.ami_decision(ec2.find_images(ctx, opts["ami_name"]))
    if state in ("available", "pending"):
        result.update(_existing_image(ctx, opts, state, image, seconds))
    elif state == "failed":
        reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
        raise EdgeforgeError(
            "an AMI named %s exists in state %s (%s): deregister %s or choose another ami_name"
            % (opts["ami_name"], image.get("State"), reason, image.get("ImageId"))
        )
    else:
        result.update(_new_image(ctx, opts, image_missing, seconds))
    seconds["total"] = round(time.monotonic() - started, 3)
    result["seconds"] = seconds
    return result


def _existing_image(ctx, opts, state, image, seconds):
    ctx.log("AMI %s named %s exists (%s): no upload, no import" % (image["ImageId"], opts["ami_name"], state))
    if state == "pending" and not ctx.check_mode:
        with timed(seconds, "register"):
            image = ec2.wait_image(ctx, opts, image["ImageId"], bounded(opts["wait_timeout"]))
    snapshot_id = ec2.root_snapshot_id(image)
    tags_changed = ec2.ensure_tags(ctx, [image["ImageId"]] + ([snapshot_id] if snapshot_id else []),
                                   ec2.resource_tags(opts))
    shared = ensure_launch_permissions(ctx, image["ImageId"], opts["launch_permissions"],
                                       opts["purge_launch_permissions"])
    deprecated = ec2.ensure_deprecation(ctx, image, deprecation_time(opts["deprecation_time"]))
    copies, copied = ensure_copies(ctx, opts, image, bounded(opts["wait_timeout"]))
    return {"image_id": image["ImageId"], "snapshot_id": snapshot_id, "image_state": image.get("State"),
            "image": image, "copies": copies, "changed": bool(tags_changed or shared or deprecated or copied)}


def _new_image(ctx, opts, image_missing, seconds):
    result = {}
    with timed(seconds, "preflight"):
        role = ensure_vmimport_role(ctx, opts["role_name"], opts["bucket"], opts["create_vmimport_role"],
                                    opts["kms_key_id"])
    result["role_created"] = role.created
    upload = ensure_object(ctx, opts, image_missing=image_missing)
    seconds.update(upload.seconds)
    result.update(upload=upload.upload, bytes_sent=upload.bytes_sent)
    if upload.source_sha256:
        result["source_sha256"] = upload.source_sha256
    if upload.parts:
        result.update(parts=upload.parts, parts_reused=upload.parts_reused)
    if upload.converted_size is not None:
        result["converted_size"] = upload.converted_size
    s3_uri = "s3://%s/%s" % (opts["bucket"], opts["key"])
    if ctx.check_mode:
        result["plan"] = {
            "upload": PLAN_WORDS[upload.decision],
            "import": "ImportSnapshot %s from %s" % (opts["disk_format"].upper(), s3_uri),
            "register": "RegisterImage %s (%s, %s)" % (opts["ami_name"], aws_architecture(opts["arch"]),
                                                       opts["boot_mode"]),
            "role": role.plan,
            "delete_object_after": bool(opts["delete_object_after"]),
        }
        result["changed"] = True
        return result

    deadline = bounded(opts["wait_timeout"])  # starts after the upload: it bounds the import and the registration
    token = snapshot_import.import_token(opts, upload.source_sha256, ctx.conn.region)
    with timed(seconds, "import"):
        found = snapshot_import.obtain_snapshot(ctx, opts, token, s3_uri, deadline)
    snapshot_id = found.snapshot_id
    result.update(import_task_id=found.task_id, snapshot_id=snapshot_id, snapshot_from=found.how)
    # The token tag lets a run after a failed registration take this snapshot instead of importing again.
    ec2.ensure_tags(ctx, [snapshot_id], dict(ec2.resource_tags(opts), **{snapshot_import.TOKEN_TAG: token}))
    with timed(seconds, "register"):
        image_id = ec2.register_image(ctx, opts, snapshot_id)
        result["image_id"] = image_id
        ec2.ensure_tags(ctx, [image_id], ec2.resource_tags(opts))
        image = ec2.wait_image(ctx, opts, image_id, deadline)
    ensure_launch_permissions(ctx, image_id, opts["launch_permissions"], opts["purge_launch_permissions"])
    ec2.ensure_deprecation(ctx, image, deprecation_time(opts["deprecation_time"]))
    result["copies"] = ensure_copies(ctx, opts, image, deadline)[0]
    result.update(image_state=image.get("State"), image=image, changed=True)
    if opts["delete_object_after"]:
        ctx.conn.s3.delete_object(Bucket=opts["bucket"], Key=opts["key"])
        result["object_deleted"] = True
        ctx.log("deleted %s after the import" % s3_uri)
    ctx.log("AMI %s (%s) is available in %s" % (image_id, opts["ami_name"], ctx.conn.region))
    return result
