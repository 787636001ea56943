"""The AWS flow against the test bed's moto server (real boto3 over HTTP on loopback).

moto serves S3, EC2, IAM and STS. The labelled TEST DOUBLE in tests/testbed/moto_import_double.py replaces EC2
ImportSnapshot, DescribeImportSnapshotTasks and EnableImageDeprecation (moto has none of them) and RegisterImage (moto
keeps only the name and description), and wraps CopyImage (ClientToken, encryption, timing) and DescribeImages
(pending before available); it counts ImportSnapshot calls. These tests show
the requests and the flow are right, not that AWS accepts the image. Images are small sparse GPT disks.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import types
import uuid

import pytest

from tests.integration.disk_artifacts import first_boot_min_gib
from tests.integration.helpers import REPO_ROOT, VENV_BIN, ansible_bin, run_playbook

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
BUCKET = "edgeforge-test-images-%s" % uuid.uuid4().hex[:8]  # unique per test run


def make_raw_image(path, size=64 * MiB, data=8 * MiB, seed=None):
    """A sparse GPT disk (sfdisk) with ``data`` random bytes written at 2 MiB."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: gpt\n,,L\n", check=True)
    rng = os.urandom if seed is None else (lambda n: hashlib.shake_256(seed.encode()).digest(n))
    with open(path, "r+b") as handle:
        handle.seek(2 * MiB)
        remaining = data
        while remaining:
            chunk = min(remaining, 8 * MiB)
            handle.write(rng(chunk))
            remaining -= chunk
    return str(path)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def aws(moto_server):
    s3 = moto_server.client("s3")
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    return moto_server


@pytest.fixture
def vmimport_role(aws):
    iam = aws.client("iam")
    try:
        iam.get_role(RoleName="vmimport")
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "vmie.amazonaws.com"},
                           "Action": "sts:AssumeRole",
                           "Condition": {"StringEquals": {"sts:Externalid": "vmimport"}}}],
        }
        iam.create_role(RoleName="vmimport", AssumeRolePolicyDocument=json.dumps(trust))
    return "vmimport"


MODULE_PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: run the module
      edgeforge.artifacts.%s: %s
      register: module_result
      ignore_errors: true

    - name: hand the result to the test
      ansible.builtin.copy:
        content: "{{ module_result | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
      check_mode: false
      when: result_path is defined
