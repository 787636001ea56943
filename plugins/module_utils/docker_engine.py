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
- Transient failures (connection reset/refused, HTTP 5xx, 429) are retried with the collection's full-jitter backoff
  (``common.retry_call``), a bounded number of times, then reported once with the registry, the image and the reason.

Plain Python (no Ansible import). The parts that need no engine (references, event streams, errors, the Docker
config file) live in the ``docker`` package beside this module and are unit-tested without one; every name stays
importable from here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import RetriesExhausted, retry_call
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.config_file import (
    docker_config_entry, write_docker_config)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.errors import (
    BuildError, DockerEngineError, LoginRefused, TransientError, is_transient, short_text as _short)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.references import (
    DOCKER_HUB, DOCKER_HUB_INDEX, parse_reference, registry_label, split_reference)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker.streams import (
    TAIL_LINES, BuildStream, PushStream)

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


# Every name other files import from here, wherever it is defined now.
__all__ = [
    "DEFAULT_DOCKER_HOST", "DOCKER_ARGUMENT_SPEC", "DOCKER_HUB", "DOCKER_HUB_INDEX", "DOCKER_IMPORT_ERROR",
    "HAS_DOCKER", "TAIL_LINES", "BuildError", "BuildStream", "DockerEngine", "DockerEngineError", "LoginRefused",
    "PushStream", "TransientError", "docker_config_entry", "engine_factory", "is_transient", "parse_reference",
    "registry_label", "split_reference", "write_docker_config",
]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
MAX_RETRY_DELAY = 30.0


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
        """Run ``func``; retry transient failures (full-jitter backoff), a bounded number of times."""
        what_cap = what[0].upper() + what[1:]

        def retryable(exc):
            if isinstance(exc, TransientError):
                return True
            return not isinstance(exc, DockerEngineError) and is_transient(str(exc))

        def on_retry(exc, attempt, delay):
            if progress:
                progress("%s: transient failure (%s); retry %d in %.1fs" % (what, _short(str(exc)), attempt, delay))

        try:
            return retry_call(func, retryable, self.retries, self.retry_delay, MAX_RETRY_DELAY, self.sleep, on_retry)
        except LoginRefused:
            raise
        except RetriesExhausted as exc:
            raise DockerEngineError("%s failed after %d attempt%s: %s" % (
                what_cap, exc.attempts, "" if exc.attempts == 1 else "s", _short(str(exc.cause)))) from exc.cause
        except Exception as exc:  # pylint: disable=broad-except  # reported once, naming what failed
            raise DockerEngineError("%s failed: %s" % (what_cap, _short(str(exc)))) from exc

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
