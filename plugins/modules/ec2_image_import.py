#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ec2_image_import
short_description: Import a raw disk image into AWS as an AMI (S3 upload, snapshot import, image registration)
version_added: 0.1.0
description:
  - Does what CanvOS's C(+aws-cloud-image) target does (raw image to S3, C(ImportSnapshot), C(RegisterImage)), with
    bounded waits, idempotency, resumable uploads, tags and a preflight of the VM import service role.
  - "Idempotent: when an C(available) AMI with O(ami_name) exists, nothing is uploaded or imported and the result is
    unchanged; a C(pending) one is waited for."
  - The upload is a multipart upload with a thread pool. Every part carries an S3 C(CRC32) checksum that S3
    verifies on receipt, and the object records the SHA-256 of the whole image (C(edgeforge-sha256)). When the key
    holds no object, the SHA-256 is computed while the parts are read for the upload (one read of the image) and
    put on the object as a tag afterwards; otherwise it is computed first, to compare, and kept in the metadata.
    An identical object is not sent again; a different one is replaced only with O(overwrite=true). With O(resume=true) an interrupted multipart
    upload of the same key is continued (its parts are verified against the local file and only missing parts are
    sent). Without it, an upload that fails is aborted.
  - Progress (parts sent with bytes and percentage, import progress, image state) is written as it happens to
    O(log_path).
  - "One import per image and AMI: every import carries a C(ClientToken) derived from what shapes it (the image's
    SHA-256 and format, the object, the AMI name, the region, encryption and KMS key, the role), also put on the task
    and on the snapshot as the C(edgeforge-import-token) tag. Before C(ImportSnapshot) the module looks for that
    token: a completed snapshot (an earlier run whose registration failed) is registered; a running import task
    (a run that timed out or was interrupted) is waited for; a completed task's snapshot is taken. O(force=true)
    imports anew."
  - Image and snapshot look-ups only see the account's own (C(Owners=self)); CanvOS's look-up by name alone can reuse
    another account's public AMI.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.aws
  - edgeforge.artifacts.attributes