"""


def run_module(aws, args, *, module="ec2_image_import", check=False, verbosity=0, env=None):
    """Run one module in a playbook; returns (task result dict, PlaybookResult)."""
    module_args = dict(aws.connection_options())
    module_args.update(args)
    # The playbook and its result live in a directory of their own: nothing is written into the checkout.
    with tempfile.TemporaryDirectory(prefix="edgeforge-aws-test-") as work:
        playbook = write_module_playbook(work, module, module_args)
        result_path = os.path.join(work, "result.json")
        result = run_playbook(playbook, {"result_path": result_path}, check=check, env=env,
                              verbosity=verbosity, extra_args=["--diff"] if check else [])
        assert os.path.exists(result_path), result.output[-3000:]
        with open(result_path, encoding="utf-8") as handle:
            task = json.load(handle)
    result.rc = 1 if task.get("failed") else result.rc
    return task, result


def write_module_playbook(directory, module, module_args):
    path = os.path.join(directory, "module.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(MODULE_PLAYBOOK % (module, json.dumps(module_args)))
    return path


def image_args(path, **extra):
    args = {"image_path": path, "bucket": BUCKET, "part_size_mb": 8, "poll_interval": 0.05, "wait_timeout": 60}
    args.update(extra)
    return args


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid):
    """SIGKILL ``pid`` and every process it started (Ansible runs the module in a process of its own session)."""
    for victim in [pid] + descendants(pid):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def file_sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def object_sha256(aws, key):
    """The image SHA-256 recorded on the object: its metadata, or its tags when it was computed during the upload."""
    s3 = aws.client("s3")
    stored = s3.head_object(Bucket=BUCKET, Key=key)["Metadata"].get("edgeforge-sha256")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}
    return stored or tags.get("edgeforge-sha256")


def multipart_etag(path, part_size):
    md5s = []
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(part_size), b""):
            md5s.append(hashlib.md5(chunk).digest())
    return "%s-%d" % (hashlib.md5(b"".join(md5s)).hexdigest(), len(md5s))


# ---------------------------------------------------------------------------------------------------------------


def test_playbook_imports_an_ami_then_changes_nothing_and_never_shows_the_secret(aws, tmp_path):
    raw = make_raw_image(tmp_path / "palette-edge.raw")
    key = unique("palette-edge-kubeadm") + ".raw"
    log_path = tmp_path / "aws.log"
    extra = {
        "s3_bucket": BUCKET,
        "region": aws.region,
        "s3_key": key,
        "aws_cloud_image_raw_image": raw,
        "aws_cloud_image_endpoint_url": aws.endpoint_url,
        "aws_cloud_image_access_key": aws.access_key,
        "aws_cloud_image_secret_key": aws.secret_key,
        "aws_cloud_image_create_vmimport_role": True,
        "aws_cloud_image_poll_interval": 0.05,
        "aws_cloud_image_part_size_mb": 8,
        "aws_cloud_image_tags": {"project": "edge", "owner": "platform"},
        "aws_cloud_image_log_path": str(log_path),
    }
    first = run_playbook("playbooks/aws.yml", extra, verbosity=3)
    assert first.rc == 0, first.output[-4000:]
    assert aws.secret_key not in first.output
    assert first.recap["localhost"]["failed"] == 0

    ec2 = aws.client("ec2")
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]
    assert len(images) == 1
    image = images[0]
    assert image["State"] == "available"
    assert image["Architecture"] == "x86_64"
    assert image["BootMode"] == "uefi"
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["VirtualizationType"] == "hvm"
    assert image["EnaSupport"] is True
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags == {"Name": key, "project": "edge", "owner": "platform"}
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["project"] == "edge"
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=key)
    # no object at the key: the SHA-256 was computed while the parts were read (one pass), then put on the object
    assert object_sha256(aws, key) == file_sha256(raw)
    assert head["ContentLength"] == os.path.getsize(raw)
    log = log_path.read_text()
    assert "part 8/8 sent" in log and "100.0%" in log and "converting" in log
    assert "SHA-256 computed on the way" in log and "computing the SHA-256" not in log
    assert aws.secret_key not in log

    second = run_playbook("playbooks/aws.yml", extra, verbosity=3)
    assert second.rc == 0, second.output[-4000:]
    assert second.recap["localhost"]["changed"] == 0
    assert "bytes_sent: 0" in second.stdout
    assert aws.secret_key not in second.output
    assert len(ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]) == 1


def _build_and_import_vars(standin_images, aws, tmp_path, iso_name, **more):
    """aws.yml variables without a raw image (the play builds it from the stand-ins) against the moto server."""
    extra = dict(standin_images.config_overrides)
    extra.update({
        "iso_name": iso_name,
        "build_dir": str(tmp_path / "build"),
        "s3_bucket": BUCKET,
        "region": aws.region,
        "aws_cloud_image_endpoint_url": aws.endpoint_url,
        "aws_cloud_image_access_key": aws.access_key,
        "aws_cloud_image_secret_key": aws.secret_key,
        "aws_cloud_image_create_vmimport_role": True,
    })
    extra.update(more)
    return extra


def test_playbook_builds_the_raw_image_from_the_installer_image_then_imports_it(aws, docker_engine, standin_images,
                                                                                tmp_path):
    # No raw image given: aws.yml builds the installer image from the mirrored stand-ins, the raw disk image from it,
    # then imports it (as a stream-optimized VMDK: the disk is mostly empty).
    iso_name = unique("edge-aws")
    extra = _build_and_import_vars(standin_images, aws, tmp_path, iso_name, aws_cloud_image_poll_interval=0.05,
                                   aws_cloud_image_disk_format="vmdk",
                                   aws_cloud_image_log_path=str(tmp_path / "aws.log"))
    run = run_playbook("playbooks/aws.yml", extra)
    assert run.rc == 0, run.output[-4000:]
    raw = tmp_path / "build" / (iso_name + ".raw")
    assert raw.is_file() and not (tmp_path / "build" / (iso_name + ".iso")).exists()
    assert "Build the installer image" in run.stdout and "Push" not in run.stdout  # the AWS flow pushes nothing
    # through the provider_images role, installer image only: no provider image, no BYOOS pack manifest
    assert "provider_images : Build the provider images" in run.stdout
    assert not (tmp_path / "build" / "byoos-pack.yaml").exists()
    key = iso_name + ".raw"  # S3_KEY empty: the raw file name, as CanvOS's script does; the AMI is named after it
    ec2 = aws.client("ec2")
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]
    assert [image["State"] for image in images] == ["available"]
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] < raw.stat().st_size  # the VMDK, not the raw disk
    assert aws.secret_key not in run.output
    # B21: no volume size given - the root device gets the smallest volume the image's first boot needs (its
    # partitions plus state and persistent), worked out here from the image's own partition table
    ebs = images[0]["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["VolumeSize"] == first_boot_min_gib(str(raw)) > -(-raw.stat().st_size // 1024 ** 3)


def test_a_root_volume_set_below_the_minimum_wins_with_a_warning(aws, tmp_path):
    """A raw image built elsewhere: its minimum given as aws_cloud_image_min_volume_size; the user's smaller
    aws_cloud_image_volume_size is registered as set, and the run says the first boot will fail."""
    raw = make_raw_image(tmp_path / "elsewhere.raw")
    key = unique("palette-edge-small") + ".raw"
    extra = {"s3_bucket": BUCKET, "region": aws.region, "s3_key": key, "aws_cloud_image_raw_image": raw,
             "aws_cloud_image_endpoint_url": aws.endpoint_url, "aws_cloud_image_access_key": aws.access_key,
             "aws_cloud_image_secret_key": aws.secret_key, "aws_cloud_image_create_vmimport_role": True,
             "aws_cloud_image_poll_interval": 0.05, "aws_cloud_image_part_size_mb": 8,
             "aws_cloud_image_min_volume_size": 14, "aws_cloud_image_volume_size": 3}
    run = run_playbook("playbooks/aws.yml", extra)
    assert run.rc == 0, run.output[-4000:]
    words = " ".join(run.output.split())  # the warning is on stderr and may be folded across lines
    assert "[WARNING]: volume_size 3 GiB is below the 14 GiB the raw image needs at first boot" in words, words
    image = aws.client("ec2").describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]
    assert image[0]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 3


def test_playbook_in_check_mode_builds_uploads_and_imports_nothing(aws, docker_engine, standin_images, tmp_path):
    iso_name = unique("edge-aws-check")
    extra = _build_and_import_vars(standin_images, aws, tmp_path, iso_name, custom_tag="awscheck")
    run = run_playbook("playbooks/aws.yml", extra, check=True)
    assert run.rc == 0, run.output[-4000:]
    assert not (tmp_path / "build" / (iso_name + ".raw")).exists()
    assert docker_engine.client.images.list(name="palette-installer-image:v4.9.21-awscheck") == []
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert iso_name + ".raw" not in keys
    images = aws.client("ec2").describe_images(Owners=["self"],
                                               Filters=[{"Name": "name", "Values": [iso_name + ".raw"]}])
    assert images["Images"] == []


def test_interrupted_upload_resumes_and_sends_only_the_rest(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "big.raw", size=192 * MiB, data=190 * MiB)
    key = unique("resume") + ".raw"
    log_path = tmp_path / "upload.log"
    args = dict(aws.connection_options())
    args.update(image_args(raw, key=key, concurrency=1, resume=True, log_path=str(log_path)))
    playbook = write_module_playbook(str(tmp_path), "ec2_image_import", args)
    vars_path = str(tmp_path / "vars.json")
    with open(vars_path, "w", encoding="utf-8") as handle:
        json.dump({}, handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"),
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [ansible_bin("ansible-playbook"), playbook, "-e", "@" + vars_path], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log_path.exists() and log_path.read_text().count(" sent: ") >= 6:
                break
            assert proc.poll() is None, "the upload ended before it could be interrupted"
            time.sleep(0.02)
        kill_tree(proc.pid)  # the build host dies half-way: ansible-playbook and the module process it started
        proc.wait(30)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)

    s3 = aws.client("s3")
    uploads = [u for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) if u["Key"] == key]
    assert len(uploads) == 1, "the interrupted upload must be left for the resume"
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uploads[0]["UploadId"]).get("Parts", [])
    already = sum(p["Size"] for p in listed)
    size = os.path.getsize(raw)
    assert 0 < already < size

    task, result = run_module(aws, image_args(raw, key=key, concurrency=2, resume=True, log_path=str(log_path)))
    assert result.rc == 0, task.get("msg")
    assert task["upload"] == "resumed"
    assert task["parts_reused"] == len(listed)
    assert task["bytes_sent"] == size - already
    assert task["image_state"] == "available"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"') == multipart_etag(raw, 8 * MiB)
    assert object_sha256(aws, key) == file_sha256(raw)
    assert not [u for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) if u["Key"] == key]
    assert "resuming upload" in log_path.read_text()


def test_a_stale_object_is_refused_without_overwrite_and_replaced_with_it(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "new.raw")
    key = unique("stale") + ".raw"
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"an older image" * 1000)

    task, result = run_module(aws, image_args(raw, key=key))
    assert result.rc != 0
    assert "already exists and differs" in task["msg"]
    assert "overwrite: true" in task["msg"]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().startswith(b"an older image")

    task, result = run_module(aws, image_args(raw, key=key, overwrite=True))
    assert result.rc == 0, task.get("msg")
    assert task["upload"] == "replaced"
    assert task["bytes_sent"] == os.path.getsize(raw)
    assert task["image_state"] == "available"


def test_a_missing_import_role_fails_before_the_upload_and_names_the_fix(aws, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("norole") + ".raw"
    task, result = run_module(aws, image_args(raw, key=key, role_name="edgeforge-missing-role"))
    assert result.rc != 0
    assert "edgeforge-missing-role" in task["msg"]
    assert "create_vmimport_role: true" in task["msg"]
    assert "aws iam create-role" in task["msg"]
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_create_vmimport_role_creates_the_documented_role(aws, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    role = unique("edgeforge-import-role")
    task, result = run_module(aws, image_args(raw, key=unique("role") + ".raw", role_name=role,
                                              create_vmimport_role=True))
    assert result.rc == 0, task.get("msg")
    assert task["role_created"] is True
    iam = aws.client("iam")
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    statement = trust["Statement"][0]
    assert statement["Principal"]["Service"] == "vmie.amazonaws.com"
    assert statement["Condition"]["StringEquals"]["sts:Externalid"] == "vmimport"
    policy = iam.get_role_policy(RoleName=role, PolicyName="vmimport")["PolicyDocument"]
    assert "arn:aws:s3:::%s/*" % BUCKET in json.dumps(policy)


def test_an_object_that_is_not_a_disk_image_fails_the_import_with_its_status_message(aws, vmimport_role, tmp_path):
    path = tmp_path / "notes.raw"
    path.write_bytes(b"this is a text file, not a disk\n" * 200000)
    task, result = run_module(aws, image_args(str(path), key=unique("text") + ".raw"))
    assert result.rc != 0
    assert "ended deleted" in task["msg"]
    assert "ClientError: Disk validation failed" in task["msg"]


def test_the_import_wait_is_bounded_by_wait_timeout(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    started = time.monotonic()
    task, result = run_module(aws, image_args(raw, key=unique("slow") + ".raw", wait_timeout=3, poll_interval=0.5,
                                              tags={"edgeforge-test-double": "stay-active"}))
    elapsed = time.monotonic() - started
    assert result.rc != 0
    assert "still active" in task["msg"] and "wait_timeout 3" in task["msg"]
    assert "import-snap-" in task["msg"]
    assert elapsed < 60


def test_vmdk_sends_only_the_allocated_data_and_registers_arm64_legacy_bios(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "sparse.raw", size=256 * MiB, data=16 * MiB)
    key = unique("vmdk") + ".vmdk"
    task, result = run_module(aws, image_args(raw, key=key, disk_format="vmdk", arch="arm64",
                                              boot_mode="legacy-bios", volume_size=2, volume_type="gp2"))
    assert result.rc == 0, task.get("msg")
    assert 0 < task["bytes_sent"] < 0.2 * os.path.getsize(raw)
    image = aws.client("ec2").describe_images(ImageIds=[task["image_id"]])["Images"][0]
    assert image["Architecture"] == "arm64"
    assert image["BootMode"] == "legacy-bios"
    assert image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 2
    assert image["BlockDeviceMappings"][0]["Ebs"]["VolumeType"] == "gp2"
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["edgeforge-disk-format"] == "vmdk"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".vmdk") or p.endswith(".partial")]


def test_check_mode_reports_the_plan_and_changes_nothing(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("check") + ".raw"
    log_path = tmp_path / "logs" / "check.log"
    task, result = run_module(aws, image_args(raw, key=key, log_path=str(log_path)), check=True)
    assert result.rc == 0, task.get("msg")
    assert not log_path.exists() and not log_path.parent.exists()  # check mode writes nothing
    assert task["changed"] is True
    assert task["plan"]["upload"] == "upload"
    assert task["plan"]["register"].startswith("RegisterImage %s (x86_64, uefi)" % key)
    assert task["bytes_sent"] == 0
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_delete_object_after_and_the_info_module(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("cleanup") + ".raw"
    task, result = run_module(aws, image_args(raw, key=key, delete_object_after=True))
    assert result.rc == 0, task.get("msg")
    assert task["object_deleted"] is True
    info, result = run_module(aws, {"bucket": BUCKET, "key": key}, module="ec2_image_import_info")
    assert result.rc == 0
    assert info["object_exists"] is False
    assert info["image_state"] == "available" and info["image_id"] == task["image_id"]


def test_a_pending_ami_of_the_name_is_waited_for_not_imported_again(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    name = unique("pending")
    ec2 = aws.client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone=aws.region + "a")
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    image_id = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot["SnapshotId"]}}],
    )["ImageId"]
    task, result = run_module(aws, image_args(raw, key=name + ".raw", ami_name=name))
    assert result.rc == 0, task.get("msg")
    assert task["image_id"] == image_id
    assert task["image_state"] == "available"
    assert task["import_task_id"] is None and task["bytes_sent"] == 0
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=name)


def test_the_test_double_reports_progress_like_aws(aws, vmimport_role, tmp_path):
    """The double itself: pending -> converting with progress -> completed, and a real snapshot in moto."""
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("double") + ".raw"
    s3 = aws.client("s3")
    s3.upload_file(raw, BUCKET, key)
    ec2 = aws.client("ec2")
    task_id = ec2.import_snapshot(
        DiskContainer={"Format": "RAW", "UserBucket": {"S3Bucket": BUCKET, "S3Key": key}}, RoleName="vmimport"
    )["ImportTaskId"]
    seen = []
    for _attempt in range(10):
        detail = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"][0][
            "SnapshotTaskDetail"]
        seen.append((detail["Status"], detail.get("StatusMessage"), detail.get("Progress")))
        if detail["Status"] == "completed":
            break
    assert ("active", "pending", "5") in seen and ("active", "converting", "42") in seen
    assert seen[-1][0] == "completed"
    assert ec2.describe_snapshots(SnapshotIds=[detail["SnapshotId"]])["Snapshots"][0]["VolumeSize"] == 1


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """Answers 503 to every request and counts them."""

    requests = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).requests.append((self.command, self.path))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


def test_an_unavailable_service_costs_at_most_ten_requests_and_the_message_names_the_calls():
    # One retry layer (botocore's, 5 attempts per call by default): the info module's two calls, HeadObject and
    # DescribeImages, against a server that answers 503 to everything.
    _Unavailable.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = "http://127.0.0.1:%d" % server.server_address[1]
        fake = types.SimpleNamespace(connection_options=lambda: {
            "region": "us-east-1", "endpoint_url": endpoint, "access_key": "AKIAUNAVAILABLE", "secret_key": "x" * 20})
        task, result = run_module(fake, {"bucket": "edge-bucket", "key": "edge.raw"}, module="ec2_image_import_info")
    finally:
        server.shutdown()
        server.server_close()
    assert result.rc != 0
    assert 5 < len(_Unavailable.requests) <= 10, _Unavailable.requests
    assert "S3 HeadObject s3://edge-bucket/edge.raw failed" in task["msg"]
    assert "EC2 DescribeImages edge.raw failed" in task["msg"]
    assert "503" in task["msg"]


# -- credentials, region and endpoint from the environment (what AWX's "Amazon Web Services" credential injects) ------


def awx_environment(aws):
    """The variables AWX's Amazon Web Services credential injects (the two keys and the security token), plus the
    endpoint of the test bed; nothing else AWS-related is passed."""
    return {"AWS_ACCESS_KEY_ID": aws.access_key, "AWS_SECRET_ACCESS_KEY": aws.secret_key,
            "AWS_SECURITY_TOKEN": "FwoGZXIvYXdzEdgeforgeTestToken", "AWS_ENDPOINT_URL": aws.endpoint_url}


def test_aws_yml_with_only_the_environment_awx_injects(aws, tmp_path):
    raw = make_raw_image(tmp_path / "awx.raw")
    key = unique("awx") + ".raw"
    build_dir = tmp_path / "build"
    extra = {"s3_bucket": BUCKET, "s3_key": key, "build_dir": str(build_dir), "aws_cloud_image_raw_image": raw,
             "aws_cloud_image_create_vmimport_role": True, "aws_cloud_image_poll_interval": 0.05,
             "aws_cloud_image_part_size_mb": 8}
    run = run_playbook("playbooks/aws.yml", extra, env=awx_environment(aws), verbosity=3)
    assert run.rc == 0, run.output[-4000:]
    assert aws.secret_key not in run.output
    images = aws.client("ec2").describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]
    assert [image["State"] for image in images] == ["available"]
    # the progress log follows build_dir
    log = (build_dir / "logs" / "aws_cloud_image.log").read_text()
    assert "part 8/8 sent" in log and aws.secret_key not in log


def test_region_keys_and_endpoint_from_the_environment_alone(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "env.raw")
    key = unique("env") + ".raw"
    env = awx_environment(aws)
    env["AWS_REGION"] = aws.region  # AWS_REGION alone (boto3 itself reads only AWS_DEFAULT_REGION)
    bare = types.SimpleNamespace(connection_options=dict)
    task, result = run_module(bare, image_args(raw, key=key), env=env)
    assert result.rc == 0, task.get("msg")
    assert task["image_state"] == "available"
    info, result = run_module(bare, {"bucket": BUCKET, "key": key}, module="ec2_image_import_info", env=env)
    assert result.rc == 0, info.get("msg")
    assert info["object_exists"] and info["image_id"] == task["image_id"]


def test_an_expired_upload_bound_stops_before_sending_and_names_upload_timeout(aws, tmp_path):
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import AwsConnection
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_options
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import MultipartUpload, UploadFailed

    raw = make_raw_image(tmp_path / "slow.raw")
    key = unique("bound") + ".raw"
    opts = normalise_options(image_args(raw, key=key, upload_timeout=5, resume=True))
    lines = []
    ctx = Context(AwsConnection(aws.connection_options()), lines.append)
    with pytest.raises(UploadFailed) as err:
        MultipartUpload(ctx, opts, deadline=lambda: -1.0).run(raw, os.path.getsize(raw), "0" * 64, "0" * 64)
    assert "upload_timeout 5" in str(err.value) and "resume: true" in str(err.value)
    assert err.value.bytes_sent == 0
    assert any("left multipart upload" in line for line in lines)  # resume: the next run continues it


# -- re-attach: one import per object and AMI, whatever happens to the run (counted by the labelled import double) ----


def start_module_run(aws, args, tmp_path):
    """ansible-playbook running the module, in a process group of its own; returns the Popen."""
    module_args = dict(aws.connection_options())
    module_args.update(args)
    playbook = write_module_playbook(str(tmp_path), "ec2_image_import", module_args)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"),
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [ansible_bin("ansible-playbook"), playbook], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def kill_group(proc):
    """SIGKILL the run's process group and every process it started: Ansible's worker calls setsid(), so the module
    would otherwise live on as an orphan and finish the import the test wants interrupted."""
    victims = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(30)
    end = time.monotonic() + 30
    while [pid for pid in victims if not _is_zombie(pid)] and time.monotonic() < end:
        time.sleep(0.1)  # SIGKILL takes effect asynchronously
    assert not [pid for pid in victims if not _is_zombie(pid)], "a process of the killed run is still alive"


def _is_zombie(pid):
    """True when the process is gone or dead but not yet reaped."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_run_killed_mid_import_is_re_attached_to_its_import(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("reattach") + ".raw"
    s3_uri = "s3://%s/%s" % (BUCKET, key)
    log_path = tmp_path / "import.log"
    proc = start_module_run(aws, image_args(raw, key=key, poll_interval=3, log_path=str(log_path)), tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log_path.exists() and " started for " in log_path.read_text():
                break
            assert proc.poll() is None, "the run ended before its import could be interrupted"
            time.sleep(0.05)
    finally:
        kill_group(proc)
    calls = aws.import_calls(s3_uri)
    assert [kind for kind, _task in calls] == ["new"]
    task_id = calls[0][1]
    listed = aws.client("ec2").describe_import_snapshot_tasks()["ImportSnapshotTasks"]  # a listing advances nothing
    assert [t["SnapshotTaskDetail"]["Status"] for t in listed if t["ImportTaskId"] == task_id] == ["active"]

    task, result = run_module(aws, image_args(raw, key=key, log_path=str(log_path)))
    assert result.rc == 0, task.get("msg")
    assert task["import_task_id"] == task_id and task["snapshot_from"] == "waited"
    assert task["upload"] == "skipped" and task["image_state"] == "available"
    assert aws.import_calls(s3_uri) == calls  # one ImportSnapshot in all
    assert "waiting for it instead of importing again" in log_path.read_text()


def test_a_snapshot_whose_registration_failed_is_registered_not_imported_again(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("register-fails-once") + ".raw"  # the double fails the first RegisterImage of this name
    s3_uri = "s3://%s/%s" % (BUCKET, key)
    task, result = run_module(aws, image_args(raw, key=key))
    assert result.rc != 0
    assert "EC2 RegisterImage %s" % key in task["msg"] and "TEST DOUBLE" in task["msg"]
    assert len(aws.import_calls(s3_uri)) == 1

    task, result = run_module(aws, image_args(raw, key=key))
    assert result.rc == 0, task.get("msg")
    assert task["snapshot_from"] == "snapshot" and task["image_state"] == "available"
    assert [kind for kind, _task in aws.import_calls(s3_uri)] == ["new"]
    snapshot = aws.client("ec2").describe_snapshots(SnapshotIds=[task["snapshot_id"]])["Snapshots"][0]
    assert "edgeforge-import-token" in {t["Key"] for t in snapshot["Tags"]}


def test_force_imports_anew(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("register-fails-once-force") + ".raw"
    s3_uri = "s3://%s/%s" % (BUCKET, key)
    first, result = run_module(aws, image_args(raw, key=key))
    assert result.rc != 0
    task, result = run_module(aws, image_args(raw, key=key, force=True))
    assert result.rc == 0, task.get("msg")
    assert task["snapshot_from"] == "imported" and task["snapshot_id"] != first.get("snapshot_id")
    assert [kind for kind, _task in aws.import_calls(s3_uri)] == ["new", "new"]


def test_an_ami_of_the_name_owned_by_another_account_is_not_reused(aws, vmimport_role, tmp_path):
    # CanvOS looks AMIs up by name alone and can reuse someone else's public AMI (B15); ours only sees its own.
    name = unique("public-elsewhere")
    ec2 = aws.client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone=aws.region + "a")
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    foreign = ec2.register_image(  # the double registers this one as another account's public AMI
        Name=name, Description="TEST DOUBLE: a public AMI of another account", RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot["SnapshotId"]}}],
    )["ImageId"]
    visible = ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    assert [(i["ImageId"], i["OwnerId"], i["Public"]) for i in visible] == [(foreign, "111122223333", True)]

    raw = make_raw_image(tmp_path / "img.raw")
    task, result = run_module(aws, image_args(raw, key=name + ".raw", ami_name=name))
    assert result.rc == 0, task.get("msg")
    assert task["image_id"] != foreign and task["snapshot_from"] == "imported"
    info, result = run_module(aws, {"bucket": BUCKET, "key": name + ".raw", "ami_name": name},
                              module="ec2_image_import_info")
    assert info["image_id"] == task["image_id"]


