#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: build_config
short_description: Validate a Palette Edge build configuration and return its build plan
version_added: 0.1.0
description:
  - Takes the CanvOS C(.arg) parameters (as lower-case options, from a CanvOS C(.arg) file, or both), applies the
    CanvOS defaults, validates every value before any work starts and returns the normalised configuration with the
    build plan derived from it - one provider image reference per Kubernetes version, the base image, the upstream
    image sources, the installer image, the ISO path and the BYOOS pack values.
  - A bad value fails with one message naming the option, the value and what is allowed. Where CanvOS silently
    builds nothing or ignores a typo (empty C(K8S_DISTRIBUTION), a missing C(CLUSTERCONFIG) file), this module refuses.
  - Optionally reads a CanvOS C(.arg) file (O(arg_file)) and writes the configuration as one (O(dest)), so a
    configuration moves either way between this collection and CanvOS.
  - Every option is declared once, in C(plugins/module_utils/config/schema.py); this module's argument spec and
    its doc fragment are made from it.
  - Proxy URLs may carry credentials. They are not C(no_log) options (the URL itself is useful in logs), but the
    password part is masked as C(********) in every returned value, in the diff and in the logged invocation.
    The returned RV(config) therefore holds masked proxy URLs; the real ones reach the modules that build only as
    their own C(no_log) options C(http_proxy) and C(https_proxy).
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.build_config
  - edgeforge.artifacts.attributes
attributes:
  check_mode:
    support: full
    details: In check mode O(dest) is not written; the result tells whether it would change.
  diff_mode:
    support: full
    details: The diff of O(dest), with proxy passwords masked.
notes:
  - The versions table shipped with the collection is CanvOS v4.10.0's C(k8s_version.json); replace it with
    O(k8s_versions_file).
  - The role M(edgeforge.artifacts.build_config) calls this module with every flat variable and sets the fact
    C(build_config_plan) that the other roles read.
seealso:
  - module: edgeforge.artifacts.palette_agent_version
"""

EXAMPLES = r"""
- name: Plan the basic flow of the public guide (k3s 1.27.2, tag palette-learn)
  edgeforge.artifacts.build_config:
    custom_tag: palette-learn
    k8s_version: 1.27.2
    pe_version: v4.4.12
  register: plan

- name: Read an existing CanvOS .arg file, override the registry
  edgeforge.artifacts.build_config:
    arg_file: /opt/CanvOS/.arg
    image_registry: docker.io/myuser

- name: Build matrix of two kubeadm versions on Ubuntu 24.04, for an AWS AMI
  edgeforge.artifacts.build_config:
    os_version: "24.04"
    k8s_distribution: kubeadm
    k8s_version: [1.32.3, 1.33.5]
    region: us-east-1
    s3_bucket: my-edge-images

- name: Write a CanvOS .arg from the configuration (for a CanvOS checkout)
  edgeforge.artifacts.build_config:
    custom_tag: palette-learn
    k8s_version: 1.27.2
    dest: /opt/CanvOS/.arg
"""

RETURN = r"""
config:
  description:
    - The normalised configuration - every option with defaults applied, derived values resolved, file paths made
      absolute. Its C(k8s_versions) list is the build matrix. Proxy passwords are masked.
    - Other modules of the collection take this dict as their C(config) option.
  returned: always
  type: dict
  sample:
    custom_tag: palette-learn
    image_registry: ttl.sh
    os_distribution: ubuntu
    image_repo: ubuntu
    os_version: "22.04"
    k8s_distribution: k3s
    k8s_version: ["1.27.2"]
    k8s_versions: ["1.27.2"]
    arch: amd64
    iso_name: palette-edge-installer
    base_image: us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4
    pe_version: v4.4.12
    kairos_version: v4.0.4
    spectro_pub_repo: us-docker.pkg.dev/palette-images
    spectro_luet_repo: us-docker.pkg.dev/palette-images/edge
    fips_enabled: false
    update_kernel: false
    http_proxy: http://user:********@proxy.example.com:3128
    https_proxy: ""
    no_proxy: ""
    proxy_cert_paths: []
    clusterconfig: ""
    edge_custom_config: ""
    cis_hardening: false
    disable_selinux: true
    force_interactive_install: false
    debug: false
    region: ""
    s3_bucket: ""
    s3_key: ""
    ami_name: ""
    k8s_versions_file: ""
    provider_source_image: us-docker.pkg.dev/palette-images/edge/kairos-io/provider-k3s:v4.9.4
    stylus_framework_image: us-docker.pkg.dev/palette-images/edge/stylus-framework-linux-amd64:v4.4.12
    k8s_payload_image: us-docker.pkg.dev/palette-images/edge/luet-repo-amd:k3s-k8s-{k8s_version}-k3s1
provider_images:
  description: Full provider image references, one per Kubernetes version of the build matrix.
  returned: always
  type: list
  elements: str
  sample: ["ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn"]
builds:
  description: One entry per provider image to build.
  returned: always
  type: list
  elements: dict
  contains:
    k8s_version:
      description: Kubernetes version (C(x.y.z)).
      type: str
      returned: always
      sample: 1.27.2
    image:
      description: Full provider image reference.
      type: str
      returned: always
      sample: ttl.sh/ubuntu:k3s-1.27.2-v4.4.12-palette-learn
    tag:
      description: The tag part, C(<dist>-<k8s_version>-<pe_version>[-<custom_tag>]).
      type: str
      returned: always
      sample: k3s-1.27.2-v4.4.12-palette-learn
    k8s_payload_image:
      description: The Kubernetes payload image for this version.
      type: str
      returned: always
      sample: us-docker.pkg.dev/palette-images/edge/luet-repo-amd:k3s-k8s-1.27.2-k3s1
