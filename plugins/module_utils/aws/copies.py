# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copies of the AMI in other regions (Packer's ``ami_regions``): one per region, waited for, never made twice.

A region that already holds an AMI of ours with the name keeps it (a pending one is waited for); otherwise CopyImage
runs with a ClientToken derived from the source image and the region, so a repeated request makes no second copy.
"""

from __future__ import annotations

import hashlib

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_regions


def copy_token(image_id, region):
    return "edgeforge-copy-%s" % hashlib.sha256(("%s/%s" % (image_id, region)).encode()).hexdigest()[:40]


def ensure_copies(ctx, opts, image, deadline):
    """{region: image id} of the AMI's copies, made where missing; the second value tells whether any was made."""
    copies, changed = {}, False
    for region in normalise_regions(opts["copy_to_regions"], opts["copy_kms_key_ids"], opts["encrypted"],
                                    ctx.conn.region):
        regional = Context(ctx.conn.in_region(region), ctx.log, ctx.check_mode, ctx.sleep)
        state, existing = ec2.ami_decision(ec2.find_images(regional, opts["ami_name"]))
        if state in ("available", "pending"):
            image_id = existing["ImageId"]
        elif ctx.check_mode:
            copies[region], changed = None, True
            continue
        else:
            image_id = _copy(regional, opts, image, ctx.conn.region, region)
            changed = True
        if not ctx.check_mode:
            ec2.wait_image(regional, opts, image_id, deadline)
            ec2.ensure_tags(regional, [image_id], ec2.resource_tags(opts))
        copies[region] = image_id
    return copies, changed


def _copy(regional, opts, image, source_region, region):
    request = {
        "SourceImageId": image["ImageId"],
        "SourceRegion": source_region,
        "Name": opts["ami_name"],
        "Description": image.get("Description") or opts["ami_name"],
        "ClientToken": copy_token(image["ImageId"], region),
    }
    if opts["encrypted"]:
        request["Encrypted"] = True
        if (opts["copy_kms_key_ids"] or {}).get(region):
            request["KmsKeyId"] = opts["copy_kms_key_ids"][region]
    try:
        image_id = regional.conn.ec2.copy_image(**request)["ImageId"]
    except Exception as err:  # pylint: disable=broad-except
        raise describe_error("EC2 CopyImage %s to %s" % (image["ImageId"], region), err) from None
    regional.log("copying AMI %s to %s: %s" % (image["ImageId"], region, image_id))
    return image_id
