#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: iso_image
short_description: Put the installer ISO into a container image, to push it to a registry
version_added: 0.1.0
description:
  - Builds, in the Docker engine, the image CanvOS's C(+iso-disk-image) target makes - C(FROM scratch) holding only
    C(/disk/<ISO_NAME>.iso) - tagged O(reference), CanvOS's C(<IMAGE_REGISTRY>/<IMAGE_REPO>/<ISO_NAME>:<IMAGE_TAG>).
    Push it with M(edgeforge.artifacts.image_push); a registry then keeps the ISO when the build directory does not
    last (an AWX job's).
  - Built under a temporary tag and tagged O(reference) when complete. The image carries the ISO's SHA-256 as the
    label C(org.edgeforge.artifacts.iso.sha256); when the engine's image of O(reference) has the same one, nothing is
    built (changed=false).
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.docker
  - edgeforge.artifacts.attributes
options:
  iso_path:
    description:
      - The ISO (the M(edgeforge.artifacts.installer_iso) module's C(iso_path)); its file name is kept under C(/disk/).
    type: path
    required: true
  iso_sha256:
    description:
      - The ISO's SHA-256 when already known (the installer_iso module's C(sha256)); computed otherwise.
    type: str
  reference:
    description:
      - The image reference, with a tag.
    type: str
    required: true
  build_log:
    description:
      - File the build log is appended to. Default - none.
    type: path
seealso:
  - module: edgeforge.artifacts.installer_iso
  - module: edgeforge.artifacts.image_push
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the image would be built; builds nothing.
      - When the ISO is missing - an earlier step of the same check-mode run would have built it - the image is
        reported as to be built, with a warning, instead of failing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Put the ISO into an image
  edgeforge.artifacts.iso_image:
    iso_path: "{{ installer_iso_result.iso_path }}"
    iso_sha256: "{{ installer_iso_result.sha256 }}"
    reference: registry.example.com/ubuntu/palette-edge-installer:v4.9.21-demo
  register: iso_image

- name: Push it
  edgeforge.artifacts.image_push:
    references: ["{{ iso_image.reference }}"]
"""

RETURN = r"""
reference:
  description: The image reference.
  returned: always
  type: str
  sample: registry.example.com/ubuntu/palette-edge-installer:v4.9.21-demo
image_id:
  description: The image id in the engine.
  returned: unless check mode found the image to be built
  type: str
  sample: sha256:0c4e6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6
iso_sha256:
  description: SHA-256 of the ISO the image holds.
  returned: always (null in check mode when the ISO is not built yet)
  type: str
  sample: 9b1c3d5e7f9a1b3c5d7e9f1a4f8e0f2b1c9d5a7e3b6c0d2e4f6a8b0c1d3e5f7a
path_in_image:
  description: Where the ISO is in the image.
  returned: always
  type: str
  sample: /disk/palette-edge-installer.iso
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import iso_image
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, DOCKER_IMPORT_ERROR, HAS_DOCKER, engine_factory)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def run(module):
    params = module.params
    result = dict(reference=params["reference"], path_in_image="/disk/" + os.path.basename(params["iso_path"]))
    if module.check_mode and not os.path.exists(params["iso_path"]):
        # the ISO step of the same check-mode run built nothing: the image would be built from what it would build
        module.warn("check mode: %s does not exist - the image is reported as to be built" % params["iso_path"])
        return dict(result, changed=True, iso_sha256=None)
    digest = iso_image.check_inputs(params["iso_path"], params["reference"], params["iso_sha256"])
    result["iso_sha256"] = digest
    engine = engine_factory(params)()
    current = iso_image.up_to_date(engine, params["reference"], digest)
    if current:
        return dict(result, changed=False, image_id=current["Id"])
    if module.check_mode:
        return dict(result, changed=True)
    image_id = iso_image.build(engine, params["iso_path"], params["reference"], digest,
                               log_path=params["build_log"], progress=module.log)
    return dict(result, changed=True, image_id=image_id)


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            iso_path=dict(type="path", required=True),
            iso_sha256=dict(type="str"),
            reference=dict(type="str", required=True),
            build_log=dict(type="path"),
        ),
        shared_specs=[DOCKER_ARGUMENT_SPEC],
        required_libraries=[("docker", HAS_DOCKER, DOCKER_IMPORT_ERROR)],
    )
    module.run(run)


if __name__ == "__main__":
    main()
