#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: user_data
short_description: Render and validate the Palette Edge installer user data
version_added: "0.1.0"
description:
  - Writes the C(user-data) file the Edge installer ISO embeds (the CanvOS C(user-data) file), from structured
    options, from a user-supplied document (O(src) or O(content)), or both, structured options merged over the document.
  - Validates the result offline against the documented fields, like CanvOS C(+validate-user-data)
    (C(palette-edge-cli validate)) does - the C(#cloud-config) header, YAML syntax, field types and required
    combinations - and fails with one message per bad field before anything is written.
  - A registration token without C(projectName) or C(projectUid) gives a warning, as the documentation does
    (the token must then have a default project). C(projectName) together with C(projectUid), or C(install.poweroff)
    together with C(install.reboot), is an error.
  - The file is written atomically with mode O(mode) (V(0600) by default, it holds the registration token).
    C(changed) is true only when the content or the mode differs.
  - The diff, the returned preview and every message show the registration token and all passwords as C(********).
  - With O(validate_only=true) nothing is written; use it with O(src) to check an existing file.
author:
  - edgeforge.artifacts contributors (@edgeforge)
requirements:
  - PyYAML
extends_documentation_fragment:
  - edgeforge.artifacts.attributes
attributes:
  check_mode:
    support: full
    details: In check mode O(dest) is not written; the result tells whether it would change.
  diff_mode:
    support: full
    details: The diff of O(dest), with the registration token and every password shown as C(********).
options:
  dest:
    description:
      - Where to write the user data, for example C(build/user-data). Required unless O(validate_only=true).
    type: path
  src:
    description:
      - A user-supplied user-data file used as the base document. It must start with C(#cloud-config).
      - Structured options are merged over it (mappings merge, lists are replaced, C(stages) steps merge by C(name)).
    type: path
  content:
    description:
      - The base document as text, instead of O(src). Treated as secret (it usually holds the token).
    type: str
  validate_only:
    description:
      - Only validate the resulting document (the base document with the structured options over it); write nothing.
    type: bool
    default: false
  mode:
    description:
      - File mode of O(dest), as an octal string.
    type: str
    default: "0600"
  edge_host_token:
    description:
      - The tenant registration token (C(stylus.site.edgeHostToken)) that lets Edge hosts register themselves.
    type: str
  palette_endpoint:
    description:
      - The Palette API host (C(stylus.site.paletteEndpoint)), without a scheme, for example C(api.spectrocloud.com).
    type: str
  project_name:
    description:
      - The Palette project the host registers in (C(stylus.site.projectName)), for example C(Default).
      - Needed when the registration token has no default project. Mutually exclusive with O(project_uid).
    type: str
  project_uid:
    description:
      - The Palette project ID (C(stylus.site.projectUid)). Mutually exclusive with O(project_name).
    type: str
  tags:
    description:
      - Edge host tags (C(stylus.site.tags)), a mapping of string keys to string values.
    type: dict
  name:
    description:
      - The Edge host ID (C(stylus.site.name)). Default on the host is C(edge-<serial>).
    type: str
  registration_url:
    description:
      - The registration application URL shown as a QR code until the host is registered (C(stylus.site.registrationURL)).
    type: str
  ca_certs:
    description:
      - PEM certificates the host trusts (C(stylus.site.caCerts)), for example a proxy CA.
    type: list
    elements: str
  network:
    description:
      - The host network (C(stylus.site.network)). This is the Edge host's proxy, not the build proxy.
    type: dict
    suboptions:
      http_proxy:
        description: C(httpProxy).
        type: str
      https_proxy:
        description: C(httpsProxy).
        type: str
      no_proxy:
        description: C(noProxy).
        type: str
      nameserver:
        description: C(nameserver), for example C(1.1.1.1).
        type: str
      interfaces:
        description:
          - C(interfaces), a mapping of interface name to its settings.
          - "For example C({enp0s3: {type: static, ip_address: 10.0.10.25/24, gateway: 10.0.10.1},
            enp0s4: {type: dhcp}})."
          - Keys may be given in snake case (C(ip_address)) or as documented (C(ipAddress)).
        type: dict
  registry_credentials:
    description:
      - Credentials of the registry the provider images come from (C(stylus.registryCredentials)).
    type: dict
    suboptions:
      domain:
        description: Registry host, for example C(docker.io).
        type: str
      username:
        description: Registry user.
        type: str
      password:
        description: Registry password or token.
        type: str
      insecure:
        description: Skip TLS verification of the registry.
        type: bool
      encoded_password:
        description: The password is Base64 encoded (C(encodedPassword)).
        type: bool
  install:
    description:
      - The C(install) block.
    type: dict
    suboptions:
      poweroff:
        description: Power off after the installation. Mutually exclusive with O(install.reboot).
        type: bool
      reboot:
        description: Reboot after the installation.
        type: bool
      device:
        description: The disk to install to, for example C(/dev/sda).
        type: str
      grub_options:
        description: 'GRUB options, for example C({extra_cmdline: "fips=1"}).'
        type: dict
      partitions:
        description: "Partition sizes, for example C({persistent: {size: 0, fs: ext4}})."
        type: dict
      bind_mounts:
        description: Extra persistent bind mounts.
        type: list
        elements: str
  stages:
    description:
      - Kairos (yip) C(stages), a mapping of stage name to a list of steps. Steps merge with the base document's
        steps by C(name).
    type: dict
  users:
    description:
      - Users created in an C(initramfs) stage named C(Core system setup), as in the documentation's example.
    type: list
    elements: dict
    suboptions:
      name:
        description: User name, for example C(kairos).
        type: str
        required: true
      passwd:
        description: Password.
        type: str
      groups:
        description: Groups, for example C([admin]).
        type: list
        elements: str
      ssh_authorized_keys:
        description: SSH public keys (or C(github:<user>)).
        type: list
        elements: str
      lock_passwd:
        description: Lock the password.
        type: bool
  vmxnet3_interface:
    description:
      - Adds the documented C(initramfs) stage C(Disable UDP segmentation) for this interface (two C(ethtool)
        commands), needed on virtual machines with a VMXNET3 adapter when the cluster uses an overlay network or
        Flannel.
    type: str
  extra:
    description:
      - Any other documented fields, as a document merged over the rest.
      - "For example C({stylus: {managementMode: local, installationMode: airgap}})."
    type: dict
