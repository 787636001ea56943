# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Docker engine client of the collection: build, tag, push, login and remote digests.

Every module that talks to dockerd goes through :class:`DockerEngine`; modules never open their own sockets.

- Builds use the low-level API client and read the classic builder's JSON event stream (``stream``/``aux``/``error``
  keys). Every line goes to a full build log file; each ``Step N/M`` line also goes to a :class:`ProgressLog`.
  A failing build raises :class:`BuildError` naming the failing step, its exit code and the last lines of output.
- Pushes scan EVERY event for ``error``/``errorDetail`` (the engine does not raise for a refused push), count the
  bytes sent from ``progressDetail`` and read the manifest digest from the final ``aux`` event.
- Credentials stay in memory (``auth_config`` per call); ``~/.docker/config.json`` is only written on request.
- Transient failures (connection reset/refused, HTTP 5xx, 429) are retried with exponential backoff, a bounded
  number of times, then reported once with the registry, the image and the reason.

Plain Python (no Ansible import): the pure parts are unit-tested without an engine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import collections
import json
import os
import re
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, atomic_write

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # reported by the modules with missing_required_lib()
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc
    docker = None

    class APIError(Exception):  # pylint: disable=missing-class-docstring
        pass

    DockerException = ImageNotFound = NotFound = APIError


DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DOCKER_HUB = "docker.io"
DOCKER_HUB_INDEX = "https://index.docker.io/v1/"
TAIL_LINES = 25

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_EXIT_CODE_RE = re.compile(r"returned a non-zero code: (\d+)")
_TRANSIENT_RE = re.compile(
    r"connection reset|connection refused|broken pipe|i/o timeout|timeout exceeded|timed out|unexpected EOF"
    r"|EOF$|no route to host|server misbehaving|temporarily unavailable|too many requests|toomanyrequests"
    r"|\b(429|500|502|503|504)\b|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout",
    re.IGNORECASE,
)


class DockerEngineError(EdgeforgeError):
    """A Docker engine or registry operation failed (message says what, where and why)."""


class BuildError(DockerEngineError):
    """A build failed: carries the failing step, its exit code and the last lines of output."""

    def __init__(self, image, step, exit_code, tail, log_path=None, reason=None):
        self.image = image
        self.step = step
        self.exit_code = exit_code
        self.tail = list(tail)
        self.log_path = log_path
        self.reason = reason
        parts = ["Build of %s failed" % image]
        if step:
            parts.append(" at %s" % step)
        if exit_code is not None:
            parts.append(" (exit code %s)" % exit_code)
        if reason:
            parts.append(": %s" % reason)
        message = "".join(parts)
        if self.tail:
            message += "\nLast lines of output:\n" + "\n".join(self.tail)
        if log_path:
            message += "\nFull build log: %s" % log_path
        super().__init__(message)


class LoginRefused(DockerEngineError):
    """The registry refused the credentials (not retried)."""


class TransientError(DockerEngineError):
    """A failure worth retrying (connection reset/refused, 5xx, 429)."""


def is_transient(message):
    """True when an error message looks like a transient network/registry failure worth retrying."""
    return bool(message) and bool(_TRANSIENT_RE.search(str(message)))


def backoff_delays(retries, initial=1.0, factor=2.0, maximum=30.0):
    """The waits before each retry: ``initial * factor**n``, capped at ``maximum``; ``retries`` of them."""
    delays = []
    delay = float(initial)
    for _attempt in range(max(0, int(retries))):
        delays.append(min(delay, maximum))
        delay *= factor
    return delays


def split_reference(reference):
    """``registry/repo:tag`` -> (registry, repository-with-registry, tag). The registry is ``docker.io`` for Hub."""
    repository, tag = parse_reference(reference)
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        registry = first
    else:
        registry = DOCKER_HUB
    return registry, repository, tag or "latest"


