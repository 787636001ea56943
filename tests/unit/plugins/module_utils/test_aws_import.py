"""Pure logic of the AWS importer: part planning, checksums, object/AMI decisions, policies, retries."""

import base64
import hashlib
import zlib
import json
import os
import shutil
from urllib.parse import quote

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils import aws_connection as conn
from ansible_collections.edgeforge.artifacts.plugins.module_utils import aws_import as ai
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError

MiB = ai.MiB


# -- part planning -------------------------------------------------------------------------------------------------


def test_plan_covers_the_file_exactly_with_a_short_last_part():
    parts = ai.plan_parts(10 * MiB + 3, 4 * MiB + 0)  # wanted 4 MiB is below S3's minimum: 5 MiB is used
    assert [p[0] for p in parts] == [1, 2, 3]
    assert parts[0] == (1, 0, 5 * MiB)
    assert parts[-1] == (3, 10 * MiB, 3)
    assert sum(p[2] for p in parts) == 10 * MiB + 3
    assert all(a[1] + a[2] == b[1] for a, b in zip(parts, parts[1:]))


def test_plan_of_an_exact_multiple_has_no_empty_tail():
    parts = ai.plan_parts(64 * MiB, 16 * MiB)
    assert len(parts) == 4 and parts[-1] == (4, 48 * MiB, 16 * MiB)


def test_empty_file_is_one_empty_part():
    assert ai.plan_parts(0, 8 * MiB) == [(1, 0, 0)]


def test_part_size_grows_to_stay_within_ten_thousand_parts():
    size = 200 * 1024 * MiB  # 200 GiB with 8 MiB parts would be 25,600 parts
    part = ai.effective_part_size(size, 8 * MiB)
    assert part % MiB == 0 and part * ai.S3_MAX_PARTS >= size
    assert len(ai.plan_parts(size, 8 * MiB)) <= ai.S3_MAX_PARTS


def test_too_big_for_s3_is_refused():
    with pytest.raises(ValidationError):
        ai.effective_part_size(ai.S3_MAX_PART * ai.S3_MAX_PARTS + 1, 8 * MiB)


# -- checksums -----------------------------------------------------------------------------------------------------


def test_part_checksums_are_the_etag_md5_and_the_s3_crc32_form():
    data = b"edge" * 1000
    md5_hex, crc_b64 = ai.part_checksums(data)
    assert md5_hex == hashlib.md5(data).hexdigest()
    assert base64.b64decode(crc_b64) == zlib.crc32(data).to_bytes(4, "big")
    assert ai.crc32_b64(b"") == "AAAAAA=="


def test_file_sha256_and_read_range(tmp_path):
    path = tmp_path / "img"
    data = os.urandom(3 * MiB + 17)
    path.write_bytes(data)
    seen = []
    assert ai.file_sha256(str(path), chunk_size=MiB, progress=seen.append) == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data)
    assert ai.read_range(str(path), MiB, 10) == data[MiB:MiB + 10]
    with pytest.raises(EdgeforgeError, match="short read"):
        ai.read_range(str(path), len(data) - 5, 10)


# -- object decision -----------------------------------------------------------------------------------------------


def head(size, sha=None, fmt=None, source=None):
    meta = {}
    if sha:
        meta[ai.META_SHA256] = sha
    if source:
        meta[ai.META_SOURCE_SHA256] = source
    if fmt:
        meta[ai.META_FORMAT] = fmt
    return {"ContentLength": size, "Metadata": meta}


def test_no_object_means_upload():
    assert ai.object_decision(None, 10, "a" * 64, "raw", False) == "absent"


def test_same_size_and_checksum_is_skipped():
    assert ai.object_decision(head(10, "abc"), 10, "abc", "raw", False) == "same"


def test_same_checksum_but_other_size_is_not_the_same():
    assert ai.object_decision(head(11, "abc"), 10, "abc", "raw", False) == "refuse"


def test_differing_object_is_refused_or_replaced_with_overwrite():
    assert ai.object_decision(head(10, "old"), 10, "new", "raw", False) == "refuse"
    assert ai.object_decision(head(10, "old"), 10, "new", "raw", True) == "replace"


def test_object_without_our_metadata_cannot_be_trusted():
    assert ai.object_decision({"ContentLength": 10, "Metadata": {}}, 10, "abc", "raw", False) == "refuse"


def test_vmdk_object_is_matched_by_its_source_checksum_not_its_size():
    obj = head(3, sha="vmdk-sha", fmt="vmdk", source="raw-sha")
    assert ai.object_decision(obj, 4096, "raw-sha", "vmdk", False) == "same"
    # the same source uploaded raw is a different object
    assert ai.object_decision(obj, 4096, "raw-sha", "raw", False) == "refuse"