notes:
  - Validation is offline and covers the documented fields; keys the schema does not know are warned about, not refused.
seealso:
  - module: edgeforge.artifacts.palette_agent_version
"""

EXAMPLES = r"""
- name: Write the user data of the basic flow
  edgeforge.artifacts.user_data:
    dest: build/user-data
    edge_host_token: "{{ vault_edge_host_token }}"
    project_name: Default
    install:
      poweroff: true
    users:
      - name: kairos
        groups: [admin]
        passwd: kairos

- name: Add the VMXNET3 workaround and registry credentials to a hand-written file
  edgeforge.artifacts.user_data:
    src: files/user-data
    dest: build/user-data
    vmxnet3_interface: ens192
    registry_credentials:
      domain: docker.io
      username: myuser
      password: "{{ vault_registry_password }}"

- name: Validate an existing file only (the CanvOS +validate-user-data step)
  edgeforge.artifacts.user_data:
    src: user-data
    validate_only: true
"""

RETURN = r"""
path:
  description: The file written (O(dest)), or the file validated (O(src)) when O(validate_only=true).
  returned: always
  type: str
  sample: /home/user/edge/build/user-data
sha256:
  description: SHA-256 of the rendered content.
  returned: always
  type: str
  sample: 9f2c5a0e1b8d4c7f6a3e2d1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6
mode:
  description: File mode of O(dest).
  returned: unless O(validate_only=true)
  type: str
  sample: "0600"
preview:
  description: The rendered document with the token and every password replaced by C(********).
  returned: always
  type: str
  sample: "#cloud-config\nstylus:\n  site:\n    edgeHostToken: ********\n    projectName: Default\n"
