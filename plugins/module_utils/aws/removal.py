# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``state: absent``: deregister the account's AMIs of the name and their copies in ``copy_to_regions``, delete their
snapshots, optionally the S3 object.

Only the account's own images are touched (``Owners=['self']``). Idempotent: with nothing left, nothing changes.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_regions
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import head_object


def remove_image(ctx, opts):
    """The module result of a removal (what was, or in check mode would be, deregistered and deleted), in the
    module's region and in each region of ``copy_to_regions``."""
    image_ids, snapshot_ids = [], []
    regions = [None] + normalise_regions(opts["copy_to_regions"], opts["copy_kms_key_ids"], opts["encrypted"],
                                         ctx.conn.region)
    for region in regions:
        regional = ctx if region is None else Context(ctx.conn.in_region(region), ctx.log, ctx.check_mode, ctx.sleep)
        images = ec2.find_images(regional, opts["ami_name"])
        images_here = sorted(image["ImageId"] for image in images)
        snapshots_here = sorted({s for s in (ec2.root_snapshot_id(image) for image in images) if s})
        if not ctx.check_mode:
            _remove(regional, opts, images_here, snapshots_here)
        image_ids += images_here
        snapshot_ids += snapshots_here
    object_present = bool(opts["remove_object"]) and head_object(ctx.conn.s3, opts["bucket"], opts["key"]) is not None
    if object_present and not ctx.check_mode:
        ctx.conn.s3.delete_object(Bucket=opts["bucket"], Key=opts["key"])
        ctx.log("deleted s3://%s/%s" % (opts["bucket"], opts["key"]))
    return {
        "ami_name": opts["ami_name"],
        "s3_uri": "s3://%s/%s" % (opts["bucket"], opts["key"]),
        "deregistered_image_ids": image_ids,
        "deleted_snapshot_ids": snapshot_ids,
        "object_deleted": object_present,
        "changed": bool(image_ids or snapshot_ids or object_present),
    }


def _remove(ctx, opts, image_ids, snapshot_ids):
    client = ctx.conn.ec2
    for image_id in image_ids:
        try:
            client.deregister_image(ImageId=image_id)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 DeregisterImage %s" % image_id, err) from None
        ctx.log("deregistered AMI %s (%s) in %s" % (image_id, opts["ami_name"], ctx.conn.region))
    # A snapshot can be deleted only once no AMI uses it: after the deregistrations.
    for snapshot_id in snapshot_ids:
        try:
            client.delete_snapshot(SnapshotId=snapshot_id)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 DeleteSnapshot %s" % snapshot_id, err) from None
        ctx.log("deleted snapshot %s in %s" % (snapshot_id, ctx.conn.region))