base_image:
  description: The resolved base OS image.
  returned: always
  type: str
  sample: us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4
sources:
  description: The upstream images the build copies files from.
  returned: always
  type: dict
  contains:
    provider_source_image:
      description: Image with the Kairos agent provider.
      type: str
      returned: always
      sample: us-docker.pkg.dev/palette-images/edge/kairos-io/provider-k3s:v4.9.4
    stylus_framework_image:
      description: Image with the Palette agent framework.
      type: str
      returned: always
      sample: us-docker.pkg.dev/palette-images/edge/stylus-framework-linux-amd64:v4.4.12
    k8s_payload_image:
      description: Template (with C({k8s_version})) of the Kubernetes payload image.
      type: str
      returned: always
      sample: us-docker.pkg.dev/palette-images/edge/luet-repo-amd:k3s-k8s-{k8s_version}-k3s1
installer_image:
  description: Local name of the installer image the ISO is made from.
  returned: always
  type: str
  sample: palette-installer-image:v4.4.12-palette-learn
iso_path:
  description: Path of the installer ISO, relative to the build directory.
  returned: always
  type: str
  sample: build/palette-edge-installer.iso
manifest:
  description:
    - Option values of the BYOOS (edge-native-byoi) OS pack for the cluster profile, as CanvOS prints them.
    - With an empty custom tag, C(system.uri) leaves out the C(-customTag) part so it matches the images.
  returned: always
  type: dict
  sample:
    system.uri: >-
      {{ .spectro.pack.edge-native-byoi.options.system.registry }}/{{ .spectro.pack.edge-native-byoi.options.system.repo }}:{{
      .spectro.pack.edge-native-byoi.options.system.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}-{{
      .spectro.pack.edge-native-byoi.options.system.peVersion }}-{{ .spectro.pack.edge-native-byoi.options.system.customTag }}
    system.registry: ttl.sh
    system.repo: ubuntu
    system.k8sDistribution: k3s
    system.osName: ubuntu
    system.peVersion: v4.4.12
    system.customTag: palette-learn
    system.osVersion: "22.04"
arg_file_written:
  description: Absolute path of the C(.arg) file written (or that would be written in check mode).
  returned: when O(dest) is set
  type: str
  sample: /opt/CanvOS/.arg
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    EdgeforgeError, ValidationError, mask_secrets)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config import schema
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.arg_options import read_arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.plan import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.proxies import PROXY_NAMES, url_password
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def argument_spec():
    """Made from the option schema (plugins/module_utils/config/schema.py), like this module's doc fragment."""
    return schema.argument_spec()


def _hide_passwords(module, options):
    """Keep proxy passwords out of every output (result, invocation, errors) from the start."""
    for name in PROXY_NAMES:
        password = url_password(options.get(name))
        if password:
            module.no_log_values.add(password)


def _options(module):
    """The options of the .arg file (if any), overridden by those given to the module."""
    params = module.params
    options = {}
    if params["arg_file"]:
        from_file = read_arg_file(params["arg_file"])
        _hide_passwords(module, from_file)
        for message in from_file.differences + from_file.notes:
            module.warn("%s: %s" % (params["arg_file"], message))
        options.update(from_file)
    for name in schema.CONFIG_NAMES + schema.DEPRECATED_NAMES:
        if params.get(name) is not None:
            options[name] = params[name]
    return options


def _arg_file_mode(config, dest):
    """0600 for a credential-bearing file (tightened if need be); else never loosen a mode the user chose."""
    mode = config.arg_file_mode
    if mode != 0o600 and os.path.isfile(dest):
        return os.stat(dest).st_mode & 0o7777
    return mode


def _write_dest(module, config, dest):
    """Write the .arg when its content or (credential-bearing) mode changes; check mode, diff with masked proxies."""
    if os.path.exists(dest) and not os.path.isfile(dest):
        raise ValidationError("dest", dest, "a regular file path (it is a directory or special file)")
    try:
        return module.write_file(dest, config.arg_text(), _arg_file_mode(config, dest), mask=mask_secrets)
    except EdgeforgeError as err:
        raise EdgeforgeError("dest: %s" % err) from err.__cause__


def _plan(module):
    """The build configuration; its error messages never show a proxy password."""
    try:
        return BuildConfig.from_options(_options(module))
    except EdgeforgeError as err:
        err.args = (mask_secrets(str(err)),)
        raise err from None  # the cause may quote the password unmasked


def run(module):
    _hide_passwords(module, module.params)
    config = _plan(module)
    for secret in config.secrets():
        module.no_log_values.add(secret)
    for warning in config.warnings:
        module.warn(warning)
    for item in config.deprecations:
        # Every deprecation of BuildConfig (proxy_cert_path) is removed in 2.0.0.
        module.deprecate(item["msg"], version="2.0.0", collection_name="edgeforge.artifacts")

    result = dict(changed=False)
    result.update(config.plan(mask=True))
    if module.params["dest"]:
        dest = os.path.abspath(module.params["dest"])
        result["arg_file_written"] = dest
        try:
            written = _write_dest(module, config, dest)
        except EdgeforgeError as err:
            module.fail_from(err, **result)
        result["changed"] = written["changed"]
        if "diff" in written:
            result["diff"] = written["diff"]
    return result


def main():
    module = EdgeforgeModule(argument_spec=argument_spec())
    module.run(run)


if __name__ == "__main__":
    main()
