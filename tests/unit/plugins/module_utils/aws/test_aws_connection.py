"""Connection options: endpoints, credentials and region from the environment, botocore's retry configuration."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import connection as conn
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def test_endpoints_per_service_fall_back_to_endpoint_url():
    kwargs, endpoints = conn.client_settings(
        {"region": "eu-west-1", "access_key": "AK", "secret_key": "SK", "endpoint_url": "http://all",
         "s3_endpoint_url": "http://s3-only"}, environ={}
    )[:2]
    assert endpoints == {"s3": "http://s3-only", "ec2": "http://all", "iam": "http://all"}
    assert kwargs == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK", "region_name": "eu-west-1"}
    endpoints = conn.client_settings({}, environ={})[1]
    assert endpoints == {"s3": None, "ec2": None, "iam": None}


def test_half_given_credentials_or_profile_with_keys_are_rejected():
    with pytest.raises(ValidationError):
        conn.client_settings({"access_key": "AK"}, environ={})
    with pytest.raises(ValidationError):
        conn.client_settings({"profile": "p", "access_key": "AK", "secret_key": "SK"}, environ={})


def test_path_style_addressing_is_configured_for_s3(monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    connection = conn.AwsConnection({"region": "us-east-1", "access_key": "AK", "secret_key": "SK",
                                     "endpoint_url": "http://127.0.0.1:9", "s3_path_style": True})
    s3 = connection.s3
    assert s3.meta.config.s3["addressing_style"] == "path"
    assert s3.meta.endpoint_url == "http://127.0.0.1:9"
    assert connection.ec2.meta.region_name == "us-east-1"


def test_retries_are_botocores_only_with_the_given_mode_and_attempts():
    connection = conn.AwsConnection({"region": "us-east-1", "access_key": "AK", "secret_key": "SK",
                                     "retry_mode": "adaptive", "max_attempts": 3}, environ={})
    ec2 = connection.ec2
    assert type(ec2).__module__.startswith("botocore")  # the client itself, no wrapper around it
    assert ec2.meta.config.retries == {"total_max_attempts": 3, "mode": "adaptive"}
    defaults = conn.AwsConnection({"region": "us-east-1"}, environ={}).s3.meta.config.retries
    assert defaults == {"total_max_attempts": conn.DEFAULT_MAX_ATTEMPTS, "mode": "standard"}


@pytest.mark.parametrize("bad, param", [({"retry_mode": "legacy"}, "retry_mode"),
                                        ({"max_attempts": 0}, "max_attempts")])
def test_bad_retry_options_name_the_parameter(bad, param):
    with pytest.raises(ValidationError) as err:
        conn.client_settings(dict(bad), environ={})
    assert err.value.param == param


def test_region_is_read_from_aws_region_first_then_the_others():
    for environ, region in (
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2", "EC2_REGION": "ap-south-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-east-2", "EC2_REGION": "ap-south-1"}, "us-east-2"),
        ({"EC2_REGION": "ap-south-1"}, "ap-south-1"),
    ):
        assert conn.client_settings({}, environ=environ)[0] == {"region_name": region}
    # an explicit region wins
    assert conn.client_settings({"region": "sa-east-1"}, environ={"AWS_REGION": "eu-west-1"})[0] == {
        "region_name": "sa-east-1"}


def test_aws_region_alone_is_enough_for_a_connection(monkeypatch):
    for name in ("AWS_DEFAULT_REGION", "EC2_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert conn.AwsConnection({}).region == "eu-central-1"


def test_keys_and_security_token_as_awx_injects_them():
    environ = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SECURITY_TOKEN": "tok",
               "AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_CA_BUNDLE": "/etc/ca.pem"}
    kwargs, endpoints, options = conn.client_settings({"region": "us-east-1"}, environ=environ)
    assert kwargs == {"aws_access_key_id": "AKIA", "aws_secret_access_key": "s3cr3t", "aws_session_token": "tok",
                      "region_name": "us-east-1"}
    assert set(endpoints.values()) == {"http://127.0.0.1:5000"}
    assert options["aws_ca_bundle"] == "/etc/ca.pem"
    # AWS_SESSION_TOKEN is read before AWS_SECURITY_TOKEN
    environ["AWS_SESSION_TOKEN"] = "session"
    assert conn.client_settings({}, environ=environ)[0]["aws_session_token"] == "session"


def test_environment_keys_do_not_override_an_explicit_profile_or_keys():
    environ = {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"}
    assert conn.client_settings({"profile": "p"}, environ=environ)[0] == {"profile_name": "p"}
    kwargs = conn.client_settings({"access_key": "AK", "secret_key": "SK"}, environ=environ)[0]
    assert kwargs == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK"}


def test_tls_verification_uses_the_ca_bundle_or_is_off(tmp_path):
    assert conn.tls_verify({"validate_certs": True}) is None
    assert conn.tls_verify({"validate_certs": True, "aws_ca_bundle": "/ca.pem"}) == "/ca.pem"
    assert conn.tls_verify({"validate_certs": False, "aws_ca_bundle": "/ca.pem"}) is False
    with pytest.raises(ValidationError) as err:
        conn.AwsConnection({"region": "us-east-1", "aws_ca_bundle": str(tmp_path / "missing.pem")}, environ={})
    assert err.value.param == "aws_ca_bundle"


def test_a_failed_call_names_the_call_and_the_aws_error_code():
    class Answer(Exception):
        response = {"Error": {"Code": "SlowDown"}}

    message = str(conn.describe_error("S3 HeadObject s3://b/k", Answer("reached max retries: 4")))
    assert message == "S3 HeadObject s3://b/k failed: reached max retries: 4 (SlowDown)"
