"""TEST DOUBLE of EC2 ImportSnapshot / DescribeImportSnapshotTasks for moto (test code only).

moto 5 serves S3, EC2 and IAM but has no ImportSnapshot (HTTP 500, NotImplementedError), and its RegisterImage keeps
only Name and Description. This module patches moto's EC2Response with:

* ``import_snapshot`` — THE TEST DOUBLE of the one AWS call moto lacks. It checks the role (moto IAM) like AWS does,
  reads the object from moto's own S3 backend and decides whether it is a disk image (raw: an MBR boot signature
  0x55AA at byte 510 or a GPT header "EFI PART" at byte 512; VMDK: the "KDMV" magic). A disk image gets a real
  snapshot in moto's EC2 backend (volume size = the disk size rounded up to GiB); anything else ends ``deleted`` with
  a ``ClientError: ...`` StatusMessage as AWS reports it.
  A repeated ClientToken returns the task it first started, as AWS does (no second import). ``Encrypted`` and
  ``KmsKeyId`` give an encrypted snapshot under that key (or the account's default EBS key).
* ``describe_import_snapshot_tasks`` — THE TEST DOUBLE of its companion: reports each task as AWS does: ``active``
  with StatusMessage ``pending`` then ``converting`` and a growing Progress, then ``completed`` with the SnapshotId.
  Each query naming the task advances it one step (a listing of all tasks advances none). A task whose tags hold
  ``edgeforge-test-double=stay-active`` never completes (for timeout tests).
* ``register_image`` — replaces moto's RegisterImage, which keeps only Name and Description: honours RootDeviceName,
  BlockDeviceMappings (SnapshotId, VolumeSize, VolumeType, DeleteOnTermination), Architecture, VirtualizationType,
  BootMode and EnaSupport. The first RegisterImage of a name containing ``register-fails-once`` fails (an
  InvalidParameterValue), to test a re-run after a failed registration. An image registered with the Description
  ``TEST DOUBLE: a public AMI of another account`` is owned by account 111122223333 and public (moto keeps accounts
  apart, so another account's public AMI of the same name could not be seen otherwise).
* ``enable_image_deprecation`` — THE TEST DOUBLE of EnableImageDeprecation (moto has none): keeps the time (to the
  minute, as AWS does) and DescribeImages reports it as DeprecationTime.
* ``copy_image`` — moto's CopyImage, wrapped: a repeated ClientToken returns the first copy, ``Encrypted`` and
  ``KmsKeyId`` encrypt the copy's snapshot, and the copy is ``pending`` before it is ``available`` (moto ignores all
  three).
* ``describe_images`` — moto's DescribeImages, wrapped so an image registered through the double is ``pending`` for
  the first DescribeImages, then ``available`` (moto's images are available at once).

Every ImportSnapshot call is appended to the file named by ``EDGEFORGE_DOUBLE_CALLS`` (when set), one line
``ImportSnapshot<TAB>s3://bucket/key<TAB>new|repeat<TAB>task id``, so a test can count the imports it caused.

Everything else is moto's own implementation. Run as ``python -m tests.testbed.moto_import_double [--port N]``: starts
a moto server on 127.0.0.1 (port 0 = a free one) and prints ``PORT <n>`` once it serves.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import random
import sys
import threading
import time

from moto.ec2.exceptions import InvalidParameterValueError
from moto.ec2.models.amis import Ami
from moto.ec2.responses import EC2Response
from moto.core.responses import ActionResult

STAY_ACTIVE_TAG = ("edgeforge-test-double", "stay-active")
FOREIGN_ACCOUNT = "111122223333"
FOREIGN_PUBLIC_DESCRIPTION = "TEST DOUBLE: a public AMI of another account"
GiB = 1024 ** 3

_LOCK = threading.Lock()
_TASKS = {}  # (account, region) -> {task_id: task dict}
_IMAGE_POLLS = {}  # image id -> DescribeImages calls seen while pending
_FAILED_ONCE = set()  # AMI names whose first registration failed


def sniff_disk_image(head, disk_format):
    """'' when ``head`` (first bytes of the object) looks like a disk image of that format, else the reason."""
    if disk_format == "VMDK":
        return "" if head[:4] == b"KDMV" else "the VMDK has no KDMV header"
    if len(head) >= 520 and head[512:520] == b"EFI PART":
        return ""
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return ""
    return "no MBR boot signature and no GPT header"


def _s3_object(account_id, partition, bucket, key):
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id][partition]
    obj = backend.get_object(bucket, key)
    if obj is None:
        return None, b""
    buffer = obj._value_buffer  # pylint: disable=protected-access
    with obj.lock:
        buffer.seek(0)
        head = buffer.read(1024 * 1024)
    return obj, head


def _role_exists(account_id, partition, name):
    from moto.iam.models import iam_backends

    try:
        iam_backends[account_id][partition].get_role(name)
        return True
    except Exception:  # pylint: disable=broad-except
        return False


def _task_key(response):
    return (response.current_account, response.region)


def import_snapshot(self):  # TEST DOUBLE of EC2 ImportSnapshot
    container = self._get_param("DiskContainer") or {}
    role = self._get_param("RoleName") or "vmimport"
    description = self._get_param("Description") or ""
    tags = self._parse_tag_specification().get("import-snapshot-task", {})
    self.error_on_dryrun()
    partition = self.partition
    if not _role_exists(self.current_account, partition, role):
        raise InvalidParameterValueError(
            "The service role %s provided does not exist or does not have sufficient permissions" % role
        )
    disk_format = str(container.get("Format", "RAW")).upper()
    bucket_info = container.get("UserBucket") or {}
    bucket, key = bucket_info.get("S3Bucket"), bucket_info.get("S3Key")
    client_token = self._get_param("ClientToken")
    with _LOCK:
        for existing in _TASKS.get(_task_key(self), {}).values():
            if client_token and existing["_client_token"] == client_token:
                _record_call(bucket, key, "repeat", existing["ImportTaskId"])
                return ActionResult(_task_view(existing))
    task_id = "import-snap-%017x" % random.getrandbits(68)
    obj, head = _s3_object(self.current_account, partition, bucket, key)
    task = {
        "ImportTaskId": task_id,
        "Description": description,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        "SnapshotTaskDetail": {
            "Description": container.get("Description", ""),
            "Format": disk_format,
            "UserBucket": {"S3Bucket": bucket, "S3Key": key},
            "Status": "active",
            "StatusMessage": "pending",
            "Progress": "0",
        },
        "_step": 0,
        "_stay_active": tags.get(STAY_ACTIVE_TAG[0]) == STAY_ACTIVE_TAG[1],
        "_failure": None,
        "_size": obj.size if obj is not None else 0,
        "_client_token": client_token,
        "_encrypted": str(self._get_param("Encrypted") or "").lower() == "true",
        "_kms_key_id": self._get_param("KmsKeyId"),
    }
    if obj is None:
        task["_failure"] = "ClientError: Unable to read the object s3://%s/%s: it does not exist" % (bucket, key)
    else:
        reason = sniff_disk_image(head, disk_format)
        if reason:
            task["_failure"] = "ClientError: Disk validation failed [Unsupported specified file format: %s]" % reason
    with _LOCK:
        _TASKS.setdefault(_task_key(self), {})[task_id] = task
    _record_call(bucket, key, "new", task_id)
    return ActionResult(_task_view(task))


def _task_view(task):
    return {
        "Description": task["Description"],
        "ImportTaskId": task["ImportTaskId"],
        "SnapshotTaskDetail": dict(task["SnapshotTaskDetail"]),
        "Tags": task["Tags"],
    }


def _record_call(bucket, key, kind, task_id):
    path = os.environ.get("EDGEFORGE_DOUBLE_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("ImportSnapshot\ts3://%s/%s\t%s\t%s\n" % (bucket, key, kind, task_id))


def _advance(response, task):
    detail = task["SnapshotTaskDetail"]
    if detail["Status"] in ("completed", "deleted"):
        return
    task["_step"] += 1
    step = task["_step"]
    if task["_stay_active"]:
        detail.update(Status="active", StatusMessage="pending", Progress="3")
        return
    if task["_failure"]:
        if step >= 2:
            detail.update(Status="deleted", StatusMessage=task["_failure"])
            detail.pop("Progress", None)
        else:
            detail.update(Status="active", StatusMessage="validating", Progress="10")
        return
    if step == 1:
        detail.update(Status="active", StatusMessage="pending", Progress="5")
    elif step == 2:
        detail.update(Status="active", StatusMessage="converting", Progress="42")
    elif step == 3:
        detail.update(Status="active", StatusMessage="converting", Progress="87")
    else:
        backend = response.ec2_backend
        size_gib = max(1, math.ceil(task["_size"] / GiB))
        volume = backend.create_volume(size=size_gib, zone_name=response.region + "a", encrypted=task["_encrypted"],
                                       kms_key_id=task["_kms_key_id"] if task["_encrypted"] else None)
        snapshot = backend.create_snapshot(volume.id, "Created by AWS-VMImport service for %s" % task["ImportTaskId"])
        snapshot.kms_key_id = volume.kms_key_id  # moto's CreateSnapshot drops the volume's key
        backend.delete_volume(volume.id)
        detail.update(Status="completed", SnapshotId=snapshot.id, DiskImageSize=float(task["_size"]))
        detail.pop("StatusMessage", None)
        detail.pop("Progress", None)


def describe_import_snapshot_tasks(self):  # TEST DOUBLE of EC2 DescribeImportSnapshotTasks
    ids = self._get_param("ImportTaskIds") or []
    self.error_on_dryrun()
    out = []
    with _LOCK:
        tasks = _TASKS.get(_task_key(self), {})
        for task_id in ids or list(tasks):
            task = tasks.get(task_id)
            if task is None:
                raise InvalidParameterValueError("The import task %s does not exist" % task_id)
            if ids:
                _advance(self, task)
            out.append(_task_view(task))
    return ActionResult({"ImportSnapshotTasks": out})


class HonouringAmi(Ami):
    """moto's Ami with the registration's own root device mapping (stock moto invents a 15 GiB one)."""

    __module__ = "tests.testbed.moto_import_double"  # moto's model registry keys classes by module path

    def __init__(self, *args, mappings=None, ena_support=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._mappings = mappings or []
        self.ena_support = ena_support
        self.root_device_type = "ebs"

    @property
    def block_device_mappings(self):
        return self._mappings


def register_image(self):  # moto's RegisterImage, honouring the parameters it ignores
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    self.error_on_dryrun()
    backend = self.ec2_backend
    mappings = []
    for mapping in self._get_param("BlockDeviceMappings", []) or []:
        ebs = dict(mapping.get("Ebs") or {})
        if ebs.get("SnapshotId"):
            snapshot = backend.get_snapshot(ebs["SnapshotId"])  # raises InvalidSnapshot.NotFound like AWS
            size = int(ebs.get("VolumeSize") or snapshot.volume.size)
            if size < snapshot.volume.size:
                raise InvalidParameterValueError(
                    "Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB"
                    % (size, snapshot.id, snapshot.volume.size)
                )
            ebs["VolumeSize"] = size
            ebs["Encrypted"] = bool(snapshot.encrypted)
        ebs.setdefault("DeleteOnTermination", True)
        ebs.setdefault("VolumeType", "gp2")
        ebs["DeleteOnTermination"] = str(ebs["DeleteOnTermination"]).lower() == "true"
        mappings.append({"DeviceName": mapping.get("DeviceName"), "Ebs": ebs})
    for existing in backend.amis.values():
        if existing.name == name and existing.owner_id == backend.account_id:
            raise InvalidParameterValueError("AMI name %s is already in use by AMI %s" % (name, existing.id))
    if "register-fails-once" in (name or "") and name not in _FAILED_ONCE:
        _FAILED_ONCE.add(name)
        raise InvalidParameterValueError("TEST DOUBLE: the first registration of %s fails" % name)
    from moto.ec2.utils import random_ami_id

    ena = self._get_param("EnaSupport")
    # moto keeps accounts apart, so no other account's public AMI can be seen: this description makes one.
    foreign = description == FOREIGN_PUBLIC_DESCRIPTION
    ami = HonouringAmi(
        backend,
        random_ami_id(),
        name=name,
        description=description,
        virtualization_type=self._get_param("VirtualizationType", "hvm"),
        architecture=self._get_param("Architecture", "x86_64"),
        root_device_name=self._get_param("RootDeviceName", "/dev/sda1"),
        boot_mode=self._get_param("BootMode", "legacy-bios"),
        state="pending",
        mappings=mappings,
        ena_support=None if ena is None else str(ena).lower() == "true",
        owner_id=FOREIGN_ACCOUNT if foreign else None,
        public=foreign,
    )
    backend.amis[ami.id] = ami
    _IMAGE_POLLS[ami.id] = 0
    return ActionResult({"ImageId": ami.id})


_original_describe_images = EC2Response.describe_images


def describe_images(self):
    """moto's DescribeImages; an image registered through the double turns available after one query."""
    for ami_id in list(_IMAGE_POLLS):
        ami = self.ec2_backend.amis.get(ami_id)
        if ami is None:
            _IMAGE_POLLS.pop(ami_id, None)
            continue
        _IMAGE_POLLS[ami_id] += 1
        if _IMAGE_POLLS[ami_id] > 1 and ami.state == "pending":
            ami.state = "available"
            _IMAGE_POLLS.pop(ami_id, None)
    return _original_describe_images(self)