options:
  state:
    description:
      - V(present) imports the image (or finds the AMI already imported).
      - V(absent) deregisters the account's AMIs named O(ami_name) (O(key) by default), deletes their snapshots and,
        with O(remove_object=true), the S3 object. Nothing is uploaded or read locally.
    type: str
    choices: [present, absent]
    default: present
  image_path:
    description:
      - Path of the raw disk image on the host running the module (for example the output of
        M(edgeforge.artifacts.raw_disk_image)).
      - Required with O(state=present).
    type: path
  image_sha256:
    description:
      - The SHA-256 of O(image_path) when it is already known (for example from the C(.sha256) file written with
        the raw disk image). Saves reading the whole image once more before the upload.
      - It is stored as the object's checksum and decides whether the object at the key is the same image, so it
        must be the image's real digest. When not set, the module computes it.
    type: str
  bucket:
    description:
      - The S3 bucket receiving the image (CanvOS C(S3_BUCKET)). Must be in O(region).
    type: str
    required: true
  key:
    description:
      - The S3 object key (CanvOS C(S3_KEY)). Defaults to the image file name, as CanvOS does.
    type: str
  disk_format:
    description:
      - V(raw) uploads the image as it is.
      - V(vmdk) converts it first with C(qemu-img) to a stream-optimized VMDK in a temporary file (removed after the
        upload), which holds only the allocated data and so sends far fewer bytes for a mostly empty disk.
    type: str
    choices: [raw, vmdk]
    default: raw
  part_size_mb:
    description:
      - Size of each multipart upload part in MiB (5 to 5120). Grown automatically when the image would need more
        than 10,000 parts.
    type: int
    default: 64
  concurrency:
    description:
      - Number of parts uploaded in parallel.
    type: int
    default: 4
  overwrite:
    description:
      - Replace an object at the key whose size or checksum differs from the image. Without it such an object is an
        error (CanvOS silently reuses it).
    type: bool
    default: false
  resume:
    description:
      - Continue an interrupted multipart upload of the same key (only the missing parts are sent), and leave an
        upload that fails in place for the next run.
      - When false, interrupted uploads of the key are aborted and a failing upload is aborted.
    type: bool
    default: false
  role_name:
    description:
      - The VM Import/Export service role used by C(ImportSnapshot).
    type: str
    default: vmimport
  force:
    description:
      - Start a new snapshot import even when an import of the same object for the same AMI is running or has
        completed (see the re-attach note below).
      - Has no effect when an AMI of O(ami_name) already exists.
    type: bool
    default: false
  encrypted:
    description:
      - Import into an encrypted snapshot (and so an encrypted AMI), with O(kms_key_id) or the account's default
        C(aws/ebs) key. CanvOS imports unencrypted.
      - An AMI encrypted with the default C(aws/ebs) key cannot be shared, so O(launch_permissions) with it is
        refused before any work.
    type: bool
    default: false
  kms_key_id:
    description:
      - The KMS key (id, alias or ARN) of an encrypted import; implies O(encrypted=true).
      - With O(create_vmimport_role=true) the service role is granted the use of the key (C(kms:CreateGrant),
        C(Decrypt), C(DescribeKey), C(Encrypt), C(GenerateDataKey*), C(ReEncrypt*)) when no policy of it does.
    type: str
  create_vmimport_role:
    description:
      - Create O(role_name) when it does not exist, with the trust policy AWS documents (service
        C(vmie.amazonaws.com), external id C(vmimport)) and an inline policy allowing S3 read on O(bucket) and the
        EC2 snapshot permissions; when it exists without S3 read on O(bucket), that grant is added.
      - When false and the role is missing, the module fails and names this option and the IAM commands.
    type: bool
    default: false
  import_description:
    description:
      - Description of the import task. Defaults to C(Import <key>).
    type: str
  ami_name:
    description:
      - Name of the AMI (CanvOS C(AMI_NAME)). Defaults to O(key), as CanvOS does.
    type: str
  ami_description:
    description:
      - Description of the AMI. Defaults to C(AMI for <name> created from snapshot <snapshot id>).
    type: str
  arch:
    description:
      - Architecture of the image (CanvOS C(ARCH)); V(amd64) registers C(x86_64), V(arm64) registers C(arm64).
    type: str
    choices: [amd64, arm64, x86_64, aarch64]
    default: amd64
  root_device_name:
    description:
      - Root device name of the AMI.
    type: str
    default: /dev/xvda
  volume_size:
    description:
      - Root volume size in GiB. Defaults to O(min_volume_size) when that is set, else to the snapshot size.
      - A size below O(min_volume_size) is registered as given, with a warning.
    type: int
  min_volume_size:
    description:
      - The root volume in GiB an instance of the image needs at first boot (the C(min_root_volume_gib) that
        M(edgeforge.artifacts.raw_disk_image) returns - its partitions plus the state and persistent partitions the
        first boot adds). The default of O(volume_size); V(0) or unset means not known.
    type: int
  volume_type:
    description:
      - EBS volume type of the root volume.
    type: str
    choices: [gp2, gp3, io1, io2, st1, sc1, standard]
    default: gp3
  delete_on_termination:
    description:
      - Delete the root volume when an instance of the AMI terminates.
    type: bool
    default: true
  boot_mode:
    description:
      - Boot mode of the AMI.
    type: str
    choices: [uefi, legacy-bios, uefi-preferred]
    default: uefi
  ena_support:
    description:
      - Enable Elastic Network Adapter support.
    type: bool
    default: true
  tags:
    description:
      - Tags put on the import task, the snapshot and the AMI (C(Name) defaults to the AMI name). Missing tags are
        added to an existing AMI and its snapshot.
    type: dict
    default: {}
  launch_permissions:
    description:
      - Who may launch the AMI, besides the account. Added when missing; permissions the AMI has beyond these are
        removed only with O(purge_launch_permissions=true).
      - Not managed when not set.
    type: dict
    suboptions:
      user_ids:
        description: AWS account ids (12 digits).
        type: list
        elements: str
      group_names:
        description: V(all) makes the AMI public.
        type: list
        elements: str
      org_arns:
        description: ARNs of AWS Organizations.
        type: list
        elements: str
      org_unit_arns:
        description: ARNs of organizational units.
        type: list
        elements: str
  purge_launch_permissions:
    description:
      - Remove launch permissions not listed in O(launch_permissions).
    type: bool
    default: false
  deprecation_time:
    description:
      - When the AMI becomes deprecated (C(EnableImageDeprecation)), an ISO 8601 date and time such as
        V(2027-06-30T00:00:00Z); without a time zone, UTC. AWS keeps the minute.
      - Set on a new AMI and on an existing one whose deprecation time differs. Not managed when not set.
    type: str
  copy_to_regions:
    description:
      - Regions that get a copy of the AMI (C(CopyImage)), each waited for within O(wait_timeout). A region that
        already holds an AMI of ours with the name is left as it is, so a re-run copies nothing twice.
      - With O(state=absent), the copies in these regions are removed too.
    type: list
    elements: str
  copy_kms_key_ids:
    description:
      - The KMS key of the copy in each region (a key is per region), for an encrypted AMI; without it the copies
        use each region's default C(aws/ebs) key. Given, it must name a key for every region of O(copy_to_regions).
    type: dict
  remove_object:
    description:
      - With O(state=absent), delete the S3 object too.
    type: bool
    default: false
  wait_timeout:
    description:
      - Time limit in seconds for the snapshot import and the AMI becoming C(available) together.
      - It starts once the object is in S3, so a long upload does not eat into it (the upload has O(upload_timeout)).
      - When it passes, the module fails and names the import task or the AMI; the import goes on in AWS and the next
        run waits for it instead of starting another one.
    type: int
    default: 3600
  upload_timeout:
    description:
      - Time limit in seconds for the S3 upload (the checksum and VMDK conversion before it not included). No limit
        when not set.
      - Progress (parts sent, bytes and percentage) is written to O(log_path) as the upload goes. When the limit
        passes, the upload stops; with O(resume=true) the next run sends only the missing parts.
    type: int
  poll_interval:
    description:
      - Seconds between two status queries of the import task and the image.
    type: float
    default: 15
  delete_object_after:
    description:
      - Delete the S3 object once the AMI is available.
    type: bool
    default: false
  work_dir:
    description:
      - Directory for the temporary VMDK. Defaults to the image's directory.
    type: path
  log_path:
    description:
      - File receiving timestamped progress lines while the module runs (C(tail -f) it).
      - Not written in check mode.
    type: path
