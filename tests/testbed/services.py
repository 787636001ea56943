"""Start and stop the test bed's real services: the Docker engine and two `docker-registry` processes.

One implementation, used by the pytest fixtures (tests/testbed/docker_bed.py) and by
`python -m tests.testbed up|down` (tests/testbed/__main__.py). Nothing here fakes a service: dockerd is Debian's
docker.io, the registries are Debian's docker-registry (distribution 2.8) serving on loopback ports.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
STATE_DIR = os.environ.get("EDGEFORGE_TESTBED_DIR", "/var/tmp/edgeforge-testbed")
REGISTRY_BIN = os.environ.get("EDGEFORGE_REGISTRY_BIN", "/usr/bin/docker-registry")


class TestbedError(RuntimeError):
    """A service of the test bed could not be started or used."""

    __test__ = False  # not a pytest test class despite the name


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path, lines=20):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log at %s)" % path


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); look at its state.
    try:
        with open("/proc/%d/stat" % pid, "r", encoding="utf-8") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, timeout=15):
    """SIGTERM one process (by id, never by name), then SIGKILL if it lingers. Returns True if it was running."""
    if not pid or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


# --------------------------------------------------------------------------------------------------- Docker engine
class DockerEngine:
    """The local Docker engine (Debian's docker.io). `client` is a docker.DockerClient on `base_url`."""

    def __init__(self, base_url=DEFAULT_DOCKER_URL, started_pid=None):
        self.base_url = base_url
        self.started_pid = started_pid  # set when the test bed started dockerd itself
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import docker  # pylint: disable=import-outside-toplevel

            self._client = docker.DockerClient(base_url=self.base_url, timeout=600)
        return self._client

    def __repr__(self):
        return "DockerEngine(base_url=%r)" % self.base_url


def docker_answers(base_url=DEFAULT_DOCKER_URL):
    import docker  # pylint: disable=import-outside-toplevel

    try:
        client = docker.DockerClient(base_url=base_url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # pylint: disable=broad-except  # any failure means "does not answer"
        return False


def ensure_docker_engine(state_dir=STATE_DIR, timeout=90):
    """Return a DockerEngine, starting `dockerd` in the background if none answers (bounded wait).

    A dockerd started here keeps running after the tests (like the system service it stands in for); its log is
    `<state_dir>/dockerd.log` and its pid `<state_dir>/dockerd.pid`.
    """
    base_url = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL
    if docker_answers(base_url):
        return DockerEngine(base_url)
    if base_url != DEFAULT_DOCKER_URL:
        raise TestbedError("DOCKER_HOST=%s does not answer; start that engine or unset DOCKER_HOST" % base_url)
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.path.exists(dockerd):
        raise TestbedError("no Docker engine answers at %s and dockerd is not installed: run scripts/install-deps.sh"
                           % base_url)
    if os.geteuid() != 0:
        raise TestbedError("no Docker engine answers at %s; start it (sudo systemctl start docker, or sudo dockerd &)"
                           % base_url)
    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(state_dir, "dockerd.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [dockerd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(state_dir, "dockerd.pid"), "w", encoding="utf-8") as handle:
        handle.write("%d\n" % proc.pid)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise TestbedError("dockerd exited with %s; log %s:\n%s" % (proc.returncode, log_path, _log_tail(log_path)))
        if docker_answers(base_url):
            return DockerEngine(base_url, started_pid=proc.pid)
        time.sleep(0.5)
    raise TestbedError("dockerd did not answer within %ds; log %s:\n%s" % (timeout, log_path, _log_tail(log_path)))


# ------------------------------------------------------------------------------------------------------ registries
def bcrypt_htpasswd_line(username, password):
    """An htpasswd line with a bcrypt hash (the only scheme docker-registry accepts)."""
    try:
        import bcrypt  # pylint: disable=import-outside-toplevel

        hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=10)).decode("ascii")
        return "%s:%s\n" % (username, hashed)
    except ImportError:
        out = subprocess.run(["htpasswd", "-nbB", username, password], check=True, capture_output=True, text=True)
        return out.stdout.strip() + "\n"


class Registry:
    """A docker-registry process. `host` is what image references use (127.0.0.1:PORT)."""

    def __init__(self, host, storage, config_path, log_path, pid, username=None, password=None, process=None):
        self.host = host
        self.storage = storage
        self.config_path = config_path
        self.log_path = log_path
        self.pid = pid
        self.username = username
        self.password = password
        self._process = process

    @property
    def url(self):
        return "http://%s" % self.host

    @property
    def auth_config(self):
        """Credentials as the Docker SDK's push/pull take them (None for the anonymous registry)."""
        if self.username is None:
            return None
        return {"username": self.username, "password": self.password}

    def api(self, path, method="GET", auth=None, timeout=10):
        """Ask the registry's HTTP API: returns (status, headers, parsed JSON or raw bytes).

        ``auth`` = (user, password) for HTTP basic auth; default: this registry's own credentials.
        Pass ``auth=False`` to ask anonymously.
        """
        import base64  # pylint: disable=import-outside-toplevel

        request = urllib.request.Request(self.url + path, method=method)
        creds = (self.username, self.password) if auth is None and self.username else auth
        if creds:
            token = base64.b64encode(("%s:%s" % creds).encode("utf-8")).decode("ascii")
            request.add_header("Authorization", "Basic " + token)
        request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec - loopback test service
                status, headers, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            status, headers, body = err.code, dict(err.headers), err.read()
        try:
            return status, headers, json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            return status, headers, body

    def tags(self, name):
        """Tags of repository ``name`` (empty list if unknown)."""
        status, _headers, body = self.api("/v2/%s/tags/list" % name)
        if status == 404:
            return []
        if status != 200:
            raise TestbedError("registry %s: tags of %s answered %s: %r" % (self.host, name, status, body))
        return sorted((body or {}).get("tags") or [])

    def stop(self):
        stopped = stop_pid(self.pid)
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return stopped

    def __repr__(self):
        return "Registry(host=%r, username=%r, password=%s)" % (
            self.host, self.username, "'***'" if self.password else None)


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {host}
  secret: {secret}
  headers:
    X-Content-Type-Options: [nosniff]
{auth}"""

AUTH_SECTION = """\
auth:
  htpasswd:
    realm: edgeforge-testbed
    path: {htpasswd}
"""


def start_registry(workdir, *, username=None, password=None, port=None, timeout=30):
    """Start docker-registry on 127.0.0.1 with its storage, config and log under ``workdir``.

    With ``username``/``password`` the registry requires HTTP basic auth (htpasswd, bcrypt), like Docker Hub;
    without, it is anonymous, like ttl.sh. The process runs in its own session, so it outlives its starter when
    started by `python -m tests.testbed up`; `Registry.stop()` ends it.
    """
    if not os.path.exists(REGISTRY_BIN):
        raise TestbedError("%s is missing: run scripts/install-deps.sh (Debian package docker-registry)"
                           % REGISTRY_BIN)
    os.makedirs(workdir, exist_ok=True)
    storage = os.path.join(workdir, "storage")
    os.makedirs(storage, exist_ok=True)
    host = "127.0.0.1:%d" % (port or free_port())
    auth = ""
    if username is not None:
        htpasswd = os.path.join(workdir, "htpasswd")
        fd = os.open(htpasswd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(bcrypt_htpasswd_line(username, password))
        auth = AUTH_SECTION.format(htpasswd=htpasswd)
    config_path = os.path.join(workdir, "config.yml")
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(REGISTRY_CONFIG.format(storage=storage, host=host, secret=secrets.token_hex(16), auth=auth))
    log_path = os.path.join(workdir, "registry.log")
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [REGISTRY_BIN, "serve", config_path], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env)
    with open(os.path.join(workdir, "registry.pid"), "w", encoding="utf-8") as handle:
        handle.write("%d\n" % proc.pid)
    registry = Registry(host, storage, config_path, log_path, proc.pid, username, password, process=proc)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise TestbedError("docker-registry exited with %s; log %s:\n%s"
                               % (proc.returncode, log_path, _log_tail(log_path)))
        try:
            status = registry.api("/v2/", auth=False, timeout=2)[0]
            if status in (200, 401):
                return registry
        except OSError:
            pass
        time.sleep(0.2)
    registry.stop()
    raise TestbedError("docker-registry on %s did not answer within %ds; log %s:\n%s"
                       % (host, timeout, log_path, _log_tail(log_path)))


def push_image(client, reference, auth_config=None, progress=None):
    """Push ``reference`` with the Docker SDK, scanning every event: a failed push does not raise by itself.

    Returns the pushed digest. Raises TestbedError with the registry's message.
    """
    repository, tag = split_reference(reference)
    digest = None
    for event in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail", {}).get("message") or event.get("error")
            raise TestbedError("push of %s failed: %s" % (reference, detail))
        aux = event.get("aux")
        if aux and aux.get("Digest"):
            digest = aux["Digest"]
        if progress and event.get("status") and not event.get("progressDetail"):
            progress("%s: %s %s" % (reference, event.get("id", ""), event["status"]))
    if not digest:
        raise TestbedError("push of %s ended without a digest" % reference)
    return digest


def split_reference(reference):
    """'host:port/a/b:tag' -> ('host:port/a/b', 'tag'); the tag defaults to 'latest'."""
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, "latest"
    return name, tag


# ------------------------------------------------------------------------------------- a second engine (fleets)
class ExtraDockerEngine(DockerEngine):
    """A second `dockerd` on this machine, standing in for the engine of another build host of a fleet.

    It has its own data root, exec root (and so its own containerd), socket, pid file and bridge: started with
    `--bridge=none` a second engine removes the first one's docker0, so it gets a bridge of its own, without
    iptables or masquerading (builds here need no outside network). `stop()` ends it and removes its bridge and
    its data.
    """

    def __init__(self, base_url, started_pid, workdir, exec_root, bridge, log_path):
        super().__init__(base_url, started_pid=started_pid)
        self.workdir = workdir
        self.exec_root = exec_root
        self.bridge = bridge
        self.log_path = log_path

    def stop(self):
        if self._client is not None:
            self._client.close()
            self._client = None
        stop_pid(self.started_pid, timeout=60)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_subnet():
    """A 10.213.N.0/24 that no interface of this machine uses (for the extra engine's bridge)."""
    used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for third in range(1, 255):
        candidate = "10.213.%d." % third
        if candidate not in used:
            return candidate
    raise TestbedError("no free 10.213.N.0/24 subnet for a second Docker engine's bridge")


def start_extra_docker_engine(workdir, timeout=90):
    """Start a second dockerd (see ExtraDockerEngine) with its state under ``workdir``; needs root."""
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if os.geteuid() != 0 or not os.path.exists(dockerd):
        raise TestbedError("a second Docker engine needs root and dockerd (scripts/install-deps.sh)")
    name = "ef%s" % secrets.token_hex(4)  # bridge names have at most 15 characters
    # The exec root holds containerd's sockets, whose paths must stay short (108 bytes): not under workdir.
    exec_root = "/run/edgeforge-%s" % name
    socket_path = os.path.join(exec_root, "docker.sock")
    subnet = _free_subnet()
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", subnet + "1/24", "dev", name], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
    os.makedirs(workdir, exist_ok=True)
    os.makedirs(exec_root, exist_ok=True)
    log_path = os.path.join(workdir, "dockerd.log")
    args = [dockerd, "--data-root", os.path.join(workdir, "data"), "--exec-root", exec_root,
            "--host", "unix://" + socket_path, "--pidfile", os.path.join(exec_root, "dockerd.pid"),
            "--bridge", name, "--iptables=false", "--ip-masq=false", "--cgroup-parent", "/" + name]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    engine = ExtraDockerEngine("unix://" + socket_path, proc.pid, workdir, exec_root, name, log_path)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            engine.stop()
            raise TestbedError("second dockerd exited with %s; log %s:\n%s"
                               % (proc.returncode, log_path, _log_tail(log_path)))
        if docker_answers(engine.base_url):
            return engine
        time.sleep(0.5)
    engine.stop()
    raise TestbedError("second dockerd did not answer within %ds; log %s:\n%s"
                       % (timeout, log_path, _log_tail(log_path)))
