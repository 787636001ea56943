#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: byoos_manifest
short_description: Write the BYOOS (edge-native-byoi) pack manifest for the provider images
version_added: 0.1.0
description:
  - Writes the manifest CanvOS prints after a provider build ("paste the content below into your cluster profile")
    to a file, with exactly the guide's structure, C(pack.content.images), the commented drain defaults, the
    C(options.system.uri) template and the C(system.*) values; and returns it.
  - C(system.peVersion) is the PE_VERSION that went into the image tags, and C(system.uri) appends C(-customTag)
    only when the tags have one, so the template always resolves to the pushed tags.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.attributes
options:
  config:
    description:
      - The normalised build configuration, C(build_config_plan.config).
    type: dict
    required: true
  images:
    description:
      - The pushed provider image references, listed as a comment under the manifest and checked against
        C(system.uri); each must be what the template gives for its Kubernetes version.
    type: list
    elements: str
    default: []
  dest:
    description:
      - Where to write the manifest.
    type: path
    default: build/byoos-pack.yaml
attributes:
  check_mode:
    support: full
    details: In check mode O(dest) is not written; the result tells whether it would change.
  diff_mode:
    support: full
    details: The diff of O(dest) when it changes.
"""

EXAMPLES = r"""
- name: Write the pack manifest next to the other artifacts
  edgeforge.artifacts.byoos_manifest:
    config: "{{ build_config_plan.config }}"
    images: "{{ build_config_plan.provider_images }}"
    dest: build/byoos-pack.yaml
  register: pack

- name: Show it
  ansible.builtin.debug:
    msg: "{{ pack.content }}"
"""

RETURN = r"""
path:
  description: Absolute path of the manifest file.
  returned: always
  type: str
  sample: /home/me/edge/build/byoos-pack.yaml
content:
  description: The manifest text.
  returned: always
  type: str
  sample: "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.edge-native-byoi.options.system.uri}}\"\n..."
values:
  description: The C(options) values of the manifest.
  returned: always
  type: dict
  sample:
    system.registry: ttl.sh
    system.repo: ubuntu
    system.k8sDistribution: k3s
    system.osName: ubuntu
    system.peVersion: v4.9.21
    system.customTag: palette-learn
    system.osVersion: "22.04"
uris:
  description: What C(system.uri) resolves to for each Kubernetes version of the configuration.
  returned: always
  type: dict
  sample:
    1.27.2: ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-palette-learn
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.manifest import expand_uri, manifest_values, render
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule

REQUIRED_CONFIG = ("image_registry", "image_repo", "k8s_distribution", "os_distribution", "pe_version", "os_version")


def run(module):
    config = module.params["config"]
    dest = os.path.abspath(module.params["dest"])
    missing = [key for key in REQUIRED_CONFIG if not config.get(key)]
    if missing:
        raise EdgeforgeError("config: missing %s; pass build_config_plan.config" % ", ".join(missing))
    values = manifest_values(config)
    uris = {version: expand_uri(values, version) for version in config.get("k8s_versions") or []}
    expected = set(uris.values())
    strays = [image for image in module.params["images"] if image not in expected and uris]
    if strays:
        raise EdgeforgeError("images %s do not match the manifest's system.uri for any Kubernetes version of the "
                             "configuration (%s)" % (", ".join(strays), ", ".join(sorted(expected))))
    content = render(values, module.params["images"])
    # Only the content counts: an existing file keeps the mode its owner gave it.
    mode = os.stat(dest).st_mode & 0o7777 if os.path.isfile(dest) else 0o644
    written = module.write_file(dest, content, mode)
    result = dict(changed=written["changed"], path=dest, content=content, values=values, uris=uris)
    if "diff" in written:
        result["diff"] = written["diff"]
    return result


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            images=dict(type="list", elements="str", default=[]),
            dest=dict(type="path", default="build/byoos-pack.yaml"),
        ),
    )
    module.run(run)


if __name__ == "__main__":
    main()
