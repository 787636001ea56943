"""Benchmark: uploading a raw disk image to a local S3 endpoint, ec2_image_import's uploader vs boto3's upload_file.

Measures, side by side in one run against the same local S3 server and the same file:

1. throughput of edgeforge's upload (multipart, CRC32 per part, the image's SHA-256 computed while the parts are
   read, recorded as a tag afterwards) versus boto3's ``upload_file`` with default settings; the median ratio of the
   rounds must be >= 1.0;
2. the bytes a re-run sends (must be 0: the object is recognised by its recorded SHA-256);
3. with ``disk_format: vmdk``, the bytes sent for a disk holding 1/4 of its size in data (must be <= 0.35x raw).

The S3 server is `s3rver` (npm), which keeps objects on disk: moto keeps multipart uploads in memory (a 4 GiB upload
would need ~10 GB of RAM). s3rver has no EC2, so only the upload step is measured here; the whole flow is tested
against moto by tests/integration/test_aws_import.py.

    python benchmarks/aws_upload.py [--size-gib 4] [--rounds 3] [--workdir benchmarks/output/aws_upload]

s3rver is installed with npm into benchmarks/output/s3rver when missing (`npm install s3rver@3.7.1`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "collections")]

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402  pylint: disable=unused-import

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import AwsConnection  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.context import Context  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.multipart import file_sha256  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.options import (  # noqa: E402
    MiB,
    normalise_options,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.upload import ensure_object  # noqa: E402

GiB = 1024 * MiB
BUCKET = "edgeforge-bench"
S3RVER_DIR = os.path.join(REPO_ROOT, "benchmarks", "output", "s3rver")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_s3rver():
    binary = os.path.join(S3RVER_DIR, "node_modules", ".bin", "s3rver")
    if not os.path.exists(binary):
        os.makedirs(S3RVER_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "s3rver@3.7.1"], cwd=S3RVER_DIR, check=True)
    return binary


def start_s3rver(data_dir):
    binary = ensure_s3rver()
    port = free_port()
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [binary, "-d", data_dir, "-a", "127.0.0.1", "-p", str(port), "-s", "--configure-bucket", BUCKET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = "http://127.0.0.1:%d" % port
    client = s3_client(endpoint)
    for _attempt in range(100):
        try:
            client.head_bucket(Bucket=BUCKET)
            return proc, endpoint
        except Exception:  # pylint: disable=broad-except
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("s3rver did not start")


def s3_client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="S3RVER",
        aws_secret_access_key="S3RVER",
        # s3rver needs minutes to assemble a 4 GiB multipart object: with botocore's default 60 s read timeout the
        # Complete call is retried and fails (InternalError), for boto3's upload_file as for any client. The same
        # 600 s read timeout as ec2_image_import's S3 client; the transfer settings stay boto3's defaults.
        config=boto3.session.Config(s3={"addressing_style": "path"}, read_timeout=600),
    )


def write_image(path, size, data_bytes, block=64 * MiB):
    """A sparse disk of ``size`` with ``data_bytes`` of incompressible data spread over it (written in blocks)."""
    pattern = os.urandom(block)
    with open(path, "wb") as handle:
        handle.truncate(size)
        blocks = data_bytes // block
        stride = size // max(blocks, 1)
        for index in range(blocks):
            handle.seek(index * stride)
            # vary each block so no two are identical (dedup/compression cannot cheat)
            handle.write(index.to_bytes(8, "little") + pattern[8:])
    # GPT header so it is a disk image
    subprocess.run(["sfdisk", "-q", path], input=b"label: gpt\n,,L\n", check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edgeforge_upload(endpoint, path, key, **extra):
    connection = AwsConnection(
        {"region": "us-east-1", "access_key": "S3RVER", "secret_key": "S3RVER", "endpoint_url": endpoint,
         "s3_path_style": True},
        max_pool_connections=extra.get("concurrency", 4),
    )
    options = {"image_path": path, "bucket": BUCKET, "key": key}
    options.update(extra)
    started = time.monotonic()
    outcome = ensure_object(Context(connection), normalise_options(options))
    elapsed = time.monotonic() - started
    return elapsed, outcome


def boto3_upload(endpoint, path, key):
    client = s3_client(endpoint)
    started = time.monotonic()
    client.upload_file(path, BUCKET, key)  # boto3's defaults: 8 MiB parts, 10 threads
    return time.monotonic() - started


def drop_object(endpoint, key):
    s3_client(endpoint).delete_object(Bucket=BUCKET, Key=key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-size-mb", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only", choices=["all", "throughput", "vmdk"], default="all")
    parser.add_argument("--workdir", default=os.path.join(REPO_ROOT, "benchmarks", "output", "aws_upload"))
    args = parser.parse_args()

    size = int(args.size_gib * GiB)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    data_dir = os.path.join(args.workdir, "s3rver-data")
    os.makedirs(data_dir)
    raw = os.path.join(args.workdir, "full.raw")
    sparse = os.path.join(args.workdir, "quarter.raw")
    if args.only != "vmdk":
        print("writing a %.1f GiB image of incompressible data ..." % args.size_gib, flush=True)
        write_image(raw, size, size)
    proc, endpoint = start_s3rver(data_dir)
    results = {"size_bytes": size, "rounds": []}
    try:
        # warm the page cache once so neither side pays the first read from disk
        if args.only != "vmdk":
            with open(raw, "rb") as handle:
                while handle.read(64 * MiB):
                    pass
        image_sha = file_sha256(raw) if args.only != "vmdk" else None  # what a producer's .sha256 file holds
        for round_no in range(args.rounds if args.only != "vmdk" else 0):
            # alternate the order so neither side always runs first
            order = ("edgeforge", "boto3", "edgeforge-sha-given") if round_no % 2 == 0 else (
                "edgeforge-sha-given", "boto3", "edgeforge")
            entry = {}
            for who in order:
                key = "%s-%d.raw" % (who, round_no)
                if who == "edgeforge":
                    elapsed, result = edgeforge_upload(endpoint, raw, key, part_size_mb=args.part_size_mb,
                                                       concurrency=args.concurrency)
                    assert result.bytes_sent == size, result
                    entry["edgeforge_s"] = round(elapsed, 2)
                    entry["edgeforge_checksum_s"] = result.seconds.get("checksum")
                    assert result.source_sha256 == image_sha
                elif who == "edgeforge-sha-given":
                    # the raw image's producer already wrote its SHA-256 (image_sha256 option): no extra read
                    elapsed, result = edgeforge_upload(endpoint, raw, key, part_size_mb=args.part_size_mb,
                                                       concurrency=args.concurrency, image_sha256=image_sha)
                    assert result.bytes_sent == size, result
                    entry["edgeforge_sha_given_s"] = round(elapsed, 2)
                else:
                    entry["boto3_s"] = round(boto3_upload(endpoint, raw, key), 2)
                print("round %d %s done: %s" % (round_no, who, entry), flush=True)
            # re-run of edgeforge on the object it just wrote: nothing may be sent
            elapsed, result = edgeforge_upload(endpoint, raw, "edgeforge-%d.raw" % round_no,
                                               part_size_mb=args.part_size_mb, concurrency=args.concurrency)
            entry["rerun_bytes_sent"] = result.bytes_sent
            entry["rerun_upload"] = result.upload
            entry["rerun_s"] = round(elapsed, 2)
            entry["ratio"] = round(entry["boto3_s"] / entry["edgeforge_s"], 3)
            entry["ratio_sha_given"] = round(entry["boto3_s"] / entry["edgeforge_sha_given_s"], 3)
            results["rounds"].append(entry)
            for who in ("edgeforge", "boto3", "edgeforge-sha-given"):
                drop_object(endpoint, "%s-%d.raw" % (who, round_no))
            print("round %d: %s" % (round_no, entry), flush=True)
        if os.path.exists(raw):
            os.unlink(raw)
        if args.only == "throughput":
            raise StopIteration
        print("writing a %.1f GiB disk holding %.1f GiB of data ..." % (args.size_gib, args.size_gib / 4), flush=True)
        write_image(sparse, size, size // 4)
        elapsed, result = edgeforge_upload(endpoint, sparse, "quarter.vmdk", disk_format="vmdk",
                                           part_size_mb=args.part_size_mb, concurrency=args.concurrency,
                                           work_dir=args.workdir)
        results["vmdk"] = {
            "raw_bytes": size,
            "data_bytes": size // 4,
            "bytes_sent": result.bytes_sent,
            "ratio_to_raw": round(result.bytes_sent / size, 4),
            "seconds": result.seconds,
        }
        print("vmdk: %s" % results["vmdk"], flush=True)
    except StopIteration:
        pass
    finally:
        proc.terminate()
        proc.wait(30)

    ok = True
    if results["rounds"]:
        ratios = [r["ratio"] for r in results["rounds"]]
        results["throughput_ratio_median"] = statistics.median(ratios)
        median_s = statistics.median(r["edgeforge_s"] for r in results["rounds"])
        results["edgeforge_MiB_s"] = round(size / MiB / median_s, 1)
        results["boto3_MiB_s"] = round(size / MiB / statistics.median(r["boto3_s"] for r in results["rounds"]), 1)
        ok = results["throughput_ratio_median"] >= 1.0 and all(r["rerun_bytes_sent"] == 0 for r in results["rounds"])
    if "vmdk" in results:
        ok = ok and results["vmdk"]["ratio_to_raw"] <= 0.35
    print(json.dumps(results, indent=2))
    with open(os.path.join(REPO_ROOT, "benchmarks", "output", "aws_upload-%s.json" % args.only), "w",
              encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    shutil.rmtree(args.workdir, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
