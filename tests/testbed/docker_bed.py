"""Session fixtures: the Docker engine, two real registries and the stand-in upstream images.

See tests/testbed/__init__.py for the contract. The start/stop logic lives in tests/testbed/services.py and the
stand-in recipes in tests/testbed/standins/, shared with `python -m tests.testbed up`.

- ``docker_engine``: DockerEngine(base_url, client); dockerd is started if none answers (and left running, like the
  system service it stands in for). When the session ends, the image tags named with the session's unique names
  and registries are removed (tests/testbed/session_names.py; the layers stay cached).
- ``registry``: anonymous docker-registry on 127.0.0.1 (stands in for ttl.sh), storage in a temp dir.
- ``auth_registry``: docker-registry with htpasswd (bcrypt) auth (stands in for Docker Hub); ``.username`` /
  ``.password`` / ``.auth_config``.
- ``standin_images``: StandIns (tests/testbed/standins/__init__.py) published to ``registry``.
"""

from __future__ import annotations

import secrets
import sys

import pytest

from tests.testbed.services import ensure_docker_engine, start_registry
from tests.testbed.session_names import mark_registry, remove_session_tags
from tests.testbed.standins import Builder, StandIns

AUTH_USERNAME = "edgeforge"


def _progress(message):
    sys.stderr.write("[testbed] %s\n" % message)
    sys.stderr.flush()


@pytest.fixture(scope="session")
def docker_engine():
    engine = ensure_docker_engine()
    yield engine
    removed = remove_session_tags(engine.client)
    if removed:
        _progress("removed %d image tags named only for this session" % len(removed))
    if engine._client is not None:  # pylint: disable=protected-access
        engine.client.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    reg = start_registry(str(tmp_path_factory.mktemp("registry-anon")))
    mark_registry(reg.host)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    # A fresh random password each session, so a leak check can grep for it.
    reg = start_registry(str(tmp_path_factory.mktemp("registry-auth")), username=AUTH_USERNAME,
                         password="edgeforge-" + secrets.token_hex(12))
    mark_registry(reg.host)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def standin_images(docker_engine, registry):  # pylint: disable=redefined-outer-name
    builder = Builder(docker_engine.client, progress=_progress)
    return StandIns(builder, registry).publish_all()
