#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_push
short_description: Push provider images to a registry (ttl.sh, Docker Hub or any registry), only when needed
version_added: 0.1.0
description:
  - Pushes images from the Docker engine to their registries, anonymously (for example V(ttl.sh)) or with
    credentials (Docker Hub or any registry).
  - Credentials are checked with the registry first and kept in memory; C(~/.docker/config.json) is written only
    with O(write_docker_config=true).
  - Before pushing, asks the registry for the tag's manifest digest; when it equals the digest the engine recorded
    for the local image, the push is skipped (status V(skipped)), so a re-run uploads nothing.
  - Transient failures (connection reset or refused, HTTP 5xx, HTTP 429) are retried with exponential backoff and
    full jitter (each wait is random, up to O(retry_delay) doubled at each retry), a bounded number of times
    (O(retries)); then the task fails once, naming the registry, the image and the reason.
  - Warns that images pushed to V(ttl.sh) expire after 24 hours.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.docker
  - edgeforge.artifacts.attributes
options:
  references:
    description:
      - Full image references to push (for example C(build_config_plan.provider_images)).
    type: list
    elements: str
    required: true
  registry:
    description:
      - The registry the credentials are for, for example V(docker.io) or V(registry.example.com:5000).
      - When not set, the registry of the first reference.
    type: str
  username:
    description:
      - Registry user name. When not set, the push is anonymous (or uses the engine host's Docker configuration).
    type: str
    aliases: [registry_username]
  password:
    description:
      - Registry password or access token. Never logged.
    type: str
    aliases: [registry_password]
  write_docker_config:
    description:
      - Also store the credentials in O(docker_config_path) (as C(docker login) does), for later manual pushes.
    type: bool
    default: false
  docker_config_path:
    description:
      - The Docker client configuration file written with O(write_docker_config=true) (mode 0600).
    type: path
    default: ~/.docker/config.json
  force:
    description:
      - Push even when the registry already has the same manifest digest.
    type: bool
    default: false
seealso:
  - module: edgeforge.artifacts.provider_image
attributes:
  check_mode:
    support: full
    details: Checks credentials and compares digests, reports V(would_push) or V(skipped), pushes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Push to ttl.sh (anonymous, images expire after 24 hours)
  edgeforge.artifacts.image_push:
    references: "{{ build_config_plan.provider_images }}"

- name: Push to Docker Hub with a token kept in a vault
  edgeforge.artifacts.image_push:
    references: "{{ build_config_plan.provider_images }}"
    registry: docker.io
    username: myuser
    password: "{{ vault_docker_hub_token }}"
"""

RETURN = r"""
images:
  description: One entry per reference.
  returned: always
  type: list
  elements: dict
  contains:
    reference:
      description: The image reference.
      type: str
      sample: ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-palette-learn
    digest:
      description: The manifest digest in the registry (null in check mode for an image that would be pushed).
      type: str
      sample: sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270
    bytes_sent:
      description: Layer bytes uploaded (0 when every layer was already there or the push was skipped).
      type: int
      sample: 4110000000
    status:
      description: V(pushed), V(skipped) (the registry already had this digest) or V(would_push) (check mode).
      type: str
      sample: pushed
    seconds:
      description: Time spent on this image.
      type: float
      sample: 81.3
    registry:
      description: The registry of the reference.
      type: str
      sample: ttl.sh
bytes_sent:
  description: Total layer bytes uploaded.
  returned: always
  type: int
  sample: 4110000000
docker_config_written:
  description: Whether O(docker_config_path) was changed.
  returned: always
  type: bool
  sample: false
"""

import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, DOCKER_IMPORT_ERROR, HAS_DOCKER, DockerEngineError, engine_factory, registry_label,
    split_reference, write_docker_config)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule

TTL_SH_WARNING = ("Images pushed to ttl.sh expire after 24 hours (the default time limit): use them in a cluster "
                  "profile within 24 hours, or push to a lasting registry such as Docker Hub.")


def absent_images(module, engine, references):
    """The references not in the engine: an error, except in check mode (the build step did not build them)."""
    absent = set()
    for ref in references:
        if not engine.image(ref):
            if not module.check_mode:
                raise EdgeforgeError("Image %s is not in the Docker engine at %s: build it first (provider_image)"
                                     % (ref, engine.docker_host))
            absent.add(ref)
    return absent


def login(module, engine, registry):
    """(auth_config or None, whether the Docker config file changed)."""
    params = module.params
    if not params["username"]:
        return None, False
    if params["password"] is None:
        raise EdgeforgeError("password: required when username is set (registry %s)" % registry_label(registry))
    auth = engine.login(registry, params["username"], params["password"])
    written = False
    if params["write_docker_config"] and not module.check_mode:
        written = write_docker_config(params["docker_config_path"], registry, params["username"], params["password"])
    return auth, written


def push_one(module, engine, ref, reg, auth):
    """Push one reference unless the registry already holds the engine's manifest; returns its result item."""
    started = time.monotonic()
    item = {"reference": ref, "registry": reg, "digest": None, "bytes_sent": 0}
    remote = None
    if not module.params["force"]:
        try:
            remote = engine.remote_digest(ref, auth_config=auth)
        except DockerEngineError:
            remote = None  # unknown: the push decides (and retries)
    if remote and remote in engine.local_digests(ref):
        item.update(status="skipped", digest=remote)
    elif module.check_mode:
        item.update(status="would_push")
    else:
        pushed = engine.push(ref, auth_config=auth, progress=module.log)
        item.update(status="pushed", digest=pushed["digest"], bytes_sent=pushed["bytes_sent"])
    item["seconds"] = round(time.monotonic() - started, 2)
    return item


def run(module):
    params = module.params
    engine = engine_factory(params)()
    references = params["references"]
    registries = [split_reference(ref)[0] for ref in references]
    registry = params["registry"] or (registries[0] if registries else None)
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    absent = absent_images(module, engine, references)
    warnings = [TTL_SH_WARNING] if "ttl.sh" in registries else []
    auth, config_written = login(module, engine, registry)
    results = []
    for ref, reg in zip(references, registries):
        if ref in absent:
            results.append({"reference": ref, "registry": reg, "digest": None, "bytes_sent": 0,
                            "status": "would_push", "seconds": 0.0})
        else:
            results.append(push_one(module, engine, ref, reg, auth if reg == registry else None))
    changed = any(item["status"] in ("pushed", "would_push") for item in results) or config_written
    return dict(changed=changed, images=results, bytes_sent=sum(item["bytes_sent"] for item in results),
                docker_config_written=config_written, warnings=warnings)


def main():
    argument_spec = dict(
        references=dict(type="list", elements="str", required=True),
        registry=dict(type="str"),
        username=dict(type="str", aliases=["registry_username"]),
        password=dict(type="str", no_log=True, aliases=["registry_password"]),
        write_docker_config=dict(type="bool", default=False),
        docker_config_path=dict(type="path", default="~/.docker/config.json"),
        force=dict(type="bool", default=False),
    )
    module = EdgeforgeModule(argument_spec=argument_spec, shared_specs=[DOCKER_ARGUMENT_SPEC],
                             required_libraries=[("docker", HAS_DOCKER, DOCKER_IMPORT_ERROR)])
    module.run(run)


if __name__ == "__main__":
    main()
