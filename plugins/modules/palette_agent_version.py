#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: palette_agent_version
short_description: Ask a Palette instance which Edge agent version to build for
version_added: "0.1.0"
description:
  - Calls C(GET /v1/services/stylus/version) on a Palette endpoint with an API key and returns the Edge agent
    version and the matching C(vX.Y.Z) tag - the documentation's C(curl | jq) step for self-hosted Palette
    instances, whose agent version decides the CanvOS version (and so the O(edgeforge.artifacts.build_config#module:pe_version)) to build with.
  - Fails with a clear message when the API key is refused, when the endpoint cannot be reached (the message names
    the endpoint) and when the answer is not what Palette sends (with a short excerpt). The API key never appears
    in any message.
  - Read-only, so it also runs in check mode.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.attributes
  - edgeforge.artifacts.attributes.info_module
options:
  endpoint:
    description:
      - The Palette endpoint, as a host (C(api.spectrocloud.com), C(palette.example.com:8443)) - HTTPS is used -
        or as a URL (C(https://palette.example.com)).
      - If not set, the environment variable E(PALETTE_ENDPOINT) is used.
    type: str
    required: true
  api_key:
    description:
      - A Palette API key, sent in the C(Apikey) header.
      - If not set, the environment variable E(PALETTE_API_KEY) is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate. Set to V(false) only for a self-hosted Palette with a self-signed
        certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the connection and for the answer.
    type: int
    default: 30
seealso:
  - module: edgeforge.artifacts.build_config
"""

EXAMPLES = r"""
- name: Find the agent version of a self-hosted Palette
  edgeforge.artifacts.palette_agent_version:
    endpoint: palette.example.com
    api_key: "{{ vault_palette_api_key }}"
  register: palette_agent

- name: Build for that version
  ansible.builtin.set_fact:
    pe_version: "{{ palette_agent.tag }}"
"""

RETURN = r"""
version:
  description: The Edge agent version of the Palette instance.
  returned: success
  type: str
  sample: "4.5.15"
tag:
  description: The matching CanvOS tag and C(pe_version) value.
  returned: success
  type: str
  sample: v4.5.15
url:
  description: The URL that was asked.
  returned: success
  type: str
  sample: https://palette.example.com/v1/services/stylus/version
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule
from ansible_collections.edgeforge.artifacts.plugins.module_utils.palette_api import get_agent_version


def run(module):
    params = module.params
    answer = get_agent_version(params["endpoint"], params["api_key"], validate_certs=params["validate_certs"],
                               timeout=params["timeout"])
    return dict(changed=False, **answer)


def main():
    module = EdgeforgeModule(argument_spec=dict(
        endpoint=dict(type="str", required=True, fallback=(env_fallback, ["PALETTE_ENDPOINT"])),
        api_key=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["PALETTE_API_KEY"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    ))
    module.run(run)


if __name__ == "__main__":
    main()
