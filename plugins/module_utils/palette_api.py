# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Palette API client (standard library only): the Edge agent version of a Palette instance.

The documented step it replaces:

    curl --location --request GET 'https://<palette-endpoint>/v1/services/stylus/version' \\
         --header 'Content-Type: application/json' --header 'Apikey: <api-key>' \\
      | jq --raw-output '.spec.latestVersion.content | match("version: ([^\\n]+)").captures[0].string'

The answer (for example ``4.5.15``) names the CanvOS tag to build with (``v4.5.15``). Errors say which of the
three things went wrong — the key was refused, the host could not be reached, or the answer was not what
Palette sends — and never contain the API key.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, mask_secrets)


VERSION_PATH = "/v1/services/stylus/version"
VERSION_RE = re.compile(r"version: ([^\n]+)")
_PLAUSIBLE_VERSION_RE = re.compile(r"^v?\d+(\.\d+){1,3}([-+.][0-9A-Za-z.+-]+)?$")
EXCERPT_LENGTH = 120


class PaletteApiError(EdgeforgeError):
    """Base class of the Palette API failures."""


class PaletteAuthError(PaletteApiError):
    """The API key was refused (HTTP 401/403)."""


class PaletteUnreachableError(PaletteApiError):
    """The endpoint did not answer: DNS, refused connection, timeout, TLS failure."""


class PaletteAnswerError(PaletteApiError):
    """The endpoint answered, but not with what Palette sends."""


def endpoint_url(endpoint):
    """Base URL for ``endpoint``: a host (``api.spectrocloud.com``, ``palette.example.com:8443``) gets https://;
    a URL keeps its scheme; a trailing ``/v1/...`` path or slash is dropped."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValidationError("endpoint", endpoint, "give the Palette host name (api.spectrocloud.com) or its URL")
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("endpoint", endpoint, "give the Palette host name (api.spectrocloud.com) or an "
                              "http(s) URL")
    if parts.username or parts.password:
        raise ValidationError("endpoint", "%s://%s" % (parts.scheme, parts.hostname),
                              "credentials in the URL are not allowed; use api_key")
    path = parts.path
    if "/v1/" in path + "/":
        path = path[:(path + "/").index("/v1/")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def version_url(endpoint):
    return endpoint_url(endpoint) + VERSION_PATH


def _excerpt(body, api_key):
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = " ".join(body.split())
    body = mask_secrets(body, [api_key])
    if len(body) > EXCERPT_LENGTH:
        body = body[:EXCERPT_LENGTH] + "..."
    return body or "(empty)"


def parse_agent_version(body, url="the Palette API", api_key=None):
    """``.spec.latestVersion.content | match("version: ([^\\n]+)")`` of the JSON answer -> "4.5.15"."""
    try:
        answer = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        raise PaletteAnswerError("unexpected answer from %s: not JSON: %s" % (url, _excerpt(body, api_key))) from None
    node = answer
    for key in ("spec", "latestVersion", "content"):
        if not isinstance(node, dict) or key not in node:
            raise PaletteAnswerError("unexpected answer from %s: no .spec.latestVersion.content field (is this a "
                                     "Palette API endpoint?): %s" % (url, _excerpt(body, api_key)))
        node = node[key]
    if not isinstance(node, str):
        raise PaletteAnswerError("unexpected answer from %s: .spec.latestVersion.content is not a string: %s"
                                 % (url, _excerpt(body, api_key)))
    match = VERSION_RE.search(node)
    if not match:
        raise PaletteAnswerError("unexpected answer from %s: .spec.latestVersion.content has no 'version: ' line: %s"
                                 % (url, _excerpt(node, api_key)))
    version = match.group(1).strip().strip("'\"")
    if not _PLAUSIBLE_VERSION_RE.match(version):
        raise PaletteAnswerError("unexpected answer from %s: %r does not look like an agent version"
                                 % (url, _excerpt(version, api_key)))
    return version[1:] if version.startswith("v") else version


def version_tag(version):
    """The CanvOS git tag for an agent version: 4.5.15 -> v4.5.15."""
    return version if version.startswith("v") else "v" + version


def _unreachable_reason(reason):
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ("its TLS certificate could not be verified (%s); install the CA certificate or set "
                "validate_certs=false for a self-signed Palette" % (reason.verify_message or reason))
    if isinstance(reason, ssl.SSLError):
        return "TLS failed (%s)" % reason
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve (%s)" % reason.strerror
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer within the timeout"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def get_agent_version(endpoint, api_key, validate_certs=True, timeout=30):
    """Ask ``endpoint`` for its Edge agent version. Returns {"version", "tag", "url"}; raises PaletteApiError."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValidationError("api_key", "", "give the Palette API key (Tenant settings > API keys)")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ValidationError("timeout", timeout, "expected a positive number of seconds")
    url = version_url(endpoint)
    request = urllib.request.Request(url, method="GET", headers={
        "Apikey": api_key,
        "Content-Type": "application/json",
        "Accept": "application/json",
    })
    # Standard library only (module_utils stay free of Ansible imports); proxies come from the environment as usual.
    handlers = []
    if url.startswith("https://"):
        context = ssl.create_default_context()
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        body = b""
        try:
            body = err.read()
        except Exception:  # pylint: disable=broad-except  # the body is only used for the message
            body = b""
        if err.code in (401, 403):
            raise PaletteAuthError("Palette at %s refused the API key (HTTP %d): check api_key, that it has not "
                                   "expired and that it belongs to this Palette instance" % (url, err.code)) from None
        raise PaletteAnswerError("unexpected answer from %s: HTTP %d %s: %s"
                                 % (url, err.code, err.reason, _excerpt(body, api_key))) from None
    except urllib.error.URLError as err:
        raise PaletteUnreachableError("cannot reach the Palette endpoint %s: %s"
                                      % (url, _unreachable_reason(err.reason))) from None
    except ConnectionError as err:  # includes http.client.RemoteDisconnected
        raise PaletteUnreachableError("cannot reach the Palette endpoint %s: %s"
                                      % (url, _unreachable_reason(err))) from None
    except http.client.HTTPException as err:
        raise PaletteAnswerError("unexpected answer from %s: not HTTP (%s)" % (url, type(err).__name__)) from None
    except OSError as err:
        raise PaletteUnreachableError("cannot reach the Palette endpoint %s: %s"
                                      % (url, _unreachable_reason(err))) from None
    version = parse_agent_version(body, url, api_key)
    return {"version": version, "tag": version_tag(version), "url": url}