def test_an_object_whose_key_only_starts_with_the_key_is_not_taken_for_the_image(aws, vmimport_role, tmp_path):
    # CanvOS's `aws s3 ls s3://BUCKET/KEY` is a prefix listing: KEY.bak counts as the image (B15).
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("prefix") + ".raw"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key + ".bak", Body=b"an older image")
    task, result = run_module(aws, image_args(raw, key=key))
    assert result.rc == 0, task.get("msg")
    assert task["upload"] == "uploaded" and task["bytes_sent"] == os.path.getsize(raw)


def test_the_sha256_is_computed_during_the_upload_and_a_re_run_sends_nothing(aws, tmp_path):
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import AwsConnection
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_options
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import ensure_object

    raw = make_raw_image(tmp_path / "one-pass.raw", size=40 * MiB, data=30 * MiB)
    opts = normalise_options(image_args(raw, key=unique("one-pass") + ".raw", concurrency=3))
    ctx = Context(AwsConnection(aws.connection_options()))
    first = ensure_object(ctx, opts)
    assert first.upload == "uploaded" and first.bytes_sent == os.path.getsize(raw)
    assert first.source_sha256 == file_sha256(raw)
    assert "checksum" not in first.seconds  # no read pass before the upload
    assert object_sha256(aws, opts["key"]) == file_sha256(raw)
    again = ensure_object(ctx, opts)
    assert again.upload == "skipped" and again.bytes_sent == 0 and again.source_sha256 == first.source_sha256