def enable_image_deprecation(self):  # TEST DOUBLE of EC2 EnableImageDeprecation (moto has none)
    image_id = self._get_param("ImageId")
    deprecate_at = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    ami = self.ec2_backend.describe_images(ami_ids=[image_id])[0]  # raises InvalidAMIID.NotFound like AWS
    when = datetime.datetime.fromisoformat(str(deprecate_at).replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    # AWS keeps the minute and reports it with milliseconds.
    ami.deprecation_time = when.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return ActionResult({"Return": True})


_original_copy_image = EC2Response.copy_image
_COPIES = {}  # ClientToken -> image id


def copy_image(self):  # moto's CopyImage, with the ClientToken, encryption and timing it ignores
    token = self._get_param("ClientToken")
    if token and token in _COPIES:
        return ActionResult({"ImageId": _COPIES[token]})
    result = _original_copy_image(self)
    image_id = result.result["ImageId"]
    ami = self.ec2_backend.amis[image_id]
    if str(self._get_param("Encrypted") or "").lower() == "true":
        ami.ebs_snapshot.encrypted = True
        ami.ebs_snapshot.kms_key_id = self._get_param("KmsKeyId") or "alias/aws/ebs"
    ami.state = "pending"
    _IMAGE_POLLS[image_id] = 0
    if token:
        _COPIES[token] = image_id
    return result


def install():
    """Patch moto's EC2Response (idempotent)."""
    EC2Response.import_snapshot = import_snapshot
    EC2Response.describe_import_snapshot_tasks = describe_import_snapshot_tasks
    EC2Response.register_image = register_image
    EC2Response.describe_images = describe_images
    EC2Response.enable_image_deprecation = enable_image_deprecation
    EC2Response.copy_image = copy_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    install()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