attributes:
  check_mode:
    support: full
    details: Reports the plan (upload, import, registration) without acting and writes no file (no progress log).
      The local image is read to compare its checksum with the object; an image that does not exist yet (built by
      an earlier step of the same check-mode run) is planned as a new upload.
  diff_mode:
    support: full
    details: Shows the AMI and S3 object a run creates, or the AMIs O(state=absent) deregisters.
notes:
  - Needs the permissions CanvOS documents (C(s3:PutObject), C(s3:GetObject), C(s3:ListBucket),
    C(ec2:ImportSnapshot), C(ec2:DescribeImportSnapshotTasks), C(ec2:DescribeSnapshots), C(ec2:RegisterImage),
    C(ec2:DescribeImages), C(ec2:CreateTags)) plus C(iam:GetRole), C(s3:ListBucketMultipartUploads),
    C(s3:AbortMultipartUpload), C(s3:PutObjectTagging), C(s3:GetObjectTagging), and
    C(iam:CreateRole)/C(iam:PutRolePolicy) with O(create_vmimport_role).
seealso:
  - module: edgeforge.artifacts.ec2_image_import_info
"""

EXAMPLES = r"""
- name: Import the raw disk image as an AMI
  edgeforge.artifacts.ec2_image_import:
    image_path: build/palette-edge.raw
    region: us-east-1
    bucket: my-edge-images
    key: palette-edge-kubeadm-1.33.5.raw
    tags:
      project: edge
    log_path: build/logs/aws.log

- name: Send a compact VMDK, create the vmimport role if missing, resume an interrupted upload
  edgeforge.artifacts.ec2_image_import:
    image_path: build/palette-edge.raw
    region: eu-west-1
    bucket: my-edge-images
    disk_format: vmdk
    create_vmimport_role: true
    resume: true
    boot_mode: uefi-preferred
    arch: arm64
    delete_object_after: true
"""

RETURN = r"""
s3_uri:
  description: The S3 object the image was imported from.
  returned: always
  type: str
  sample: s3://my-edge-images/palette-edge.raw
bytes_sent:
  description: Bytes uploaded by this run (0 when the object was already there or the AMI existed).
  returned: always
  type: int
  sample: 4294967296
upload:
  description: What happened to the object (V(uploaded), V(resumed), V(replaced), V(skipped), V(not needed), V(would upload)).
  returned: always
  type: str
  sample: uploaded
