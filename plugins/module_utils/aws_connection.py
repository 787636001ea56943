# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS clients for S3, EC2 and IAM from one set of connection options.

Plain Python over boto3 (no Ansible import). Credentials are handed to boto3 only: never written to disk, put in
the environment of a subprocess or returned. When no key is given, boto3's standard chain applies (environment
variables, shared config/credentials files, container and instance roles).
"""

from __future__ import annotations

import functools
import random
import time

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as _err:  # reported by the module with missing_required_lib()
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = _err

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError


# The connection options every AWS module of the collection takes (see the edgeforge.artifacts.aws doc fragment).
CONNECTION_OPTIONS = (
    "region",
    "profile",
    "access_key",
    "secret_key",
    "session_token",
    "endpoint_url",
    "s3_endpoint_url",
    "ec2_endpoint_url",
    "iam_endpoint_url",
    "s3_path_style",
    "validate_certs",
)
SECRET_OPTIONS = ("secret_key", "session_token")


def aws_connection_argument_spec():
    """The AnsibleModule argument_spec of the connection options (documented by the edgeforge.artifacts.aws fragment)."""
    return dict(
        region=dict(type="str", aliases=["aws_region"]),
        profile=dict(type="str", aliases=["aws_profile"]),
        access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=False),
        secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
        session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
        s3_endpoint_url=dict(type="str"),
        ec2_endpoint_url=dict(type="str"),
        iam_endpoint_url=dict(type="str"),
        s3_path_style=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
    )


# Error codes worth a retry: throttling and transient server-side failures.
RETRYABLE_CODES = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    )
)


def error_code(err):
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(err):
    response = getattr(err, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_retryable(err):
    """Throttling, 5xx answers and dropped connections are retried; everything else is a real answer."""
    if HAS_BOTO3 and isinstance(
        err,
        (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ),
    ):
        return True
    if error_code(err) in RETRYABLE_CODES:
        return True
    return http_status(err) >= 500


def backoff_delays(attempts, base=0.5, cap=20.0, rng=random.random):
    """Full-jitter exponential backoff: the delays (seconds) slept between ``attempts`` tries."""
    return [rng() * min(cap, base * (2 ** n)) for n in range(max(0, attempts - 1))]


def call_with_retry(func, *args, attempts=6, base=0.5, cap=20.0, sleep=time.sleep, **kwargs):
    """Call ``func``; retry throttling/5xx/connection errors with jittered exponential backoff, at most ``attempts`` times."""
    delays = backoff_delays(attempts, base, cap)
    for attempt in range(attempts):
        try:
            return func(*args, **kwargs)
        except Exception as err:  # pylint: disable=broad-except
            if attempt >= attempts - 1 or not is_retryable(err):
                raise
            sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


def aws_retry(attempts=6, base=0.5, cap=20.0):
    """Decorator form of call_with_retry (like amazon.aws's AWSRetry.jittered_backoff)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return call_with_retry(func, *args, attempts=attempts, base=base, cap=cap, **kwargs)

        return wrapper

    return decorate


class RetryingClient:
    """A boto3 client whose every API call goes through call_with_retry (bounded, jittered)."""

    def __init__(self, client, attempts=6, base=0.5, cap=20.0):
        self._client = client
        self._attempts = attempts
        self._base = base
        self._cap = cap

    @property
    def raw(self):
        return self._client

    @property
    def exceptions(self):
        return self._client.exceptions

    @property
    def meta(self):
        return self._client.meta

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attr

        def call(*args, **kwargs):
            return call_with_retry(attr, *args, attempts=self._attempts, base=self._base, cap=self._cap, **kwargs)

        return call


def client_settings(options):
    """Resolve the per-service endpoint and the keyword arguments for boto3 (pure; unit-tested)."""
    options = dict(options or {})
    for name in CONNECTION_OPTIONS:
        options.setdefault(name, None)
    if bool(options["access_key"]) != bool(options["secret_key"]):
        raise ValidationError(
            "access_key/secret_key",
            "only one of them",
            "give both an access key and a secret key, or neither (then the standard credential chain is used)",
        )
    if options["profile"] and options["access_key"]:
        raise ValidationError(
            "profile", options["profile"], "give either profile or access_key/secret_key, not both"
        )
    session_kwargs = {}
    if options["profile"]:
        session_kwargs["profile_name"] = options["profile"]
    if options["access_key"]:
        session_kwargs["aws_access_key_id"] = options["access_key"]
        session_kwargs["aws_secret_access_key"] = options["secret_key"]
        if options["session_token"]:
            session_kwargs["aws_session_token"] = options["session_token"]
    if options["region"]:
        session_kwargs["region_name"] = options["region"]
    endpoints = {}
    for service in ("s3", "ec2", "iam"):
        endpoints[service] = options.get("%s_endpoint_url" % service) or options["endpoint_url"] or None
    return session_kwargs, endpoints, options


class AwsConnection:
    """Lazily created S3, EC2 and IAM clients sharing one boto3 session."""

    def __init__(self, options, max_pool_connections=10):
        if not HAS_BOTO3:
            raise EdgeforgeError("boto3 is required for the AWS modules: %s" % BOTO3_IMPORT_ERROR)
        self._session_kwargs, self.endpoints, self._options = client_settings(options)
        try:
            self.session = boto3.session.Session(**self._session_kwargs)
        except botocore.exceptions.ProfileNotFound as err:
            raise EdgeforgeError("AWS profile not found: %s" % err) from None
        self.region = self.session.region_name
        if not self.region:
            raise ValidationError("region", None, "set region (or AWS_REGION / AWS_DEFAULT_REGION, or a profile region)")
        self.max_pool_connections = max_pool_connections
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            config_kwargs = {
                "max_pool_connections": max(10, self.max_pool_connections + 2),
                "retries": {"max_attempts": 2, "mode": "standard"},
                # CompleteMultipartUpload of a big object can take minutes on S3-compatible stores.
                "read_timeout": 600 if service == "s3" else 60,
            }
            if service == "s3" and self._options.get("s3_path_style"):
                config_kwargs["s3"] = {"addressing_style": "path"}
            verify = self._options.get("validate_certs")
            raw = self.session.client(
                service,
                endpoint_url=self.endpoints.get(service),
                config=botocore.config.Config(**config_kwargs),
                verify=None if verify is None or verify else False,
            )
            self._clients[service] = RetryingClient(raw)
        return self._clients[service]

    @property
    def s3(self):
        return self.client("s3")

    @property
    def ec2(self):
        return self.client("ec2")

    @property
    def iam(self):
        return self.client("iam")
