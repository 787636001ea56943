# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The EC2 image side of the import: the account's images of a name, RegisterImage and its bounded wait, tags.

Image and snapshot look-ups only ever see the account's own resources (``Owners=['self']``): CanvOS's look-up by
name alone can reuse someone else's public AMI of the same name (CONFORMANCE 6.8, B15).
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error, error_code
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import aws_architecture, deprecation_time

IMAGE_FAILED = ("failed", "error", "deregistered", "invalid")


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


def resource_tags(opts):
    """The tags of the snapshot and the AMI: Name = the AMI name, then the user's tags."""
    tags = {"Name": opts["ami_name"]}
    tags.update(opts["tags"])
    return tags


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


def find_images(ctx, name):
    """The account's own images of that name (any state)."""
    answer = ctx.conn.ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])
    return answer.get("Images", [])


def ensure_tags(ctx, resource_ids, tags):
    """Create only the missing/different tags on each resource; True if any was (or, in check mode, would be) made."""
    if not tags or not resource_ids:
        return False
    changed = False
    for resource_id in resource_ids:
        current = {}
        paginator = ctx.conn.ec2.get_paginator("describe_tags")
        for page in paginator.paginate(Filters=[{"Name": "resource-id", "Values": [resource_id]}]):
            current.update(tag_dict(page.get("Tags")))
        missing = tags_to_add(current, tags)
        if missing:
            changed = True
            if not ctx.check_mode:
                ctx.conn.ec2.create_tags(Resources=[resource_id], Tags=missing)
                ctx.log("tagged %s: %s" % (resource_id, ", ".join(t["Key"] for t in missing)))
    return changed


def register_image(ctx, opts, snapshot_id):
    """RegisterImage from the snapshot; returns the image id."""
    ctx.log("registering AMI %s from %s" % (opts["ami_name"], snapshot_id))
    try:
        return ctx.conn.ec2.register_image(**register_request(opts, snapshot_id))["ImageId"]
    except Exception as err:  # pylint: disable=broad-except
        # RegisterImage has no idempotency token: a request botocore repeated after a lost answer finds the name
        # taken by the image the first one registered. That image (ours, from this snapshot) is the result.
        if error_code(err) in ("InvalidAMIName.Duplicate", "InvalidParameterValue"):
            for image in find_images(ctx, opts["ami_name"]):
                if root_snapshot_id(image) == snapshot_id:
                    return image["ImageId"]
        raise describe_error("EC2 RegisterImage %s from %s" % (opts["ami_name"], snapshot_id), err) from None


def wait_image(ctx, opts, image_id, deadline):
    """Poll the image until it is available (its DescribeImages entry), fails or the deadline passes."""
    last = None
    while True:
        images = ctx.conn.ec2.describe_images(ImageIds=[image_id]).get("Images", [])
        image = images[0] if images else {}
        state = image.get("State", "unknown")
        if state != last:
            ctx.log("AMI %s is %s" % (image_id, state))
            last = state
        if state == "available":
            return image
        if state in IMAGE_FAILED:
            reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
            raise EdgeforgeError("AMI %s (%s) is %s: %s" % (image_id, opts["ami_name"], state, reason))
        remaining = deadline()
        if remaining <= 0:
            raise EdgeforgeError(
                "AMI %s (%s) still %s after wait_timeout %ss; it may still become available: "
                "raise wait_timeout and run again" % (image_id, opts["ami_name"], state, opts["wait_timeout"])
            )
        ctx.sleep(min(float(opts["poll_interval"]), max(remaining, 0.01)))


def ensure_deprecation(ctx, image, when):
    """Set the AMI's deprecation time when it differs from ``when`` (None: not managed); True when it changed."""
    if when is None or deprecation_time(image.get("DeprecationTime")) == when:
        return False
    if not ctx.check_mode:
        try:
            ctx.conn.ec2.enable_image_deprecation(ImageId=image["ImageId"], DeprecateAt=when)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 EnableImageDeprecation %s" % image["ImageId"], err) from None
        ctx.log("AMI %s is deprecated from %s" % (image["ImageId"], when.isoformat()))
    return True
