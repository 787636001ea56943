# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # AWS connection options shared by every AWS module of edgeforge.artifacts.
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region (the CanvOS C(REGION) argument).
      - When not set, C(AWS_REGION), C(AWS_DEFAULT_REGION) or the profile's region is used.
    type: str
    aliases: [aws_region]
  profile:
    description:
      - A named profile of the shared AWS config/credentials files.
      - Mutually exclusive with O(access_key)/O(secret_key).
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - The AWS access key id.
      - When neither this nor O(profile) is set, boto3's standard chain applies (environment variables, shared
        files, container or instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - The AWS secret access key. Passed to boto3 only; never logged, returned or put in a command line.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - The session token of temporary credentials.
    type: str
    aliases: [aws_session_token]
  endpoint_url:
    description:
      - One endpoint URL for S3, EC2 and IAM (a test server such as moto).
      - O(s3_endpoint_url), O(ec2_endpoint_url) and O(iam_endpoint_url) override it per service.
    type: str
    aliases: [aws_endpoint_url]
  s3_endpoint_url:
    description:
      - The S3 endpoint URL, for S3-compatible object stores.
    type: str
  ec2_endpoint_url:
    description:
      - The EC2 endpoint URL.
    type: str
  iam_endpoint_url:
    description:
      - The IAM endpoint URL.
    type: str
  s3_path_style:
    description:
      - Use path-style S3 addressing (C(http://host/bucket/key)), which most S3-compatible stores need.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the TLS certificates of the endpoints.
    type: bool
    default: true
requirements:
  - boto3 >= 1.34
notes:
  - Credentials are handed to boto3 in memory only. They are never written to a C(.secret) file as CanvOS's
    C(earthly.sh) flow requires.
"""
