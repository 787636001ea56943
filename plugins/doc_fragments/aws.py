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
      - When not set, the first of C(AWS_REGION), C(AWS_DEFAULT_REGION) and C(EC2_REGION) that is set, else the
        profile's region.
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
      - When neither this nor O(profile) is set, C(AWS_ACCESS_KEY_ID) (or C(AWS_ACCESS_KEY), C(EC2_ACCESS_KEY)) is
        read, with C(AWS_SECRET_ACCESS_KEY) and C(AWS_SESSION_TOKEN) or C(AWS_SECURITY_TOKEN), as amazon.aws does
        (what the AWX/AAP "Amazon Web Services" credential injects); without them boto3's standard chain applies
        (shared files, container or instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - The AWS secret access key. Passed to boto3 only; never logged, returned or put in a command line.
      - Read from C(AWS_SECRET_ACCESS_KEY) (or C(AWS_SECRET_KEY), C(EC2_SECRET_KEY)) when not set.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - The session token of temporary credentials.
      - Read from C(AWS_SESSION_TOKEN), C(AWS_SECURITY_TOKEN) or C(EC2_SECURITY_TOKEN) when not set.
    type: str
    aliases: [aws_session_token, security_token]
  endpoint_url:
    description:
      - One endpoint URL for S3, EC2 and IAM (a test server such as moto).
      - O(s3_endpoint_url), O(ec2_endpoint_url) and O(iam_endpoint_url) override it per service.
      - Read from C(AWS_ENDPOINT_URL) (or C(AWS_URL), C(EC2_URL)) when not set.
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
  aws_ca_bundle:
    description:
      - A PEM file of the CA certificates that sign the endpoints' certificates (a proxy or a private endpoint).
      - Read from C(AWS_CA_BUNDLE) when not set.
    type: path
  retry_mode:
    description:
      - botocore's retry mode for throttling, 5xx answers and dropped connections; the only retries made.
      - V(adaptive) also slows the client down when AWS throttles it.
      - Calls that are not idempotent are made safe to repeat (C(ImportSnapshot) carries a C(ClientToken); a repeated
        C(RegisterImage) or C(CreateRole) is recognised by what the first one created).
    type: str
    choices: [standard, adaptive]
    default: standard
  max_attempts:
    description:
      - Requests per AWS call at most, the first one included (botocore's C(total_max_attempts)), 1 to 20.
    type: int
    default: 5
requirements:
  - boto3 >= 1.34
notes:
  - Credentials are handed to boto3 in memory only. They are never written to a C(.secret) file as CanvOS's
    C(earthly.sh) flow requires.
"""