def parse_reference(reference):
    """Split ``name[:tag][@digest]`` into (name, tag-or-digest) without the Docker SDK."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, None


def registry_label(registry):
    """How the registry is named to the user (Docker Hub spelled out)."""
    return "Docker Hub (docker.io)" if registry in (DOCKER_HUB, "index.docker.io", DOCKER_HUB_INDEX) else registry


class BuildStream:
    """Consumes classic-builder JSON events: writes the full log, reports steps, remembers the failure context."""

    def __init__(self, log_handle=None, progress=None, label="", tail_lines=TAIL_LINES):
        self.log_handle = log_handle
        self.progress = progress
        self.label = label
        self.step = None
        self.step_output = collections.deque(maxlen=tail_lines)
        self.image_id = None
        self.error = None
        self.error_detail = None
        self._partial = ""

    def _line(self, line):
        if self.log_handle:
            self.log_handle.write(line + "\n")
        match = _STEP_RE.match(line)
        if match:
            self.step = "step %s/%s (%s)" % (match.group(1), match.group(2), match.group(3).strip())
            self.step_output.clear()
            if self.progress:
                self.progress("%s%s" % ("[%s] " % self.label if self.label else "", line))
        elif line.strip():
            self.step_output.append(line)

    def feed(self, event):
        """Handle one decoded event dict."""
        if "stream" in event:
            text = self._partial + event["stream"]
            lines = text.split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._line(line.rstrip("\r"))
        if "aux" in event and isinstance(event["aux"], dict) and event["aux"].get("ID"):
            self.image_id = event["aux"]["ID"]
        if "error" in event or "errorDetail" in event:
            self.flush()
            detail = event.get("errorDetail") or {}
            self.error = event.get("error") or detail.get("message") or "unknown build error"
            self.error_detail = detail
            if self.log_handle:
                self.log_handle.write("ERROR: %s\n" % self.error)
        if self.log_handle:
            self.log_handle.flush()

    def flush(self):
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def exit_code(self):
        code = (self.error_detail or {}).get("code")
        if code is not None:
            return code
        match = _EXIT_CODE_RE.search(self.error or "")
        return int(match.group(1)) if match else None


class PushStream:
    """Consumes push events: any ``error``/``errorDetail`` is a failure, bytes from ``progressDetail``, aux digest."""

    def __init__(self, progress=None, label=""):
        self.progress = progress
        self.label = label
        self.layers = {}
        self.existing = set()
        self.digest = None
        self.size = None
        self.error = None
        self._last_report = 0.0

    def feed(self, event):
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail") or {}
            self.error = event.get("error") or detail.get("message") or "unknown push error"
            return
        status = event.get("status") or ""
        layer = event.get("id")
        detail = event.get("progressDetail") or {}
        if layer and status == "Pushing" and "current" in detail:
            self.layers[layer] = max(self.layers.get(layer, 0), int(detail.get("current") or 0))
            now = time.monotonic()
            if self.progress and now - self._last_report >= 2.0:
                self._last_report = now
                self.progress("%spushing: %d bytes sent" % ("[%s] " % self.label if self.label else "", self.bytes_sent))
        elif layer and status == "Layer already exists":
            self.existing.add(layer)
        elif layer and status == "Pushed" and layer not in self.layers:
            # Small layers can finish without a progress event: count them as sent (size unknown -> 0).
            self.layers.setdefault(layer, 0)
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = aux["Digest"]
            self.size = aux.get("Size")

    @property
    def bytes_sent(self):
        return sum(self.layers.values())


def docker_config_entry(registry, username, password):
    """The ``auths`` entry of a ``~/.docker/config.json`` for one registry."""
    key = DOCKER_HUB_INDEX if registry in (DOCKER_HUB, "index.docker.io") else registry
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    return key, {"auth": token}


def write_docker_config(path, registry, username, password):
    """Merge one registry's credentials into a Docker config file (mode 0600). Returns True if it changed."""
    path = os.path.expanduser(path)
    data = {}
    if os.path.exists(path):
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
        data = json.loads(text) if text.strip() else {}
    key, entry = docker_config_entry(registry, username, password)
    auths = data.setdefault("auths", {})
    if auths.get(key) == entry:
        return False
    auths[key] = entry
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)
    return True


