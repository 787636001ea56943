# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS clients for S3, EC2 and IAM from one set of connection options.

Plain Python over boto3 (no Ansible import). Credentials are handed to boto3 only: never written to disk, put in
the environment of a subprocess or returned. Options not given are read from the environment as amazon.aws reads
them (see ENV_FALLBACKS); without keys, boto3's standard chain applies (shared files, container and instance roles).

Retries are botocore's own (``standard`` or ``adaptive`` mode): there is no second retry layer on top. Calls that
are not idempotent are made safe to repeat by their callers (a ClientToken, or a look-up of what a repeated call
may already have created).
"""

from __future__ import annotations

import copy
import os

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
    "aws_ca_bundle",
    "retry_mode",
    "max_attempts",
)
SECRET_OPTIONS = ("secret_key", "session_token")
RETRY_MODES = ("standard", "adaptive")
DEFAULT_MAX_ATTEMPTS = 5

# The environment variables read for options not given, first one set wins (the names amazon.aws reads, which
# include what AWX's "Amazon Web Services" credential injects: the two keys and AWS_SECURITY_TOKEN).
ENV_FALLBACKS = {
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION", "EC2_REGION"),
    "access_key": ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY"),
    "secret_key": ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY"),
    "session_token": ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "EC2_SECURITY_TOKEN"),
    "endpoint_url": ("AWS_ENDPOINT_URL", "AWS_URL", "EC2_URL"),
    "aws_ca_bundle": ("AWS_CA_BUNDLE",),
}
KEY_OPTIONS = ("access_key", "secret_key", "session_token")


def aws_connection_argument_spec():
    """The AnsibleModule argument_spec of the connection options (the edgeforge.artifacts.aws doc fragment)."""
    return dict(
        region=dict(type="str", aliases=["aws_region"]),
        profile=dict(type="str", aliases=["aws_profile"]),
        access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=False),
        secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
        session_token=dict(type="str", aliases=["aws_session_token", "security_token"], no_log=True),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
        s3_endpoint_url=dict(type="str"),
        ec2_endpoint_url=dict(type="str"),
        iam_endpoint_url=dict(type="str"),
        s3_path_style=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        aws_ca_bundle=dict(type="path"),
        retry_mode=dict(type="str", choices=list(RETRY_MODES), default="standard"),
        max_attempts=dict(type="int", default=DEFAULT_MAX_ATTEMPTS),
    )


def error_code(err):
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe_error(step, err):
    """One message naming the call that failed and the cause (with the AWS error code when there is one)."""
    code = error_code(err)
    text = str(err)
    if code and code not in text:
        text = "%s (%s)" % (text, code)
    return EdgeforgeError("%s failed: %s" % (step, text))


def with_environment(options, environ=None):
    """``options`` with what is not given read from the environment (ENV_FALLBACKS), as amazon.aws does.

    Keys from the environment are used only when the options name neither keys nor a profile, so an explicit
    profile is not overridden by keys a job environment happens to carry.
    """
    environ = os.environ if environ is None else environ
    options = dict(options or {})
    explicit_identity = bool(options.get("access_key") or options.get("profile"))
    for name, variables in ENV_FALLBACKS.items():
        if options.get(name) or (name in KEY_OPTIONS and explicit_identity):
            continue
        for variable in variables:
            if environ.get(variable):
                options[name] = environ[variable]
                break
    return options


def client_settings(options, environ=None):
    """Resolve the session arguments and the per-service endpoints (pure; unit-tested)."""
    options = with_environment(options, environ)
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
    mode = options["retry_mode"] or "standard"
    if mode not in RETRY_MODES:
        raise ValidationError("retry_mode", mode, "use standard or adaptive")
    attempts = DEFAULT_MAX_ATTEMPTS if options["max_attempts"] is None else int(options["max_attempts"])
    if attempts < 1 or attempts > 20:
        raise ValidationError("max_attempts", attempts, "use 1 to 20 (requests per call, the first one included)")
    options["retry_mode"], options["max_attempts"] = mode, attempts
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


def tls_verify(options):
    """boto3's ``verify``: False without certificate checks, the CA bundle path when given, else None (default)."""
    if options.get("validate_certs") is False:
        return False
    return options.get("aws_ca_bundle") or None


def client_config(service, options, max_pool_connections=10):
    """botocore Config of one client: its retries are the only ones (total attempts, mode)."""
    config_kwargs = {
        "max_pool_connections": max(10, max_pool_connections + 2),
        "retries": {"total_max_attempts": options["max_attempts"], "mode": options["retry_mode"]},
        # CompleteMultipartUpload of a big object can take minutes on S3-compatible stores.
        "read_timeout": 600 if service == "s3" else 60,
    }
    if service == "s3" and options.get("s3_path_style"):
        config_kwargs["s3"] = {"addressing_style": "path"}
    return botocore.config.Config(**config_kwargs)


class AwsConnection:
    """Lazily created S3, EC2 and IAM clients sharing one boto3 session."""

    def __init__(self, options, max_pool_connections=10, environ=None):
        if not HAS_BOTO3:
            raise EdgeforgeError("boto3 is required for the AWS modules: %s" % BOTO3_IMPORT_ERROR)
        self._session_kwargs, self.endpoints, self._options = client_settings(options, environ)
        ca_bundle = self._options.get("aws_ca_bundle")
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ValidationError("aws_ca_bundle", ca_bundle, "give the path of an existing PEM file of CA certs")
        try:
            self.session = boto3.session.Session(**self._session_kwargs)
        except botocore.exceptions.ProfileNotFound as err:
            raise EdgeforgeError("AWS profile not found: %s" % err) from None
        self.region = self.session.region_name
        if not self.region:
            raise ValidationError(
                "region", None, "set region (or AWS_REGION / AWS_DEFAULT_REGION / EC2_REGION, or a profile region)"
            )
        self.max_pool_connections = max_pool_connections
        self._clients = {}

    def in_region(self, region):
        """The same credentials and options for another region (clients of its own)."""
        other = copy.copy(self)
        other.region = region
        other._clients = {}  # pylint: disable=protected-access
        return other

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoints.get(service),
                config=client_config(service, self._options, self.max_pool_connections),
                verify=tls_verify(self._options),
            )
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