# -- Packer-level options ----------------------------------------------------------------------------------------


def launch_permissions(aws, image_id):
    answer = aws.client("ec2").describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return sorted(tuple(sorted(p.items())) for p in answer["LaunchPermissions"])


def test_launch_permissions_are_added_idempotently_and_purged_only_on_request(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("shared") + ".raw"
    org = "arn:aws:organizations::123456789012:organization/o-edgeforge1"
    first, result = run_module(aws, image_args(raw, key=key, launch_permissions={
        "user_ids": ["111122223333"], "org_arns": [org]}))
    assert result.rc == 0, first.get("msg")
    image_id = first["image_id"]
    assert launch_permissions(aws, image_id) == [(("OrganizationArn", org),), (("UserId", "111122223333"),)]

    # a share made by hand stays without purge; a second run with the same wish changes nothing
    aws.client("ec2").modify_image_attribute(ImageId=image_id,
                                             LaunchPermission={"Add": [{"UserId": "444455556666"}]})
    again, result = run_module(aws, image_args(raw, key=key, launch_permissions={
        "user_ids": ["111122223333"], "org_arns": [org]}))
    assert result.rc == 0 and again["changed"] is False, again.get("msg")
    assert (("UserId", "444455556666"),) in launch_permissions(aws, image_id)

    purged, result = run_module(aws, image_args(raw, key=key, launch_permissions={"user_ids": ["111122223333"]},
                                                purge_launch_permissions=True))
    assert result.rc == 0 and purged["changed"] is True, purged.get("msg")
    assert launch_permissions(aws, image_id) == [(("UserId", "111122223333"),)]


def test_state_absent_deregisters_the_ami_deletes_its_snapshot_and_optionally_the_object(aws, vmimport_role,
                                                                                         tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("remove") + ".raw"
    made, result = run_module(aws, image_args(raw, key=key))
    assert result.rc == 0, made.get("msg")
    absent = {"state": "absent", "bucket": BUCKET, "key": key, "remove_object": True}

    planned, result = run_module(aws, absent, check=True)
    assert result.rc == 0 and planned["changed"] is True, planned.get("msg")
    assert planned["deregistered_image_ids"] == [made["image_id"]]
    ec2 = aws.client("ec2")
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]

    removed, result = run_module(aws, absent)
    assert result.rc == 0, removed.get("msg")
    assert removed["deregistered_image_ids"] == [made["image_id"]]
    assert removed["deleted_snapshot_ids"] == [made["snapshot_id"]] and removed["object_deleted"] is True
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"] == []
    assert made["snapshot_id"] not in [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key)

    again, result = run_module(aws, absent)
    assert result.rc == 0 and again["changed"] is False, again.get("msg")


def test_deprecation_time_is_set_once_and_changed_when_it_differs(aws, vmimport_role, tmp_path):
    # EnableImageDeprecation comes from the labelled double (moto has none).
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("deprecate") + ".raw"
    first, result = run_module(aws, image_args(raw, key=key, deprecation_time="2031-01-31T10:15:42Z"))
    assert result.rc == 0, first.get("msg")
    image = aws.client("ec2").describe_images(ImageIds=[first["image_id"]])["Images"][0]
    assert image["DeprecationTime"] == "2031-01-31T10:15:00.000Z"
    same, result = run_module(aws, image_args(raw, key=key, deprecation_time="2031-01-31T11:15:00+01:00"))
    assert result.rc == 0 and same["changed"] is False, same.get("msg")
    later, result = run_module(aws, image_args(raw, key=key, deprecation_time="2032-01-01T00:00:00Z"))
    assert result.rc == 0 and later["changed"] is True, later.get("msg")
    image = aws.client("ec2").describe_images(ImageIds=[first["image_id"]])["Images"][0]
    assert image["DeprecationTime"] == "2032-01-01T00:00:00.000Z"


def test_an_encrypted_import_with_a_kms_key_and_the_role_granted_its_use(aws, tmp_path):
    # moto's KMS key; the labelled double imports into a snapshot encrypted with it.
    key_arn = aws.client("kms").create_key(Description="edgeforge test")["KeyMetadata"]["Arn"]
    raw = make_raw_image(tmp_path / "img.raw")
    role = unique("edgeforge-kms-role")
    args = image_args(raw, key=unique("encrypted") + ".raw", kms_key_id=key_arn, role_name=role,
                      create_vmimport_role=True)
    task, result = run_module(aws, args)
    assert result.rc == 0, task.get("msg")
    snapshot = aws.client("ec2").describe_snapshots(SnapshotIds=[task["snapshot_id"]])["Snapshots"][0]
    assert snapshot["Encrypted"] is True and snapshot["KmsKeyId"] == key_arn
    policy = aws.client("iam").get_role_policy(RoleName=role, PolicyName="vmimport-kms")["PolicyDocument"]
    assert policy["Statement"][0]["Resource"] == key_arn
    again, result = run_module(aws, args)
    assert result.rc == 0 and again["changed"] is False, again.get("msg")


def test_sharing_an_ami_under_the_default_key_is_refused_before_any_work(aws, vmimport_role, tmp_path):
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("default-key") + ".raw"
    task, result = run_module(aws, image_args(raw, key=key, encrypted=True,
                                              launch_permissions={"user_ids": ["111122223333"]}))
    assert result.rc != 0
    assert "launch_permissions" in task["msg"] and "aws/ebs" in task["msg"]
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_copies_to_other_regions_are_made_once_and_removed_with_the_ami(aws, vmimport_role, tmp_path):
    # CopyImage is moto's, wrapped by the labelled double for the ClientToken, encryption and timing moto ignores.
    raw = make_raw_image(tmp_path / "img.raw")
    key = unique("copied") + ".raw"
    args = image_args(raw, key=key, copy_to_regions=["eu-west-1", aws.region])
    first, result = run_module(aws, args)
    assert result.rc == 0, first.get("msg")
    assert list(first["copies"]) == ["eu-west-1"]
    eu = boto3_client_in(aws, "ec2", "eu-west-1")
    copies = eu.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]
    assert [(i["ImageId"], i["State"]) for i in copies] == [(first["copies"]["eu-west-1"], "available")]

    again, result = run_module(aws, args)
    assert result.rc == 0 and again["changed"] is False, again.get("msg")
    assert len(eu.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"]) == 1

    removed, result = run_module(aws, {"state": "absent", "bucket": BUCKET, "key": key,
                                       "copy_to_regions": ["eu-west-1"]})
    assert result.rc == 0, removed.get("msg")
    assert sorted(removed["deregistered_image_ids"]) == sorted([first["image_id"], first["copies"]["eu-west-1"]])
    assert eu.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [key]}])["Images"] == []


