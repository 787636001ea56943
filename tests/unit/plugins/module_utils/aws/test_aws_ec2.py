"""EC2 requests and decisions, and the import options."""

import hashlib

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import ec2 as ec
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import options as opt
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import snapshot_import as si
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


# -- import and AMI state ------------------------------------------------------------------------------------------


def test_import_state_reads_status_message_and_progress():
    task = {"SnapshotTaskDetail": {"Status": "active", "StatusMessage": "converting", "Progress": "42"}}
    assert si.import_state(task) == ("active", "converting", "42")
    assert si.import_state({})[0] == "unknown"


def test_ami_decision_prefers_an_available_image():
    images = [
        {"ImageId": "ami-f", "State": "failed", "CreationDate": "2025"},
        {"ImageId": "ami-a", "State": "available", "CreationDate": "2024"},
    ]
    assert ec.ami_decision(images) == ("available", images[1])
    assert ec.ami_decision([{"ImageId": "ami-p", "State": "pending"}])[0] == "pending"
    assert ec.ami_decision([{"ImageId": "ami-f", "State": "failed"}])[0] == "failed"
    assert ec.ami_decision([]) == ("absent", None)


def test_root_snapshot_of_an_image():
    image = {
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-data"}},
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-root"}},
        ],
    }
    assert ec.root_snapshot_id(image) == "snap-root"
    assert ec.root_snapshot_id({}) is None


def test_only_missing_or_different_tags_are_created():
    assert ec.tags_to_add({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == [
        {"Key": "b", "Value": "3"},
        {"Key": "c", "Value": "4"},
    ]
    assert ec.tags_to_add({"a": "1"}, {"a": "1"}) == []


def base_options(**extra):
    options = {"image_path": "/images/palette-edge.raw", "bucket": "edge-bucket"}
    options.update(extra)
    return opt.normalise_options(options)


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
    req = ec.register_request(opts, "snap-1")
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
    amd = ec.register_request(base_options(), "snap-2")
    assert amd["Architecture"] == "x86_64" and amd["BootMode"] == "uefi"
    assert "VolumeSize" not in amd["BlockDeviceMappings"][0]["Ebs"]


def test_import_request_uses_the_bucket_format_role_and_tags():
    req = si.import_request(base_options(disk_format="vmdk", role_name="my-import-role", tags={"team": "edge"}))
    assert req["DiskContainer"]["Format"] == "VMDK"
    assert req["DiskContainer"]["UserBucket"] == {"S3Bucket": "edge-bucket", "S3Key": "palette-edge.raw"}
    assert req["RoleName"] == "my-import-role"
    tags = {t["Key"]: t["Value"] for t in req["TagSpecifications"][0]["Tags"]}
    assert tags == {"Name": "Import-palette-edge.raw", "team": "edge"}
    assert "ClientToken" not in req and "Encrypted" not in req


def test_import_request_carries_the_client_token_as_token_and_tag():
    req = si.import_request(base_options(), "edgeforge-abc")
    assert req["ClientToken"] == "edgeforge-abc"
    tags = {t["Key"]: t["Value"] for t in req["TagSpecifications"][0]["Tags"]}
    assert tags[si.TOKEN_TAG] == "edgeforge-abc"


SHA = hashlib.sha256(b"image").hexdigest()


def test_the_import_token_is_stable_short_and_changes_with_what_shapes_the_import():
    opts = base_options()
    token = si.import_token(opts, SHA, "us-east-1")
    assert token == si.import_token(base_options(), SHA, "us-east-1")
    assert token.startswith("edgeforge-") and len(token) <= 64 - 10  # room for an attempt or force suffix
    others = {
        si.import_token(opts, hashlib.sha256(b"other").hexdigest(), "us-east-1"),
        si.import_token(opts, SHA, "eu-west-1"),
        si.import_token(base_options(ami_name="other"), SHA, "us-east-1"),
        si.import_token(base_options(role_name="other-role"), SHA, "us-east-1"),
        si.import_token(base_options(disk_format="vmdk"), SHA, "us-east-1"),
        si.import_token(dict(opts, kms_key_id="alias/edge"), SHA, "us-east-1"),
    }
    assert token not in others and len(others) == 6
    # user tags and timeouts do not shape the import
    assert si.import_token(base_options(tags={"a": "b"}, wait_timeout=5), SHA, "us-east-1") == token


def test_token_attempts_match_their_base_only():
    assert si.token_matches("edgeforge-abc", "edgeforge-abc")
    assert si.token_matches("edgeforge-abc-1", "edgeforge-abc")
    assert si.token_matches("edgeforge-abc-f0123abcd", "edgeforge-abc")
    assert not si.token_matches("edgeforge-abcd", "edgeforge-abc")


@pytest.mark.parametrize(
    "bad, param",
    [
        ({"arch": "riscv"}, "arch"),
        ({"boot_mode": "bios"}, "boot_mode"),
        ({"disk_format": "qcow2"}, "disk_format"),
        ({"part_size_mb": 1}, "part_size_mb"),
        ({"upload_timeout": -1}, "upload_timeout"),
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


def test_deprecation_time_is_utc_to_the_minute():
    import datetime

    when = opt.deprecation_time("2027-06-30T12:34:56+02:00")
    assert when == datetime.datetime(2027, 6, 30, 10, 34, tzinfo=datetime.timezone.utc)
    assert opt.deprecation_time("2027-06-30T10:34:00.000Z") == when  # the form DescribeImages reports
    assert opt.deprecation_time("2027-06-30 10:34") == when  # no zone: UTC
    assert opt.deprecation_time(None) is None
    with pytest.raises(ValidationError) as err:
        base_options(deprecation_time="next tuesday")
    assert err.value.param == "deprecation_time"


def test_an_encrypted_import_names_its_key_and_the_key_implies_encryption():
    req = si.import_request(base_options(kms_key_id="alias/edge"), "edgeforge-abc")
    assert req["Encrypted"] is True and req["KmsKeyId"] == "alias/edge"
    req = si.import_request(base_options(encrypted=True), "edgeforge-abc")
    assert req["Encrypted"] is True and "KmsKeyId" not in req


@pytest.mark.parametrize("encryption", [{"encrypted": True}, {"kms_key_id": "alias/aws/ebs"}])
def test_sharing_an_ami_under_the_default_ebs_key_is_refused(encryption):
    with pytest.raises(ValidationError) as err:
        base_options(launch_permissions={"user_ids": ["123456789012"]}, **encryption)
    assert err.value.param == "launch_permissions" and "aws/ebs" in str(err.value)
    # with a customer managed key it is allowed
    assert base_options(launch_permissions={"user_ids": ["123456789012"]}, kms_key_id="alias/edge")["encrypted"]


def test_copy_regions_drop_the_home_region_and_need_a_key_each_when_keys_are_given():
    assert opt.normalise_regions(["eu-west-1", "us-east-1", "eu-west-1"], None, False, "us-east-1") == ["eu-west-1"]
    with pytest.raises(ValidationError) as err:
        base_options(copy_to_regions=["eu-west-1", "ap-south-1"], kms_key_id="alias/edge",
                     copy_kms_key_ids={"eu-west-1": "alias/edge"})
    assert err.value.param == "copy_kms_key_ids"
    with pytest.raises(ValidationError):
        base_options(copy_to_regions=["eu-west-1"], copy_kms_key_ids={"sa-east-1": "alias/edge"})
