"""S3 upload logic: part planning, checksums, whether the object at the key is ours, what to resume."""

import base64
import hashlib
import os
import zlib

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import multipart as mp
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import options as opt
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError

MiB = opt.MiB


# -- part planning -------------------------------------------------------------------------------------------------


def test_plan_covers_the_file_exactly_with_a_short_last_part():
    parts = mp.plan_parts(10 * MiB + 3, 4 * MiB + 0)  # wanted 4 MiB is below S3's minimum: 5 MiB is used
    assert [p[0] for p in parts] == [1, 2, 3]
    assert parts[0] == (1, 0, 5 * MiB)
    assert parts[-1] == (3, 10 * MiB, 3)
    assert sum(p[2] for p in parts) == 10 * MiB + 3
    assert all(a[1] + a[2] == b[1] for a, b in zip(parts, parts[1:]))


def test_plan_of_an_exact_multiple_has_no_empty_tail():
    parts = mp.plan_parts(64 * MiB, 16 * MiB)
    assert len(parts) == 4 and parts[-1] == (4, 48 * MiB, 16 * MiB)


def test_empty_file_is_one_empty_part():
    assert mp.plan_parts(0, 8 * MiB) == [(1, 0, 0)]


def test_part_size_grows_to_stay_within_ten_thousand_parts():
    size = 200 * 1024 * MiB  # 200 GiB with 8 MiB parts would be 25,600 parts
    part = mp.effective_part_size(size, 8 * MiB)
    assert part % MiB == 0 and part * mp.S3_MAX_PARTS >= size
    assert len(mp.plan_parts(size, 8 * MiB)) <= mp.S3_MAX_PARTS


def test_too_big_for_s3_is_refused():
    with pytest.raises(ValidationError):
        mp.effective_part_size(mp.S3_MAX_PART * mp.S3_MAX_PARTS + 1, 8 * MiB)


# -- checksums -----------------------------------------------------------------------------------------------------


def test_part_checksums_are_the_etag_md5_and_the_s3_crc32_form():
    data = b"edge" * 1000
    md5_hex, crc_b64 = mp.part_checksums(data)
    assert md5_hex == hashlib.md5(data).hexdigest()
    assert base64.b64decode(crc_b64) == zlib.crc32(data).to_bytes(4, "big")
    assert mp.crc32_b64(b"") == "AAAAAA=="


def test_file_sha256_and_read_range(tmp_path):
    path = tmp_path / "img"
    data = os.urandom(3 * MiB + 17)
    path.write_bytes(data)
    seen = []
    assert mp.file_sha256(str(path), chunk_size=MiB, progress=seen.append) == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data)
    assert mp.read_range(str(path), MiB, 10) == data[MiB:MiB + 10]
    with pytest.raises(EdgeforgeError, match="short read"):
        mp.read_range(str(path), len(data) - 5, 10)


# -- object decision -----------------------------------------------------------------------------------------------


def head(size, sha=None, fmt=None, source=None):
    meta = {}
    if sha:
        meta[mp.META_SHA256] = sha
    if source:
        meta[mp.META_SOURCE_SHA256] = source
    if fmt:
        meta[mp.META_FORMAT] = fmt
    return {"ContentLength": size, "Metadata": meta}


def test_no_object_means_upload():
    assert mp.object_decision(None, 10, "a" * 64, "raw", False) == "absent"


def test_same_size_and_checksum_is_skipped():
    assert mp.object_decision(head(10, "abc"), 10, "abc", "raw", False) == "same"


def test_same_checksum_but_other_size_is_not_the_same():
    assert mp.object_decision(head(11, "abc"), 10, "abc", "raw", False) == "refuse"


def test_differing_object_is_refused_or_replaced_with_overwrite():
    assert mp.object_decision(head(10, "old"), 10, "new", "raw", False) == "refuse"
    assert mp.object_decision(head(10, "old"), 10, "new", "raw", True) == "replace"


def test_object_without_our_metadata_cannot_be_trusted():
    assert mp.object_decision({"ContentLength": 10, "Metadata": {}}, 10, "abc", "raw", False) == "refuse"