def boto3_client_in(aws, service, region):
    import boto3

    return boto3.client(service, endpoint_url=aws.endpoint_url, region_name=region,
                        aws_access_key_id=aws.access_key, aws_secret_access_key=aws.secret_key)


def test_wait_timeout_starts_once_the_object_is_in_s3(aws, vmimport_role, tmp_path, monkeypatch):
    # Where the import's deadline is taken, in the order of the progress lines (no clock involved).
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import importer
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import AwsConnection
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import normalise_options

    lines = []
    real_bounded = importer.bounded

    def noting_bounded(seconds):
        lines.append("deadline of %s s taken" % seconds)
        return real_bounded(seconds)

    monkeypatch.setattr(importer, "bounded", noting_bounded)
    raw = make_raw_image(tmp_path / "img.raw")
    opts = normalise_options(image_args(raw, key=unique("deadline") + ".raw"))
    result = importer.import_image(Context(AwsConnection(aws.connection_options()), lines.append,
                                           sleep=lambda s: None), opts)
    assert result["image_state"] == "available"
    upload_done = next(i for i, line in enumerate(lines) if line.startswith("upload of s3://"))
    deadline = lines.index("deadline of 60 s taken")
    first_import_line = next(i for i, line in enumerate(lines) if line.startswith("import task "))
    assert upload_done < deadline < first_import_line