snapshot_from:
  description:
    - Where the snapshot came from - V(imported) (a new import), V(waited) (an import an earlier run started),
      V(completed) (an import task that had completed) or V(snapshot) (a snapshot whose registration had failed).
  returned: when a snapshot was needed
  type: str
  sample: imported
import_task_id:
  description: The ImportSnapshot task id (null when no import was needed).
  returned: always
  type: str
  sample: import-snap-0123456789abcdef0
snapshot_id:
  description: The EBS snapshot backing the AMI.
  returned: always
  type: str
  sample: snap-0123456789abcdef0
image_id:
  description: The AMI id.
  returned: always
  type: str
  sample: ami-0123456789abcdef0
image_state:
  description: The AMI state.
  returned: always
  type: str
  sample: available
ami_name:
  description: The AMI name.
  returned: always
  type: str
  sample: palette-edge.raw
role_created:
  description: Whether the VM import service role was created.
  returned: always
  type: bool
  sample: false
object_deleted:
  description: Whether the S3 object was deleted after the import.
  returned: always
  type: bool
  sample: false
source_sha256:
  description: SHA-256 of the local raw image.
  returned: when the image was read
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
parts_reused:
  description: Parts of an interrupted upload that were verified and not sent again.
  returned: when an upload ran
  type: int
  sample: 12
plan:
  description: What a real run would do (check mode only).
  returned: check mode
  type: dict
  sample: {"upload": "upload", "import": "ImportSnapshot RAW from s3://b/k", "register": "RegisterImage k (x86_64, uefi)"}
copies:
  description: The AMI's copies, by region (null for a copy check mode would make).
  returned: state is present and the AMI exists
  type: dict
  sample: {"eu-west-1": "ami-0fedcba9876543210"}
deregistered_image_ids:
  description: The AMIs deregistered (or, in check mode, to deregister).
  returned: state is absent
  type: list
  elements: str
  sample: [ami-0123456789abcdef0]
deleted_snapshot_ids:
  description: The snapshots deleted (or, in check mode, to delete).
  returned: state is absent
  type: list
  elements: str
  sample: [snap-0123456789abcdef0]
seconds:
  description: Seconds spent in each step (lookup, preflight, checksum, convert, upload, import, register, total).
  returned: always
  type: dict
  sample: {"checksum": 2.1, "upload": 40.3, "import": 600.2, "register": 30.5, "total": 673.4}
"""

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ProgressLog
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import (
    AwsConnection,
    BOTO3_IMPORT_ERROR,
    CONNECTION_OPTIONS,
    HAS_BOTO3,
    aws_connection_argument_spec,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.importer import import_image
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import (
    IMPORT_OPTIONS,
    import_argument_spec,
    normalise_options,
    volume_size_warning,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def with_diff(result, state):
    if result.get("changed") and state == "absent":
        result["diff"] = {"before": {"images": result["deregistered_image_ids"]}, "after": {"images": []}}
    elif result.get("changed"):
        result["diff"] = {
            "before": {"image": None},
            "after": {"image": result.get("ami_name"), "s3_uri": result.get("s3_uri")},
        }
    return result


def run(module):
    params = module.params
    opts = normalise_options({name: params[name] for name in IMPORT_OPTIONS})
    warning = volume_size_warning(opts)
    if warning:
        module.warn(warning)
    # Check mode writes nothing, not even the progress log.
    with ProgressLog(None if module.check_mode else params["log_path"]) as log:
        connection = AwsConnection({name: params.get(name) for name in CONNECTION_OPTIONS},
                                   max_pool_connections=opts["concurrency"])
        result = import_image(Context(connection, log, module.check_mode), opts)
    return with_diff(result, params["state"])


def main():
    argument_spec = dict(import_argument_spec(), log_path=dict(type="path"))
    module = EdgeforgeModule(
        argument_spec=argument_spec,
        shared_specs=[aws_connection_argument_spec()],
        required_libraries=[("boto3", HAS_BOTO3, BOTO3_IMPORT_ERROR)],
        mutually_exclusive=[["profile", "access_key"]],
        required_together=[["access_key", "secret_key"]],
        required_if=[["state", "present", ["image_path"]]],
    )
    module.run(run, aws=True)


if __name__ == "__main__":
    main()
