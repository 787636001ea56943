"""Docker engine client: the pure parts (event parsing, retries, references, docker config)."""

import json
import os
import stat

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils import docker_engine as de


def _build_events(lines, error=None, code=None):
    events = [{"stream": line + "\n"} for line in lines]
    if error:
        detail = {"message": error}
        if code is not None:
            detail["code"] = code
        events.append({"errorDetail": detail, "error": error})
    return events


def test_build_stream_reports_steps_and_keeps_the_failing_steps_output(tmp_path):
    progress = []
    log_path = tmp_path / "build.log"
    with open(log_path, "w", encoding="utf-8") as handle:
        stream = de.BuildStream(log_handle=handle, progress=progress.append, label="img", tail_lines=3)
        for event in _build_events(
                ["Step 1/3 : FROM base", " ---> abc", "Step 2/3 : RUN apt-get install nope",
                 "E: Unable to locate package nope", "line a", "line b", "line c"],
                error="The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100"):
            stream.feed(event)
    assert progress == ["[img] Step 1/3 : FROM base", "[img] Step 2/3 : RUN apt-get install nope"]
    assert stream.step == "step 2/3 (RUN apt-get install nope)"
    assert list(stream.step_output) == ["line a", "line b", "line c"]
    assert stream.exit_code() == 100
    text = log_path.read_text()
    assert "E: Unable to locate package nope" in text and "ERROR: The command" in text


def test_build_stream_joins_partial_lines_and_reads_the_image_id():
    stream = de.BuildStream()
    for event in ({"stream": "Step 1/1 : RUN ec"}, {"stream": "ho hi\nhi\n"},
                  {"aux": {"ID": "sha256:1234"}}):
        stream.feed(event)
    assert stream.step == "step 1/1 (RUN echo hi)"
    assert stream.image_id == "sha256:1234"
    assert stream.error is None


def test_build_error_message_names_step_exit_code_and_output():
    err = de.BuildError("repo:tag", "step 2/3 (RUN false)", 1, ["boom", "bang"], "/b/logs/x.log",
                        reason="returned a non-zero code: 1")
    text = str(err)
    assert "repo:tag" in text and "step 2/3 (RUN false)" in text and "exit code 1" in text
    assert "boom\nbang" in text and "/b/logs/x.log" in text


def test_push_stream_counts_bytes_and_reads_digest():
    stream = de.PushStream()
    events = [
        {"status": "Preparing", "id": "l1"},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 512, "total": 2048}},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 2048, "total": 2048}},
        {"status": "Layer already exists", "id": "l2"},
        {"status": "Pushed", "id": "l1"},
        {"status": "t: digest: sha256:abc size: 10"},
        {"aux": {"Tag": "t", "Digest": "sha256:abc", "Size": 10}},
    ]
    for event in events:
        stream.feed(event)
    assert stream.bytes_sent == 2048
    assert stream.digest == "sha256:abc"
    assert stream.existing == {"l2"}
    assert stream.error is None


def test_push_stream_catches_an_error_event_without_exception():
    stream = de.PushStream()
    stream.feed({"status": "The push refers to repository [127.0.0.1:1/x]"})
    stream.feed({"errorDetail": {"message": "no basic auth credentials"}, "error": "no basic auth credentials"})
    assert stream.error == "no basic auth credentials"
    assert stream.digest is None


@pytest.mark.parametrize("message,expected", [
    ("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", True),
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("received unexpected HTTP status: 503 Service Unavailable", True),
    ("toomanyrequests: You have reached your pull rate limit", True),
    ("unauthorized: authentication required", False),
    ("manifest unknown", False),
    ("", False),
])
def test_transient_classification(message, expected):
    assert de.is_transient(message) is expected


def _engine(retries=2):
    engine = object.__new__(de.DockerEngine)
    engine.retries = retries
    engine.retry_delay = 0.5
    engine.slept = []
    engine.sleep = engine.slept.append
    return engine


def test_retries_transient_failures_then_fails_once_naming_what():
    engine = _engine(retries=2)
    calls = []

    def always_reset():
        calls.append(1)
        raise de.TransientError("connection reset by peer")

    with pytest.raises(de.DockerEngineError) as info:
        engine._with_retries(always_reset, "push of r:t to 127.0.0.1:5000")  # pylint: disable=protected-access
    assert len(calls) == 3
    assert len(engine.slept) == 2  # full jitter: each wait within [0, retry_delay * 2**n]
    assert 0 <= engine.slept[0] <= 0.5 and 0 <= engine.slept[1] <= 1.0
    assert isinstance(info.value.__cause__, de.TransientError)
    assert str(info.value) == ("Push of r:t to 127.0.0.1:5000 failed after 3 attempts: connection reset by peer")


def test_retry_succeeds_after_a_transient_failure_and_permanent_errors_are_not_retried():
    engine = _engine(retries=3)
    outcomes = [de.TransientError("503 Service Unavailable"), "ok"]

    def flaky():
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert engine._with_retries(flaky, "push of x") == "ok"  # pylint: disable=protected-access
    calls = []

    def denied():
        calls.append(1)
        raise de.DockerEngineError("denied: requested access to the resource is denied")

    with pytest.raises(de.DockerEngineError, match="^Push of x failed: denied"):
        engine._with_retries(denied, "push of x")  # pylint: disable=protected-access
    assert len(calls) == 1


@pytest.mark.parametrize("reference,expected", [
    ("ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-demo", ("ttl.sh", "ttl.sh/ubuntu", "k3s-1.27.2-v4.9.21-demo")),
    ("docker.io/me/opensuse-leap:k3s-1.27.2", ("docker.io", "docker.io/me/opensuse-leap", "k3s-1.27.2")),
    ("me/ubuntu", ("docker.io", "me/ubuntu", "latest")),
    ("127.0.0.1:5000/a/b:t", ("127.0.0.1:5000", "127.0.0.1:5000/a/b", "t")),
    ("localhost/x:1", ("localhost", "localhost/x", "1")),
])
def test_split_reference(reference, expected):
    assert de.split_reference(reference) == expected


def test_write_docker_config_merges_and_is_private(tmp_path):
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"other.example": {"auth": "eA=="}}, "credsStore": "x"}))
    assert de.write_docker_config(str(path), "docker.io", "me", "s3cret") is True
    data = json.loads(path.read_text())
    assert data["credsStore"] == "x" and "other.example" in data["auths"]
    assert data["auths"]["https://index.docker.io/v1/"] == {"auth": "bWU6czNjcmV0"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert de.write_docker_config(str(path), "docker.io", "me", "s3cret") is False


def test_a_refused_login_is_not_retried():
    engine = _engine(retries=3)
    calls = []

    def refused():
        calls.append(1)
        raise de.LoginRefused("Login to r as u was refused: wrong username or password")

    with pytest.raises(de.LoginRefused):
        engine._with_retries(refused, "login to r")  # pylint: disable=protected-access
    assert len(calls) == 1 and engine.slept == []


def test_every_name_stays_importable_from_docker_engine():
    # Other modules import these from docker_engine; the engine-free parts now live in the docker package.
    from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker import streams
    for name in de.__all__:
        assert hasattr(de, name), name
    assert de.BuildStream is streams.BuildStream
    assert de.DockerEngine.__module__ == de.__name__
