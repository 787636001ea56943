# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: is the object in the bucket, is there an AMI of the name (the guide's Validate step).

Two calls (HeadObject, DescribeImages of the account's own images; GetObjectTagging too for an object whose checksum
was recorded in its tags), each with botocore's bounded retries; both are made even when the first fails, so one
message tells what is wrong with each. Nothing is shared with the importer.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.multipart import object_summary
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import object_with_checksums


def image_info(ctx, bucket, key, ami_name=None):
    """The info module's result for the object at ``bucket``/``key`` and the AMI ``ami_name`` (default: the key)."""
    for name, value in (("bucket", bucket), ("key", key)):
        if not value:
            raise ValidationError(name, value, "give the S3 %s to look at" % name)
    ami_name = ami_name or key
    errors = []
    head = images = None
    try:
        head = object_with_checksums(ctx.conn.s3, bucket, key)
    except EdgeforgeError as err:
        errors.append(str(err))
    try:
        images = ec2.find_images(ctx, ami_name)
    except Exception as err:  # pylint: disable=broad-except
        errors.append(str(describe_error("EC2 DescribeImages %s" % ami_name, err)))
    if errors:
        raise EdgeforgeError("; ".join(errors))
    state, image = ec2.ami_decision(images)
    result = {
        "s3_uri": "s3://%s/%s" % (bucket, key),
        "bucket": bucket,
        "key": key,
        "ami_name": ami_name,
        "object_exists": head is not None,
        "object": object_summary(head),
        "image_exists": state != "absent",
        "image_state": image.get("State") if image else None,
        "image_id": image.get("ImageId") if image else None,
        "snapshot_id": ec2.root_snapshot_id(image) if image else None,
        "changed": False,
    }
    if image:
        result["image"] = image
    return result