class DockerEngine:
    """A connection to one Docker engine."""

    def __init__(self, docker_host=None, timeout=300, tls=False, tls_verify=False, ca_path=None, client_cert=None,
                 client_key=None, api_version="auto", retries=3, retry_delay=1.0, sleep=time.sleep):
        if not HAS_DOCKER:
            raise DockerEngineError("The Docker SDK for Python is required: %s" % DOCKER_IMPORT_ERROR)
        self.docker_host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        self.retries = int(retries)
        self.retry_delay = float(retry_delay)
        self.sleep = sleep
        tls_config = False
        if tls or tls_verify:
            tls_config = docker.tls.TLSConfig(
                client_cert=(client_cert, client_key) if client_cert and client_key else None,
                ca_cert=ca_path, verify=bool(tls_verify))
        try:
            self.api = docker.APIClient(base_url=self.docker_host, version=api_version or "auto",
                                        timeout=int(timeout), tls=tls_config)
        except DockerException as exc:
            raise DockerEngineError("Cannot connect to the Docker engine at %s: %s" % (self.docker_host, exc))

    # ------------------------------------------------------------------ images
    def image(self, reference):
        """The engine's inspect dict of an image, or None."""
        try:
            return self.api.inspect_image(reference)
        except (ImageNotFound, NotFound):
            return None
        except APIError as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise DockerEngineError("Cannot inspect image %s: %s" % (reference, exc))

    def ensure_image(self, reference, pull=False, auth_config=None, progress=None):
        """Return the inspect dict of ``reference``, pulling it when absent (or always with ``pull``)."""
        found = None if pull else self.image(reference)
        if found:
            return found
        registry, repository, tag = split_reference(reference)
        if progress:
            progress("pulling %s" % reference)

        def attempt():
            error = None
            for event in self.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
                if "error" in event or "errorDetail" in event:
                    error = event.get("error") or (event.get("errorDetail") or {}).get("message")
            if error:
                raise (TransientError if is_transient(error) else DockerEngineError)(error)

        self._with_retries(attempt, "pull of %s from %s" % (reference, registry_label(registry)), progress)
        found = self.image(reference)
        if not found:
            raise DockerEngineError("Pull of %s reported success but the image is not in the engine" % reference)
        return found

    def tag(self, image_id, reference):
        repository, tag = parse_reference(reference)
        self.api.tag(image_id, repository, tag=tag or "latest", force=True)

    def untag(self, reference):
        """Remove one tag (never the image layers another tag still uses)."""
        try:
            self.api.remove_image(reference, force=False, noprune=False)
        except (ImageNotFound, NotFound):
            pass
        except APIError:
            pass

    # ------------------------------------------------------------------ build
    def build(self, context_dir, tag, dockerfile="Dockerfile", buildargs=None, labels=None, log_path=None,
              progress=None, label="", pull=False, nocache=False, auth_configs=None):
        """Build ``context_dir`` into ``tag``; return the image id. Streams the log; raises BuildError on failure."""
        log_handle = None
        if log_path:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
            log_handle = open(log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
            log_handle.write("=== build %s (%s) at %s\n" % (tag, context_dir, time.strftime("%Y-%m-%dT%H:%M:%S")))
        stream = BuildStream(log_handle=log_handle, progress=progress, label=label)
        try:
            if auth_configs:
                self.api._auth_configs = {"auths": dict(auth_configs)}  # pylint: disable=protected-access
            try:
                events = self.api.build(path=context_dir, dockerfile=dockerfile, tag=tag, buildargs=buildargs or {},
                                        labels=labels or {}, rm=True, forcerm=True, decode=True, pull=pull,
                                        nocache=nocache)
                for event in events:
                    stream.feed(event)
            except (APIError, DockerException) as exc:
                stream.flush()
                raise BuildError(tag, stream.step, None, stream.step_output, log_path, reason=str(exc))
            stream.flush()
            if stream.error:
                raise BuildError(tag, stream.step, stream.exit_code(), stream.step_output, log_path,
                                 reason=stream.error.strip())
            if not stream.image_id:
                found = self.image(tag)
                if not found:
                    raise BuildError(tag, stream.step, None, stream.step_output, log_path,
                                     reason="the engine reported no image id")
                stream.image_id = found["Id"]
            if log_handle:
                log_handle.write("=== built %s = %s\n" % (tag, stream.image_id))
            return stream.image_id
        finally:
            if log_handle:
                log_handle.close()

    # ------------------------------------------------------------------ registries
    def login(self, registry, username, password):
        """Check credentials with the registry (in memory only). Returns the auth_config dict for push/pull."""
        server = DOCKER_HUB_INDEX if registry in (DOCKER_HUB, "index.docker.io") else registry

        def attempt():
            try:
                self.api.login(username=username, password=password, registry=server, reauth=True)
            except APIError as exc:
                text = str(exc)
                if "401" in text or "unauthorized" in text.lower() or "authentication required" in text.lower():
                    raise LoginRefused("Login to %s as %s was refused: wrong username or password (%s)" % (
                        registry_label(registry), username, _short(text)))
                if is_transient(text):
                    raise TransientError(text)
                raise DockerEngineError("Login to %s failed: %s" % (registry_label(registry), _short(text)))

        self._with_retries(attempt, "login to %s" % registry_label(registry))
        return {"username": username, "password": password, "serveraddress": server}

    def local_digests(self, reference):
        """The ``sha256:`` manifest digests the engine knows for the repository of ``reference``."""
        found = self.image(reference)
        if not found:
            return set()
        registry, repository, _tag = split_reference(reference)
        names = {repository}
        if registry == DOCKER_HUB:
            short = repository[len("docker.io/"):] if repository.startswith("docker.io/") else repository
            names.update({short, "docker.io/" + short})
        digests = set()
        for item in found.get("RepoDigests") or []:
            name, _sep, digest = item.partition("@")
            if name in names:
                digests.add(digest)
        return digests

    def remote_digest(self, reference, auth_config=None):
        """The registry's manifest digest for ``reference`` (None when the tag does not exist there)."""
        try:
            data = self.api.inspect_distribution(reference, auth_config=auth_config)
        except (NotFound, ImageNotFound):
            return None
        except APIError as exc:
            text = str(exc)
            if getattr(exc, "status_code", None) in (401, 403, 404) or "not found" in text.lower() \
                    or "manifest unknown" in text.lower():
                return None
            if is_transient(text):
                raise TransientError(text)
            raise DockerEngineError(_short(text))
        return (data.get("Descriptor") or {}).get("digest")

    def push(self, reference, auth_config=None, progress=None):
        """Push ``reference``; returns {digest, bytes_sent, size}. Retries transient failures, then fails clearly."""
        registry, repository, tag = split_reference(reference)
        result = {}

        def attempt():
            stream = PushStream(progress=progress, label=reference)
            try:
                for event in self.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
                    stream.feed(event)
            except (APIError, DockerException) as exc:
                text = str(exc)
                raise (TransientError if is_transient(text) else DockerEngineError)(_short(text))
            except OSError as exc:  # connection reset while streaming
                raise TransientError(str(exc))
            if stream.error:
                raise (TransientError if is_transient(stream.error) else DockerEngineError)(stream.error)
            if not stream.digest:
                raise DockerEngineError("the push ended without a manifest digest")
            result.update(digest=stream.digest, bytes_sent=stream.bytes_sent, size=stream.size,
                          layers_existing=len(stream.existing))

        what = "push of %s to %s" % (reference, registry_label(registry))
        self._with_retries(attempt, what, progress)
        return result

    def _with_retries(self, func, what, progress=None):
        """Run ``func``; retry transient failures with exponential backoff, a bounded number of times."""
        delays = backoff_delays(self.retries, self.retry_delay)
        attempts = 0
        what_cap = what[0].upper() + what[1:]
        while True:
            attempts += 1
            try:
                return func()
            except LoginRefused:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                text = _short(str(exc))
                transient = isinstance(exc, TransientError) or (
                    not isinstance(exc, DockerEngineError) and is_transient(text))
                if transient and delays:
                    delay = delays.pop(0)
                    if progress:
                        progress("%s: transient failure (%s); retry %d in %.1fs" % (what, text, attempts, delay))
                    self.sleep(delay)
                    continue
                if transient:
                    raise DockerEngineError("%s failed after %d attempt%s: %s" % (
                        what_cap, attempts, "" if attempts == 1 else "s", text))
                raise DockerEngineError("%s failed: %s" % (what_cap, text))

    # ------------------------------------------------------------------ containers (disk builds)
    def create_container(self, image, command, labels=None, binds=None, working_dir="/"):
        """Create a container (not started); returns its id. ``binds``: {host_path: (container_path, mode)}."""
        host_config = self.api.create_host_config(
            binds={host: {"bind": target, "mode": mode} for host, (target, mode) in (binds or {}).items()})
        return self.api.create_container(image, command=command, host_config=host_config, labels=labels or {},
                                         working_dir=working_dir)["Id"]

    def export_container(self, container_id, chunk_size=4 * 1024 * 1024):
        """The container's filesystem as a tar stream (an iterator of byte chunks)."""
        return self.api.export(container_id, chunk_size=chunk_size)

    def run_container(self, container_id, on_line, timeout):
        """Start the container, pass each output line to ``on_line``, wait at most ``timeout`` s; the exit code."""
        self.api.start(container_id)
        buffer = ""
        for chunk in self.api.logs(container_id, stream=True, follow=True):
            buffer += chunk.decode("utf-8", "replace")
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                on_line(line)
        if buffer:
            on_line(buffer)
        return self.api.wait(container_id, timeout=timeout).get("StatusCode", 1)

    def remove_container(self, container_id):
        """Remove a container, running or not; a container already gone is not an error."""
        try:
            self.api.remove_container(container_id, force=True)
        except (APIError, OSError):  # NotFound is an APIError; a lost connection an OSError
            pass


def _short(text, limit=600):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


# Module options shared by every module that talks to the engine (see the edgeforge.artifacts.docker doc fragment).
DOCKER_ARGUMENT_SPEC = dict(
    docker_host=dict(type="str", aliases=["docker_url"]),
    timeout=dict(type="int", default=300),
    tls=dict(type="bool", default=False),
    validate_certs=dict(type="bool", default=False, aliases=["tls_verify"]),
    ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert"]),
    client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
    client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
    api_version=dict(type="str", default="auto"),
    retries=dict(type="int", default=3),
    retry_delay=dict(type="float", default=1.0),
)


def engine_factory(params):
    """A callable returning a new DockerEngine for the module parameters (one per worker thread)."""
    def make():
        return DockerEngine(docker_host=params.get("docker_host"), timeout=params.get("timeout") or 300,
                            tls=params.get("tls"), tls_verify=params.get("validate_certs"),
                            ca_path=params.get("ca_path"), client_cert=params.get("client_cert"),
                            client_key=params.get("client_key"), api_version=params.get("api_version") or "auto",
                            retries=params.get("retries", 3), retry_delay=params.get("retry_delay", 1.0))
    return make