def test_vmdk_object_is_matched_by_its_source_checksum_not_its_size():
    obj = head(3, sha="vmdk-sha", fmt="vmdk", source="raw-sha")
    assert mp.object_decision(obj, 4096, "raw-sha", "vmdk", False) == "same"
    # the same source uploaded raw is a different object
    assert mp.object_decision(obj, 4096, "raw-sha", "raw", False) == "refuse"


def test_describe_object_names_size_checksum_and_format():
    text = mp.describe_object(head(10, "abc"))
    assert "size 10" in text and "abc" in text and "raw" in text
    assert "unknown" in mp.describe_object({"ContentLength": 1})


# -- resume ----------------------------------------------------------------------------------------------------------


def local_sums(data):
    return lambda number, offset, length: mp.part_checksums(data[offset:offset + length])


def test_only_verified_parts_are_reused():
    data = os.urandom(12 * MiB)
    plan = mp.plan_parts(len(data), 5 * MiB)
    md5_1 = mp.part_checksums(data[:5 * MiB])[0]
    crc_2 = mp.part_checksums(data[5 * MiB:10 * MiB])[1]
    listed = [
        {"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB},  # verified by its ETag (MD5)
        # an encrypted part (ETag not an MD5) is verified by its CRC32
        {"PartNumber": 2, "ETag": '"kms-etag-not-an-md5"', "Size": 5 * MiB, "ChecksumCRC32": crc_2},
        {"PartNumber": 3, "ETag": '"0000"', "Size": 2 * MiB},  # wrong content
    ]
    reused = mp.reusable_parts(listed, plan, local_sums(data))
    assert sorted(reused) == [1, 2]
    assert reused[1]["ChecksumCRC32"] == mp.part_checksums(data[:5 * MiB])[1]


def test_parts_of_another_size_or_number_are_not_reused():
    data = os.urandom(11 * MiB)
    plan = mp.plan_parts(len(data), 5 * MiB)
    md5_1 = mp.part_checksums(data[:5 * MiB])[0]
    listed = [
        {"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB - 1},
        {"PartNumber": 9, "ETag": '"%s"' % md5_1, "Size": 5 * MiB},
    ]
    assert mp.reusable_parts(listed, plan, local_sums(data)) == {}


def test_a_wrong_crc32_wins_over_a_matching_etag():
    data = os.urandom(5 * MiB)
    plan = mp.plan_parts(len(data), 5 * MiB)
    md5_1 = mp.part_checksums(data)[0]
    listed = [{"PartNumber": 1, "ETag": '"%s"' % md5_1, "Size": 5 * MiB, "ChecksumCRC32": "AAAAAA=="}]
    assert mp.reusable_parts(listed, plan, local_sums(data)) == {}


def test_resume_adopts_the_part_size_of_the_interrupted_upload():
    listed = [{"PartNumber": 2, "Size": 6 * MiB}, {"PartNumber": 1, "Size": 6 * MiB}]
    assert mp.resume_part_size(listed, 100 * MiB, 8 * MiB) == 6 * MiB
    assert mp.resume_part_size([], 100 * MiB, 8 * MiB) == 8 * MiB
    assert mp.resume_part_size([{"PartNumber": 3, "Size": 6 * MiB}], 100 * MiB, 8 * MiB) == 8 * MiB


def test_the_newest_sha256_upload_of_exactly_the_key_is_resumed():
    uploads = [
        {"Key": "img.raw", "UploadId": "old", "Initiated": "2024-01-01T00:00:00", "ChecksumAlgorithm": "CRC32"},
        {"Key": "img.raw", "UploadId": "new", "Initiated": "2024-02-01T00:00:00", "ChecksumAlgorithm": "CRC32"},
        {"Key": "img.raw", "UploadId": "sha", "Initiated": "2024-03-01T00:00:00", "ChecksumAlgorithm": "SHA256"},
        {"Key": "img.raw.bak", "UploadId": "other", "Initiated": "2025-01-01T00:00:00"},
    ]
    assert mp.choose_resumable_upload(uploads, "img.raw")["UploadId"] == "new"
    assert mp.choose_resumable_upload(uploads, "nothing") is None
