"""Unit tests of the Palette API client, against the local Palette API test double (a real HTTP server)."""

import json
import socket

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.palette_api import (
    PaletteAnswerError,
    PaletteAuthError,
    PaletteUnreachableError,
    endpoint_url,
    get_agent_version,
    parse_agent_version,
    version_tag,
    version_url,
)
from tests.testbed.palette_bed import VERSION_PATH, PaletteApi, version_answer


@pytest.mark.parametrize("endpoint,expected", [
    ("api.spectrocloud.com", "https://api.spectrocloud.com"),
    ("palette.example.com:8443", "https://palette.example.com:8443"),
    ("  palette.example.com/  ", "https://palette.example.com"),
    ("https://palette.example.com", "https://palette.example.com"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("https://palette.example.com/v1/services/stylus/version", "https://palette.example.com"),
    ("https://example.com/palette/v1", "https://example.com/palette"),
])
def test_endpoint_url(endpoint, expected):
    assert endpoint_url(endpoint) == expected
    assert version_url(endpoint) == expected + VERSION_PATH


@pytest.mark.parametrize("endpoint", ["", "   ", None, "ftp://palette.example.com", "https://"])
def test_bad_endpoint_is_refused(endpoint):
    with pytest.raises(ValidationError) as err:
        endpoint_url(endpoint)
    assert str(err.value).startswith("endpoint:")


def test_credentials_in_the_endpoint_are_refused_without_being_echoed():
    with pytest.raises(ValidationError) as err:
        endpoint_url("https://admin:hunter2@palette.example.com")
    assert "hunter2" not in str(err.value)


def test_parse_documented_answer():
    assert parse_agent_version(json.dumps(version_answer("4.5.15"))) == "4.5.15"


@pytest.mark.parametrize("content,expected", [
    ("version: 4.5.15", "4.5.15"),
    ("name: stylus\nversion: v4.6.2\nother: x", "4.6.2"),
    ("version: '4.4.12'\n", "4.4.12"),
    ("version: 4.5.15-rc.1\n", "4.5.15-rc.1"),
])
def test_parse_like_the_documented_jq(content, expected):
    body = json.dumps({"spec": {"latestVersion": {"content": content}}}).encode()
    assert parse_agent_version(body) == expected


@pytest.mark.parametrize("body,words", [
    (b"<html>oops</html>", "not JSON"),
    (b"", "not JSON"),
    (json.dumps({"spec": {}}).encode(), ".spec.latestVersion.content"),
    (json.dumps([1, 2]).encode(), ".spec.latestVersion.content"),
    (json.dumps({"spec": {"latestVersion": {"content": 4}}}).encode(), "not a string"),
    (json.dumps({"spec": {"latestVersion": {"content": "name: stylus"}}}).encode(), "no 'version: ' line"),
    (json.dumps({"spec": {"latestVersion": {"content": "version: latest"}}}).encode(), "does not look like"),
])
def test_unexpected_answers(body, words):
    with pytest.raises(PaletteAnswerError) as err:
        parse_agent_version(body, "https://p/v1/services/stylus/version")
    assert "unexpected answer from https://p/v1/services/stylus/version" in str(err.value)
    assert words in str(err.value)


def test_excerpt_is_short_and_never_holds_the_key():
    key = "apikey-should-not-leak"
    body = ("<html>" + key + "x" * 500 + "</html>").encode()
    with pytest.raises(PaletteAnswerError) as err:
        parse_agent_version(body, "u", api_key=key)
    assert key not in str(err.value)
    assert len(str(err.value)) < 250


@pytest.mark.parametrize("version,tag", [("4.5.15", "v4.5.15"), ("v4.4.12", "v4.4.12")])
def test_version_tag(version, tag):
    assert version_tag(version) == tag


@pytest.fixture()
def palette():
    """A private test double per test, so answer switches and stops do not affect other tests."""
    with PaletteApi(version="4.5.15") as api:
        yield api


def test_good_key_returns_version_and_tag(palette):
    answer = get_agent_version(palette.url, palette.api_key, timeout=10)
    assert answer == {"version": "4.5.15", "tag": "v4.5.15", "url": palette.url + VERSION_PATH}
    path, headers = palette.requests[-1]
    assert path == VERSION_PATH
    assert headers["Apikey"] == palette.api_key
    assert headers["Content-Type"] == "application/json"


def test_bad_key_is_a_clear_error_without_the_key(palette):
    wrong = "wrong-key-" + "7" * 20
    with pytest.raises(PaletteAuthError) as err:
        get_agent_version(palette.url, wrong, timeout=10)
    message = str(err.value)
    assert "refused the API key" in message and "401" in message
    assert wrong not in message and palette.api_key not in message


def test_server_error_is_an_unexpected_answer(palette):
    with palette.answering("error"), pytest.raises(PaletteAnswerError) as err:
        get_agent_version(palette.url, palette.api_key, timeout=10)
    assert "HTTP 500" in str(err.value)


def test_garbage_is_an_unexpected_answer(palette):
    with palette.answering("garbage"), pytest.raises(PaletteAnswerError) as err:
        get_agent_version(palette.url, palette.api_key, timeout=10)
    assert "not JSON" in str(err.value) and "Service temporarily unavailable" in str(err.value)


def test_stopped_server_is_unreachable_naming_the_endpoint():
    api = PaletteApi().start()
    url = api.url
    api.stop()
    with pytest.raises(PaletteUnreachableError) as err:
        get_agent_version(url, api.api_key, timeout=5)
    assert url + VERSION_PATH in str(err.value)
    assert "connection refused" in str(err.value)


def test_host_without_scheme_uses_https():
    """A plain-HTTP server asked over HTTPS fails at the TLS handshake: proof that https is the default."""
    with PaletteApi() as api, pytest.raises(PaletteUnreachableError) as err:
        get_agent_version(api.endpoint, api.api_key, timeout=5)
    assert "https://%s%s" % (api.endpoint, VERSION_PATH) in str(err.value)


def test_self_signed_certificate_needs_validate_certs_false():
    with PaletteApi(tls=True) as api:
        # https is the default for a bare host, and the certificate is checked.
        with pytest.raises(PaletteUnreachableError) as err:
            get_agent_version(api.endpoint, api.api_key, timeout=10)
        message = str(err.value)
        assert "https://%s%s" % (api.endpoint, VERSION_PATH) in message
        assert "certificate" in message and "validate_certs=false" in message
        assert api.requests == []
        # With validation off, the same endpoint answers.
        answer = get_agent_version(api.endpoint, api.api_key, validate_certs=False, timeout=10)
        assert answer["tag"] == "v4.5.15"
        assert answer["url"] == api.url + VERSION_PATH


def test_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection but never answers
    try:
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        with pytest.raises(PaletteUnreachableError) as err:
            get_agent_version(url, "key", timeout=1)
        assert "timeout" in str(err.value) and url in str(err.value)
    finally:
        listener.close()


def test_unresolvable_host_is_unreachable():
    with pytest.raises(PaletteUnreachableError) as err:
        get_agent_version("palette.invalid", "key", timeout=5)
    assert "https://palette.invalid" + VERSION_PATH in str(err.value)


@pytest.mark.parametrize("key", ["", "   ", None])
def test_empty_api_key_is_refused_before_any_request(key, palette):
    with pytest.raises(ValidationError) as err:
        get_agent_version(palette.url, key)
    assert str(err.value).startswith("api_key:")
    assert palette.requests == []


@pytest.mark.parametrize("timeout", [0, -1, "10", True])
def test_bad_timeout_is_refused(timeout):
    with pytest.raises(ValidationError):
        get_agent_version("palette.example.com", "key", timeout=timeout)
