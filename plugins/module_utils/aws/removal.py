# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``state: absent``: deregister the account's AMIs of the name, delete their snapshots, optionally the S3 object.

Only the account's own images are touched (``Owners=['self']``). Idempotent: with nothing left, nothing changes.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import head_object


def remove_image(ctx, opts):
    """The module result of a removal (what was, or in check mode would be, deregistered and deleted)."""
    images = ec2.find_images(ctx, opts["ami_name"])
    image_ids = sorted(image["ImageId"] for image in images)
    snapshot_ids = sorted({s for s in (ec2.root_snapshot_id(image) for image in images) if s})
    object_present = bool(opts["remove_object"]) and head_object(ctx.conn.s3, opts["bucket"], opts["key"]) is not None
    if not ctx.check_mode:
        _remove(ctx, opts, image_ids, snapshot_ids, object_present)
    return {
        "ami_name": opts["ami_name"],
        "s3_uri": "s3://%s/%s" % (opts["bucket"], opts["key"]),
        "deregistered_image_ids": image_ids,
        "deleted_snapshot_ids": snapshot_ids,
        "object_deleted": object_present,
        "changed": bool(image_ids or snapshot_ids or object_present),
    }


def _remove(ctx, opts, image_ids, snapshot_ids, object_present):
    client = ctx.conn.ec2
    for image_id in image_ids:
        try:
            client.deregister_image(ImageId=image_id)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 DeregisterImage %s" % image_id, err) from None
        ctx.log("deregistered AMI %s (%s)" % (image_id, opts["ami_name"]))
    # A snapshot can be deleted only once no AMI uses it: after the deregistrations.
    for snapshot_id in snapshot_ids:
        try:
            client.delete_snapshot(SnapshotId=snapshot_id)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 DeleteSnapshot %s" % snapshot_id, err) from None
        ctx.log("deleted snapshot %s" % snapshot_id)
    if object_present:
        ctx.conn.s3.delete_object(Bucket=opts["bucket"], Key=opts["key"])
        ctx.log("deleted s3://%s/%s" % (opts["bucket"], opts["key"]))
