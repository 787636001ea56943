"""The collection's one SHA-256 helper, inputs digest, secret masker and retry helper."""

import hashlib

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils import common


def test_sha256_of_text_bytes_and_files(tmp_path):
    assert common.sha256_hex("abc") == hashlib.sha256(b"abc").hexdigest()
    assert common.sha256_hex(b"abc") == common.sha256_hex("abc")
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10)
    seen = []
    assert common.sha256_file(str(path), chunk_size=4, progress=seen.append) == hashlib.sha256(b"x" * 10).hexdigest()
    assert seen == [4, 8, 10]


def test_inputs_digest_is_canonical_and_prefixed():
    first = common.inputs_digest({"b": [1, 2], "a": "x"})
    assert first == common.inputs_digest({"a": "x", "b": [1, 2]})
    assert first == "sha256:" + hashlib.sha256(b'{"a":"x","b":[1,2]}').hexdigest()
    assert first != common.inputs_digest({"a": "y", "b": [1, 2]})


def test_mask_secrets_hides_values_and_url_passwords():
    text = "token abcdef123 and http://builder:s3cr%40t@proxy:3128 and no-secret"
    masked = common.mask_secrets(text, ["abcdef123", "ab", None])
    assert masked == "token ******** and http://builder:********@proxy:3128 and no-secret"
    assert common.mask_secrets("", ["x"]) == ""
    assert common.mask_secrets(None) is None
    # the longest secret first: a secret containing another is masked whole
    assert common.mask_secrets("p4ssword-long", ["p4ss", "p4ssword-long"]) == common.MASK


def test_full_jitter_delays_stay_within_the_exponential_cap():
    assert common.full_jitter_delays(4, base=1.0, cap=5.0, rng=lambda: 1.0) == [1.0, 2.0, 4.0, 5.0]
    assert common.full_jitter_delays(3, rng=lambda: 0.0) == [0.0, 0.0, 0.0]
    assert common.full_jitter_delays(0) == []
    assert all(0 <= delay <= 8.0 for delay in common.full_jitter_delays(10, base=1.0, cap=8.0))


def test_retry_call_retries_only_what_is_retryable_and_reports_the_last_cause():
    slept, told = [], []
    outcomes = [OSError("reset"), OSError("reset"), "done"]

    def flaky():
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    result = common.retry_call(flaky, lambda exc: isinstance(exc, OSError), retries=3, base=1.0, sleep=slept.append,
                               on_retry=lambda exc, attempt, delay: told.append(attempt), rng=lambda: 0.5)
    assert result == "done" and slept == [0.5, 1.0] and told == [1, 2]

    with pytest.raises(ValueError):
        common.retry_call(lambda: int("x"), lambda exc: isinstance(exc, OSError), sleep=slept.append)

    def always():
        raise OSError("refused")

    with pytest.raises(common.RetriesExhausted) as info:
        common.retry_call(always, lambda exc: True, retries=2, sleep=lambda _d: None)
    assert info.value.attempts == 3 and isinstance(info.value.cause, OSError)
