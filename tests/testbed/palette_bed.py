"""TEST DOUBLE of the Palette API (the only part of Palette the collection talks to).

Palette is a hosted SaaS service that cannot run here, so this is a real HTTP server (http.server in a thread,
on 127.0.0.1, random port) that answers `GET /v1/services/stylus/version` the way Palette does: with the JSON
shape the documentation's `jq '.spec.latestVersion.content | match("version: ([^\\n]+)")'` reads, when the
`Apikey` header matches, and HTTP 401 otherwise. `answer` switches it to misbehave for the error-path tests:

    "ok"        the documented answer (agent version `version`, default 4.5.15)
    "garbage"   HTTP 200 with a body that is not JSON
    "no-field"  HTTP 200 JSON without .spec.latestVersion.content
    "error"     HTTP 500

``PaletteApi(tls=True)`` serves HTTPS with a fresh self-signed certificate (``ca_file``), like a self-hosted Palette.

Fixture (session scope): ``palette_api`` -> PaletteApi(endpoint="127.0.0.1:PORT", url="http://127.0.0.1:PORT",
api_key=...). Tests that change ``answer`` restore it: ``with palette_api.answering("garbage"): ...``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading

import pytest

VERSION_PATH = "/v1/services/stylus/version"


def version_answer(version):
    """The body Palette sends: the agent version sits in a YAML text under .spec.latestVersion.content."""
    return {
        "metadata": {"name": "stylus", "uid": "stylus-version"},
        "spec": {
            "latestVersion": {
                "content": "version: %s\nimage: us-docker.pkg.dev/palette-images/edge/stylus-linux-amd64:v%s\n"
                           % (version, version),
                "name": "stylus",
            },
        },
    }


class PaletteApi:
    """A running Palette API test double. ``requests`` records (path, headers) of every request."""

    def __init__(self, api_key=None, version="4.5.15", tls=False):
        self.api_key = api_key or "edgeforge-test-apikey-" + secrets.token_hex(12)
        self.tls = tls
        self.ca_file = None
        self._tmpdir = None
        self.version = version
        self.answer = "ok"
        self.requests = []
        self._server = None
        self._thread = None
        self.endpoint = None
        self.url = None

    def start(self):
        bed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "PaletteApiTestDouble/1.0"

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin  # keep pytest output clean
                return

            def _send(self, status, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server naming
                bed.requests.append((self.path, dict(self.headers)))
                if self.path.split("?", 1)[0] != VERSION_PATH:
                    self._send(404, {"code": "NotFound", "message": "no route %s" % self.path})
                    return
                if self.headers.get("Apikey") != bed.api_key:
                    self._send(401, {"code": "Unauthorized", "message": "Invalid API key"})
                    return
                if bed.answer == "garbage":
                    self._send(200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
                elif bed.answer == "no-field":
                    self._send(200, {"spec": {"latestVersion": {}}})
                elif bed.answer == "error":
                    self._send(500, {"code": "InternalError", "message": "stylus version unavailable"})
                else:
                    self._send(200, version_answer(bed.version))

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.endpoint = "127.0.0.1:%d" % port
        self.url = "http://127.0.0.1:%d" % port
        if self.tls:
            # A self-signed certificate, like a self-hosted Palette's (openssl is part of the base system).
            self._tmpdir = tempfile.mkdtemp(prefix="edgeforge-test-palette-tls.")
            cert, key = os.path.join(self._tmpdir, "cert.pem"), os.path.join(self._tmpdir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", cert], check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.ca_file = cert
            self.url = "https://127.0.0.1:%d" % port
        self._thread = threading.Thread(target=self._server.serve_forever, name="palette-api-test-double",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @contextlib.contextmanager
    def answering(self, answer):
        """Temporarily answer with ``answer`` ("garbage", "no-field", "error")."""
        previous, self.answer = self.answer, answer
        try:
            yield self
        finally:
            self.answer = previous

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="session")
def palette_api():
    """The Palette API test double, running for the whole session."""
    with PaletteApi() as api:
        yield api


def main(argv=None):
    """`python -m tests.testbed.palette_bed [--api-key KEY] [--tls]`: serve the test double until interrupted."""
    import argparse  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(description="Palette API TEST DOUBLE (stylus version endpoint only)")
    parser.add_argument("--api-key", help="the API key it accepts (default: a random one, printed)")
    parser.add_argument("--version", default="4.5.15", help="the agent version it reports")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    args = parser.parse_args(argv)
    with PaletteApi(api_key=args.api_key, version=args.version, tls=args.tls) as api:
        print(json.dumps({"palette_endpoint": api.url, "palette_api_key": api.api_key}), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
