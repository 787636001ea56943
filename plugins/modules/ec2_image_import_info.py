#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ec2_image_import_info
short_description: Tell whether an imported image's S3 object and AMI exist
version_added: 0.1.0
description:
  - Read-only companion of M(edgeforge.artifacts.ec2_image_import), for the guide's Validate step. It tells whether
    the object is in the bucket (with the checksum metadata the import stored) and whether there is an AMI of the
    name, in which state.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.aws
  - edgeforge.artifacts.attributes
  - edgeforge.artifacts.attributes.info_module
options:
  bucket:
    description:
      - The S3 bucket.
    type: str
    required: true
  key:
    description:
      - The S3 object key.
    type: str
    required: true
  ami_name:
    description:
      - The AMI name. Defaults to O(key).
    type: str
seealso:
  - module: edgeforge.artifacts.ec2_image_import
"""

EXAMPLES = r"""
- name: Validate the import
  edgeforge.artifacts.ec2_image_import_info:
    region: us-east-1
    bucket: my-edge-images
    key: palette-edge.raw
  register: aws_image

- name: The object or the AMI is there
  ansible.builtin.assert:
    that: aws_image.object_exists or aws_image.image_state == 'available'
"""

RETURN = r"""
s3_uri:
  description: The S3 object looked at.
  returned: always
  type: str
  sample: s3://my-edge-images/palette-edge.raw
object_exists:
  description: Whether the object exists.
  returned: always
  type: bool
  sample: true
object:
  description: Size, checksums and disk format of the object (null when absent).
  returned: always
  type: dict
  sample: {"size": 2147483648, "sha256": "9f86d0...", "source_sha256": "9f86d0...", "disk_format": "raw", "etag": "5d41...-32"}
image_exists:
  description: Whether an AMI with the name exists (any state).
  returned: always
  type: bool
  sample: true
image_state:
  description: The AMI state (null when there is none).
  returned: always
  type: str
  sample: available
image_id:
  description: The AMI id (null when there is none).
  returned: always
  type: str
  sample: ami-0123456789abcdef0
snapshot_id:
  description: The snapshot of the AMI's root device (null when there is no AMI).
  returned: always
  type: str
  sample: snap-0123456789abcdef0
image:
  description: The DescribeImages entry of the AMI.
  returned: when the AMI exists
  type: dict
  sample: {"ImageId": "ami-0123456789abcdef0", "State": "available", "Architecture": "x86_64", "BootMode": "uefi"}
"""

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import (
    AwsConnection,
    BOTO3_IMPORT_ERROR,
    CONNECTION_OPTIONS,
    HAS_BOTO3,
    aws_connection_argument_spec,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.info import image_info
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def run(module):
    params = module.params
    connection = AwsConnection({name: params.get(name) for name in CONNECTION_OPTIONS})
    return image_info(Context(connection), params["bucket"], params["key"], params["ami_name"])


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            key=dict(type="str", required=True, no_log=False),
            ami_name=dict(type="str"),
        ),
        shared_specs=[aws_connection_argument_spec()],
        required_libraries=[("boto3", HAS_BOTO3, BOTO3_IMPORT_ERROR)],
        mutually_exclusive=[["profile", "access_key"]],
        required_together=[["access_key", "secret_key"]],
    )
    module.run(run, aws=True)


if __name__ == "__main__":
    main()