valid:
  description: The document passed validation (on failure the module fails instead).
  returned: always
  type: bool
  sample: true
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, sha256_hex
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule, parse_mode
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data import (
    HAS_YAML,
    YAML_IMPORT_ERROR,
    collect_secrets,
    mask_text,
    render,
    secrets_of_text,
)

STRUCTURED = ("edge_host_token", "palette_endpoint", "project_name", "project_uid", "tags", "name",
              "registration_url", "ca_certs", "network", "registry_credentials", "install", "stages", "users",
              "vmxnet3_interface", "extra")

ARGUMENT_SPEC = dict(
    dest=dict(type="path"),
    src=dict(type="path"),
    content=dict(type="str", no_log=True),
    validate_only=dict(type="bool", default=False),
    mode=dict(type="str", default="0600"),
    edge_host_token=dict(type="str", no_log=True),
    palette_endpoint=dict(type="str"),
    project_name=dict(type="str"),
    project_uid=dict(type="str"),
    tags=dict(type="dict"),
    name=dict(type="str"),
    registration_url=dict(type="str"),
    ca_certs=dict(type="list", elements="str"),
    network=dict(type="dict", options=dict(
        http_proxy=dict(type="str"),
        https_proxy=dict(type="str"),
        no_proxy=dict(type="str"),
        nameserver=dict(type="str"),
        interfaces=dict(type="dict"),
    )),
    registry_credentials=dict(type="dict", options=dict(
        domain=dict(type="str"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        insecure=dict(type="bool"),
        encoded_password=dict(type="bool"),
    )),
    install=dict(type="dict", options=dict(
        poweroff=dict(type="bool"),
        reboot=dict(type="bool"),
        device=dict(type="str"),
        grub_options=dict(type="dict"),
        partitions=dict(type="dict"),
        bind_mounts=dict(type="list", elements="str"),
    )),
    stages=dict(type="dict"),
    users=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True),
        passwd=dict(type="str", no_log=True),
        groups=dict(type="list", elements="str"),
        ssh_authorized_keys=dict(type="list", elements="str", no_log=False),
        lock_passwd=dict(type="bool", no_log=False),
    )),
    vmxnet3_interface=dict(type="str"),
    extra=dict(type="dict"),
)


def read_source(module):
    """(base text, where it came from): O(src) or O(content). The secrets of a file are hidden from every output."""
    src = module.params["src"]
    if not src:
        return module.params["content"], "content"
    if not os.path.isfile(src):
        raise EdgeforgeError("src: %s does not exist or is not a file" % src)
    try:
        with open(src, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeforgeError("src: cannot read %s: %s" % (src, err)) from err
    # The file is not a no_log option: make sure its secrets never reach any output.
    module.no_log_values.update(value for value in secrets_of_text(text) if len(value) >= 3)
    return text, src


def run(module):
    params = module.params
    mode = parse_mode(params["mode"])
    base_text, source = read_source(module)
    text, doc, report = render(dict((key, params[key]) for key in STRUCTURED), base_text, source)
    secrets = collect_secrets(doc)
    module.no_log_values.update(value for value in secrets if len(value) >= 3)
    result = dict(changed=False, sha256=sha256_hex(text), preview=mask_text(text, secrets), valid=True,
                  warnings=list(report.warnings))
    if params["validate_only"]:
        return dict(result, path=params["src"] or params["dest"])
    if os.path.isdir(params["dest"]):
        raise EdgeforgeError("dest: %s is a directory; give the path of the user-data file" % params["dest"])
    written = module.write_file(params["dest"], text, mode,
                                mask=lambda shown: mask_text(shown, list(secrets) + secrets_of_text(shown)))
    result.update(changed=written["changed"], path=params["dest"], mode="%04o" % mode)
    if "diff" in written:
        result["diff"] = written["diff"]
    return result


def main():
    module = EdgeforgeModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("src", "content")],
        required_if=[("validate_only", False, ("dest",))],
        required_libraries=[("PyYAML", HAS_YAML, YAML_IMPORT_ERROR)],
    )
    module.run(run)


if __name__ == "__main__":
    main()
