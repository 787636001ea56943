"""The AWS test bed: a standalone moto server (S3, EC2, IAM) with the labelled test double loaded.

The double (tests/testbed/moto_import_double.py) replaces EC2 ImportSnapshot, DescribeImportSnapshotTasks and
EnableImageDeprecation (moto has none of them), RegisterImage (moto keeps only its name and description) and wraps
CopyImage (ClientToken, encryption, timing) and DescribeImages (pending, then available); everything else is moto's
own implementation.

The server runs in its own process (tests/testbed/moto_import_double.py), so `ansible-playbook` subprocesses and the
test process talk to it over HTTP on loopback with the real boto3 client, and big uploads do not compete with pytest
for the GIL.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class MotoServer:
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    process: subprocess.Popen = dataclasses.field(repr=False, default=None)
    calls_path: str = None

    def import_calls(self, s3_uri):
        """[(new|repeat, task id), ...]: the ImportSnapshot calls the double received for that object."""
        if not self.calls_path or not os.path.exists(self.calls_path):
            return []
        with open(self.calls_path, encoding="utf-8") as handle:
            rows = [line.rstrip("\n").split("\t") for line in handle]
        return [(row[2], row[3]) for row in rows if len(row) == 4 and row[1] == s3_uri]

    def client(self, service):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def connection_options(self):
        """The edgeforge.artifacts.aws connection options pointing at this server."""
        return {
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
        }


def start_moto_server(log_path=None, timeout=60, calls_path=None):
    """Start the server process on a free 127.0.0.1 port; returns MotoServer (stop it with stop_moto_server).

    ``calls_path``: the file the double appends each ImportSnapshot call to (see MotoServer.import_calls).
    """
    log = open(log_path or os.devnull, "ab")  # pylint: disable=consider-using-with
    env = dict(os.environ)
    if calls_path:
        env["EDGEFORGE_DOUBLE_CALLS"] = calls_path
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "tests.testbed.moto_import_double", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    end = time.monotonic() + timeout
    port = None
    while time.monotonic() < end:
        line = proc.stdout.readline().decode()
        if line.startswith("PORT "):
            port = int(line.split()[1])
            break
        if proc.poll() is not None:
            break
    if port is None:
        proc.kill()
        raise RuntimeError("the moto server did not start (see %s)" % (log_path or "its stderr"))
    server = MotoServer(
        endpoint_url="http://127.0.0.1:%d" % port,
        region="us-east-1",
        access_key="AKIAEDGEFORGETEST0001",
        secret_key="edgeforgeSecret" + secrets.token_hex(12),
        process=proc,
        calls_path=calls_path,
    )
    # Wait until it answers.
    import boto3  # noqa: F401

    for _attempt in range(100):
        try:
            server.client("s3").list_buckets()
            break
        except Exception:  # pylint: disable=broad-except
            time.sleep(0.1)
    return server


def stop_moto_server(server):
    proc = server.process
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """MotoServer(endpoint_url, region, access_key, secret_key): S3, EC2, IAM + the labelled import test double."""
    directory = tmp_path_factory.mktemp("moto")
    server = start_moto_server(str(directory / "moto.log"), calls_path=str(directory / "import-calls.tsv"))
    try:
        yield server
    finally:
        stop_moto_server(server)