def test_describe_object_names_size_checksum_and_format():
    text = ai.describe_object(head(10, "abc"))
    assert "size 10" in text and "abc" in text and "raw" in text
    assert "unknown" in ai.describe_object({"ContentLength": 1})


# -- resume ----------------------------------------------------------------------------------------------------------


def local_sums(data):
    return lambda number, offset, length: ai.part_checksums(data[offset:offset + length])


def test_only_verified_parts_are_reused():
    data = os.urandom(12 * MiB)
    plan = ai.plan_parts(len(data), 5 * MiB)
    md5_1 = ai.part_checksums(data[:5 * MiB])[0]
    crc_2 = ai.part_checksums(data[5 * MiB:10 * MiB])[1]
    listed = [
        {"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB},  # verified by its ETag (MD5)
        # an encrypted part (ETag not an MD5) is verified by its CRC32
        {"PartNumber": 2, "ETag": '"kms-etag-not-an-md5"', "Size": 5 * MiB, "ChecksumCRC32": crc_2},
        {"PartNumber": 3, "ETag": '"0000"', "Size": 2 * MiB},  # wrong content
    ]
    reused = ai.reusable_parts(listed, plan, local_sums(data))
    assert sorted(reused) == [1, 2]
    assert reused[1]["ChecksumCRC32"] == ai.part_checksums(data[:5 * MiB])[1]


def test_parts_of_another_size_or_number_are_not_reused():
    data = os.urandom(11 * MiB)
    plan = ai.plan_parts(len(data), 5 * MiB)
    md5_1 = ai.part_checksums(data[:5 * MiB])[0]
    listed = [
        {"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB - 1},
        {"PartNumber": 9, "ETag": '"%s"' % md5_1, "Size": 5 * MiB},
    ]
    assert ai.reusable_parts(listed, plan, local_sums(data)) == {}


def test_a_wrong_crc32_wins_over_a_matching_etag():
    data = os.urandom(5 * MiB)
    plan = ai.plan_parts(len(data), 5 * MiB)
    md5_1 = ai.part_checksums(data)[0]
    listed = [{"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB, "ChecksumCRC32": "AAAAAA=="}]
    assert ai.reusable_parts(listed, plan, local_sums(data)) == {}


def test_resume_adopts_the_part_size_of_the_interrupted_upload():
    listed = [{"PartNumber": 2, "Size": 6 * MiB}, {"PartNumber": 1, "Size": 6 * MiB}]
    assert ai.resume_part_size(listed, 100 * MiB, 8 * MiB) == 6 * MiB
    assert ai.resume_part_size([], 100 * MiB, 8 * MiB) == 8 * MiB
    assert ai.resume_part_size([{"PartNumber": 3, "Size": 6 * MiB}], 100 * MiB, 8 * MiB) == 8 * MiB


def test_the_newest_sha256_upload_of_exactly_the_key_is_resumed():
    uploads = [
        {"Key": "img.raw", "UploadId": "old", "Initiated": "2024-01-01T00:00:00", "ChecksumAlgorithm": "CRC32"},
        {"Key": "img.raw", "UploadId": "new", "Initiated": "2024-02-01T00:00:00", "ChecksumAlgorithm": "CRC32"},
        {"Key": "img.raw", "UploadId": "sha", "Initiated": "2024-03-01T00:00:00", "ChecksumAlgorithm": "SHA256"},
        {"Key": "img.raw.bak", "UploadId": "other", "Initiated": "2025-01-01T00:00:00"},
    ]
    assert ai.choose_resumable_upload(uploads, "img.raw")["UploadId"] == "new"
    assert ai.choose_resumable_upload(uploads, "nothing") is None


# -- role policies ---------------------------------------------------------------------------------------------------


def test_documented_trust_policy_is_accepted_in_every_encoding():
    policy = ai.vmimport_trust_policy()
    assert policy["Statement"][0]["Condition"]["StringEquals"]["sts:Externalid"] == "vmimport"
    assert ai.trust_allows_vmie(policy)
    assert ai.trust_allows_vmie(json.dumps(policy))
    assert ai.trust_allows_vmie(quote(json.dumps(policy)))  # IAM's raw API answer is URL-encoded


def test_trust_for_another_service_or_deny_is_rejected():
    other = {"Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}
    deny = {"Statement": [{"Effect": "Deny", "Principal": {"Service": "vmie.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert not ai.trust_allows_vmie(other)
    assert not ai.trust_allows_vmie(deny)
    assert not ai.trust_allows_vmie("")


def test_role_policy_grants_the_bucket_and_the_snapshot_permissions():
    policy = ai.vmimport_role_policy("my-bucket")
    assert ai.policy_grants_bucket(policy, "my-bucket")
    assert not ai.policy_grants_bucket(policy, "other-bucket")
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert {"s3:GetObject", "s3:ListBucket", "ec2:ModifySnapshotAttribute", "ec2:CopySnapshot"} <= set(actions)


# -- import and AMI state ------------------------------------------------------------------------------------------


def test_import_state_reads_status_message_and_progress():
    task = {"SnapshotTaskDetail": {"Status": "active", "StatusMessage": "converting", "Progress": "42"}}
    assert ai.import_state(task) == ("active", "converting", "42")
    assert ai.import_state({})[0] == "unknown"


def test_ami_decision_prefers_an_available_image():
    images = [
        {"ImageId": "ami-f", "State": "failed", "CreationDate": "2025"},
        {"ImageId": "ami-a", "State": "available", "CreationDate": "2024"},
    ]
    assert ai.ami_decision(images) == ("available", images[1])
    assert ai.ami_decision([{"ImageId": "ami-p", "State": "pending"}])[0] == "pending"
    assert ai.ami_decision([{"ImageId": "ami-f", "State": "failed"}])[0] == "failed"
    assert ai.ami_decision([]) == ("absent", None)


def test_root_snapshot_of_an_image():
    image = {
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-data"}},
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-root"}},
        ],
    }
    assert ai.root_snapshot_id(image) == "snap-root"
    assert ai.root_snapshot_id({}) is None


def test_only_missing_or_different_tags_are_created():
    assert ai.tags_to_add({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == [
        {"Key": "b", "Value": "3"},
        {"Key": "c", "Value": "4"},
    ]
    assert ai.tags_to_add({"a": "1"}, {"a": "1"}) == []


def base_options(**extra):
    options = {"image_path": "/images/palette-edge.raw", "bucket": "edge-bucket"}
    options.update(extra)
    return ai.normalise_options(options)


def test_key_and_ami_name_default_like_canvos():
    opts = base_options()
    assert opts["key"] == "palette-edge.raw"
    assert opts["ami_name"] == "palette-edge.raw"
    assert opts["import_description"] == "Import palette-edge.raw"


def test_a_given_image_checksum_is_normalised_from_sha256sum_format():
    digest = hashlib.sha256(b"img").hexdigest()
    assert base_options(image_sha256="%s  palette-edge.raw\n" % digest.upper())["image_sha256"] == digest


def test_register_request_maps_arch_boot_mode_and_root_volume():
    opts = base_options(arch="arm64", boot_mode="uefi-preferred", volume_size=20, volume_type="gp2",
                        delete_on_termination=False, ena_support=False, ami_name="edge-ami")
    req = ai.register_request(opts, "snap-1")
    assert req["Architecture"] == "arm64"
    assert req["BootMode"] == "uefi-preferred"
    assert req["VirtualizationType"] == "hvm"
    assert req["RootDeviceName"] == "/dev/xvda"
    assert req["EnaSupport"] is False
    assert req["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda",
         "Ebs": {"SnapshotId": "snap-1", "VolumeType": "gp2", "DeleteOnTermination": False, "VolumeSize": 20}}
    ]
    assert req["Description"] == "AMI for edge-ami created from snapshot snap-1"
    amd = ai.register_request(base_options(), "snap-2")
    assert amd["Architecture"] == "x86_64" and amd["BootMode"] == "uefi"
    assert "VolumeSize" not in amd["BlockDeviceMappings"][0]["Ebs"]


def test_import_request_uses_the_bucket_format_role_and_tags():
    req = ai.import_request(base_options(disk_format="vmdk", role_name="my-import-role", tags={"team": "edge"}))
    assert req["DiskContainer"]["Format"] == "VMDK"
    assert req["DiskContainer"]["UserBucket"] == {"S3Bucket": "edge-bucket", "S3Key": "palette-edge.raw"}
    assert req["RoleName"] == "my-import-role"
    tags = {t["Key"]: t["Value"] for t in req["TagSpecifications"][0]["Tags"]}
    assert tags == {"Name": "Import-palette-edge.raw", "team": "edge"}


@pytest.mark.parametrize(
    "bad, param",
    [
        ({"arch": "riscv"}, "arch"),
        ({"boot_mode": "bios"}, "boot_mode"),
        ({"disk_format": "qcow2"}, "disk_format"),
        ({"part_size": 1024}, "part_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"wait_timeout": 0}, "wait_timeout"),
        ({"bucket": ""}, "bucket"),
        ({"image_path": ""}, "image_path"),
        ({"volume_type": "nvme"}, "volume_type"),
        ({"image_sha256": "abc"}, "image_sha256"),
    ],
)
def test_bad_options_name_the_parameter(bad, param):
    with pytest.raises(ValidationError) as err:
        base_options(**bad)
    assert err.value.param == param


# -- helpers for subprocesses --------------------------------------------------------------------------------------


def test_helper_commands_never_see_aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("aws_session_token", "t0ken")
    env = ai.subprocess_env()
    assert "AWS_SECRET_ACCESS_KEY" not in env and "aws_session_token" not in env
    assert "PATH" in env


@pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img not installed")
def test_vmdk_conversion_is_stream_optimized_and_atomic(tmp_path):
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(64 * MiB)
        handle.seek(MiB)
        handle.write(os.urandom(MiB))
    dest = tmp_path / "disk.vmdk"
    ai.convert_to_vmdk(str(raw), str(dest))
    data = dest.read_bytes()
    assert data[:4] == b"KDMV"
    assert b"streamOptimized" in data[:4096]
    assert len(data) < 4 * MiB  # only the allocated MiB (compressed) is stored
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    with pytest.raises(EdgeforgeError, match="qemu-img convert failed"):
        ai.convert_to_vmdk(str(tmp_path / "missing.raw"), str(tmp_path / "x.vmdk"))
    assert not (tmp_path / "x.vmdk").exists()


# -- connection and retries ----------------------------------------------------------------------------------------


class FakeClientError(Exception):
    def __init__(self, code, status=400):
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


def test_throttling_and_5xx_are_retried_with_bounded_attempts():
    calls = []
    slept = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise FakeClientError("SlowDown", 503)
        return "ok"

    assert conn.call_with_retry(flaky, attempts=5, sleep=slept.append) == "ok"
    assert len(calls) == 3 and len(slept) == 2

    def always_throttled():
        calls.append(1)
        raise FakeClientError("RequestLimitExceeded")

    calls.clear()
    with pytest.raises(FakeClientError):
        conn.call_with_retry(always_throttled, attempts=4, sleep=lambda s: None)
    assert len(calls) == 4


def test_client_errors_are_not_retried():
    calls = []

    def denied():
        calls.append(1)
        raise FakeClientError("AccessDenied", 403)

    with pytest.raises(FakeClientError):
        conn.call_with_retry(denied, attempts=5, sleep=lambda s: None)
    assert len(calls) == 1


def test_backoff_is_jittered_exponential_and_capped():
    delays = conn.backoff_delays(6, base=1.0, cap=5.0, rng=lambda: 1.0)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(0 <= d <= 5.0 for d in conn.backoff_delays(10, base=1.0, cap=5.0))


def test_endpoints_per_service_fall_back_to_endpoint_url():
    kwargs, endpoints = conn.client_settings(
        {"region": "eu-west-1", "access_key": "AK", "secret_key": "SK", "endpoint_url": "http://all",
         "s3_endpoint_url": "http://s3-only"}
    )[:2]
    assert endpoints == {"s3": "http://s3-only", "ec2": "http://all", "iam": "http://all"}
    assert kwargs == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK", "region_name": "eu-west-1"}
    endpoints = conn.client_settings({})[1]
    assert endpoints == {"s3": None, "ec2": None, "iam": None}


def test_half_given_credentials_or_profile_with_keys_are_rejected():
    with pytest.raises(ValidationError):
        conn.client_settings({"access_key": "AK"})
    with pytest.raises(ValidationError):
        conn.client_settings({"profile": "p", "access_key": "AK", "secret_key": "SK"})


def test_path_style_addressing_is_configured_for_s3(monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    connection = conn.AwsConnection({"region": "us-east-1", "access_key": "AK", "secret_key": "SK",
                                     "endpoint_url": "http://127.0.0.1:9", "s3_path_style": True})
    s3 = connection.s3
    assert s3.meta.config.s3["addressing_style"] == "path"
    assert s3.meta.endpoint_url == "http://127.0.0.1:9"
    assert connection.ec2.meta.region_name == "us-east-1"


def test_a_missing_image_is_an_error_before_any_aws_call(tmp_path):
    # connection=None: the error must come before anything is asked of AWS
    importer = ai.ImageImporter(None, {"image_path": str(tmp_path / "absent.raw"), "bucket": "b"})
    with pytest.raises(ValidationError) as err:
        importer.run()
    assert err.value.param == "image_path"
