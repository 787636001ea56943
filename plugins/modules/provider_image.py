#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: provider_image
short_description: Build Palette Edge provider images (and the installer image) with the Docker engine
version_added: 0.1.0
description:
  - Builds what CanvOS's C(+build-provider-images) builds, without Earthly, by driving the Docker engine directly.
  - A base stage (the base image + extra CA certificates + your Dockerfile customisations + CanvOS's C(+base-image)
    steps for the distribution - tools, kernel metapackages held, other kernels removed, initrd regenerated with
    dracut, C(/etc/kairos-release), cleanup, cgroup v2 and SELinux boot arguments) is built once per configuration
    and shared by every Kubernetes version.
  - Then one provider image per Kubernetes version of the matrix, tagged
    C(IMAGE_REGISTRY/IMAGE_REPO:K8S_DISTRIBUTION-K8S_VERSION-PE_VERSION[-CUSTOM_TAG]), holding, in CanvOS's order,
    the stock and user overlay C(etc/), the whole Kairos provider image, the stylus branding and configuration, the
    optional edge custom config, the Kubernetes payload and C(/usr/bin/etcdctl) (from
    C(SPECTRO_PUB_REPO/third-party/spectro-third-party:4.8), packed with C(upx -1) in CanvOS's Alpine helper image
    C(SPECTRO_PUB_REPO/edge/canvos/alpine:3.20)); kernel headers for kubeadm on Ubuntu amd64 and
    nodeadm's IAM Roles Anywhere and SSM parts; no SSH host keys and an empty machine-id.
  - Files copied onto a merged-/usr base (where C(/lib) is a link to C(usr/lib)) are merged into C(/usr), so a
    payload holding C(lib/) cannot break the image.
  - With O(installer=true), also the installer image C(palette-installer-image:PE_VERSION[-CUSTOM_TAG]) (base stage
    + the whole stylus framework + the stock and user overlay), the input of the ISO build.
  - C(update_kernel=true) in O(config) lets the base stage update the kernel (Ubuntu HWE kernel, no openSUSE kernel
    lock) and gives every provider image the headers or development package of its kernel, as CanvOS does.
  - C(cis_hardening=true) in O(config) (Ubuntu amd64) hardens the base stage after the kernel steps.
  - Every image carries the label C(io.edgeforge.inputs-digest), a digest of everything that went into it
    (configuration, Dockerfile text, files copied in, ids of the images it reads from). An existing image with the
    same tag and digest is not rebuilt. Images are built under a temporary tag and tagged with their final name only
    when the build succeeded, so a failed build never leaves a half-built image under the final tag.
  - The full build log of each image is written to C(BUILD_DIR/logs/); progress lines (each build step) go to
    C(BUILD_DIR/logs/provider_images.progress.log) while the builds run.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.docker
  - edgeforge.artifacts.attributes
options:
  config:
    description:
      - The normalised build configuration, C(build_config_plan.config) as set by the
        M(edgeforge.artifacts.build_config) module or the C(edgeforge.artifacts.build_config) role.
      - It names every upstream image read (C(base_image), C(provider_source_image),
        C(stylus_framework_image), C(k8s_payload_image)), so pointing them at a mirror makes the build air-gapped.
    type: dict
    required: true
  k8s_versions:
    description:
      - Build only these Kubernetes versions of the configuration's matrix (for example this host's share when a
        fleet of build hosts splits the matrix). When not set, every version of C(config.k8s_versions); an empty
        list builds no provider image (a host whose share is empty); a version outside the matrix is an error.
    type: list
    elements: str
  build_dir:
    description:
      - Directory for the generated build contexts and the build logs.
    type: path
    default: build
  dockerfile:
    description:
      - A file of Dockerfile instructions applied on top of the base image in the shared base stage, as users add
        C(RUN) lines to CanvOS's C(Dockerfile) (packages, files, settings). No C(FROM) line.
    type: path
  dockerfile_content:
    description:
      - Dockerfile instructions given inline; applied after the content of O(dockerfile) when both are set.
    type: str
  overlay_dir:
    description:
      - CanvOS-style overlay directory (C(overlay/files)). Its C(etc/) goes into every provider image's C(/etc); the
        whole tree goes into the installer image's C(/). Copied after the stock overlay (C(/etc/kairos/.nousers),
        rsyslog and logrotate files, installer title, hardware list, C(check-disk-size.sh)), so its files win.
    type: path
  parallel:
    description:
      - How many images are built at the same time.
    type: int
    default: 2
  force:
    description:
      - Rebuild the images even when an image with the same tag and inputs digest exists.
    type: bool
    default: false
  installer:
    description:
      - Also build the installer image C(palette-installer-image:<IMAGE_TAG>).
    type: bool
    default: false
  pull:
    description:
      - Pull every upstream image even when the engine already has it (to pick up a moved tag). When V(false),
        only missing upstream images are pulled.
    type: bool
    default: false
  http_proxy:
    description:
      - The real HTTP proxy URL for the build, when it carries a password. The plan of
        M(edgeforge.artifacts.build_config) masks proxy passwords, so a proxy with credentials must be given here
        as well; without a password the plan's own URL is used.
      - Passed to the engine as a predefined build argument, which is not kept in the image.
    type: str
  https_proxy:
    description:
      - The real HTTPS proxy URL, as O(http_proxy).
    type: str
seealso:
  - module: edgeforge.artifacts.build_config
  - module: edgeforge.artifacts.image_push
  - module: edgeforge.artifacts.byoos_manifest
attributes:
  check_mode:
    support: full
    details: Reports which images would be built (status V(would_build)) without pulling or building.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Plan the build
  edgeforge.artifacts.build_config:
    custom_tag: palette-learn
    k8s_version: 1.27.2
  register: plan

- name: Build the provider images and the installer image
  edgeforge.artifacts.provider_image:
    config: "{{ plan.config }}"
    installer: true
    parallel: 2
    dockerfile_content: |
      RUN apt-get update && apt-get install -y --no-install-recommends nfs-common && rm -rf /var/lib/apt/lists/*
  register: built

- name: Build this host's share of a large matrix
  edgeforge.artifacts.provider_image:
    config: "{{ plan.config }}"
    k8s_versions: "{{ plan.config.k8s_versions[ansible_play_hosts.index(inventory_hostname)::ansible_play_hosts | length] }}"
"""

RETURN = r"""
images:
  description: One entry per provider image, in the order of the Kubernetes versions.
  returned: always
  type: list
  elements: dict
  contains:
    reference:
      description: The image's full name.
      type: str
      sample: ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-palette-learn
    k8s_version:
      description: The Kubernetes version in the image.
      type: str
      sample: 1.27.2
    id:
      description: The image id (null in check mode for an image that would be built).
      type: str
      sample: sha256:a8d21f2edafcb60078aadf1ae52a6d4fbdf03379718de6e3fe09c112317a527e
    size:
      description: Image size in bytes.
      type: int
      sample: 4110000000
    status:
      description: V(built), V(reused) (same tag and inputs digest already present) or V(would_build) (check mode).
      type: str
      sample: built
    seconds:
      description: Build time in seconds (0 when reused).
      type: float
      sample: 312.4
    inputs_digest:
      description: The value of the C(io.edgeforge.inputs-digest) label.
      type: str
      sample: sha256:effb1eed4bb2df14a99b3d6ffab60b2b3d7572c6346fdf8bff070e4db3a512e7
    log:
      description: Full build log of this image (only when built).
      type: str
      sample: /home/me/edge/build/logs/provider-ubuntu_k3s-1.27.2-v4.9.21-palette-learn.log
installer_image:
  description: The installer image (same keys as an entry of RV(images)), when O(installer=true).
  returned: when O(installer=true)
  type: dict
  sample:
    reference: palette-installer-image:v4.9.21-palette-learn
    id: sha256:a938f102a347a506b210d108e5de0538c380ef2dbbd022320dc8f96ac4620479
    size: 4300000000
    status: built
    seconds: 120.2
base_stage:
  description: The shared base stage image (local only) and whether it was built, reused or not needed.
  returned: always
  type: dict
  sample:
    reference: edgeforge-base-stage:991fe722554972e2
    status: reused
    inputs_digest: sha256:991fe722554972e294f2db08fedab9c829cfc223f59b3e17476f6a8885fc668c
provider_images:
  description: The references of the provider images (built or reused).
  returned: always
  type: list
  elements: str
  sample: [ttl.sh/ubuntu:k3s-1.27.2-v4.9.21-palette-learn]
log_dir:
  description: Directory holding the full build logs and the progress log.
  returned: always
  type: str
  sample: /home/me/edge/build/logs
progress_log:
  description: The progress log (one line per build step), readable with C(tail -f) while the task runs.
  returned: always
  type: str
  sample: /home/me/edge/build/logs/provider_images.progress.log
missing_sources:
  description: In check mode, upstream images the engine does not have yet (they would be pulled).
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ProgressLog, ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig, with_real_proxies
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, DOCKER_IMPORT_ERROR, HAS_DOCKER, engine_factory)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.builder import ProviderImageBuilder
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.context import (
    builds_of_share, user_dockerfile_text)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.steps import refuse_unsupported


def run(module):
    params = module.params
    if params["parallel"] < 1:
        raise ValidationError("parallel", params["parallel"], "a whole number of at least 1")
    build_dir = os.path.abspath(params["build_dir"])
    progress_path = os.path.join(build_dir, "logs", "provider_images.progress.log")
    plan = BuildConfig.from_options(with_real_proxies(params["config"], params)).plan()
    refuse_unsupported(plan["config"])
    if params["k8s_versions"] is not None:
        plan["builds"] = builds_of_share(plan["builds"], params["k8s_versions"])
    user_dockerfile = user_dockerfile_text(params["dockerfile"], params["dockerfile_content"])
    if not plan["builds"] and not params["installer"]:
        return dict(changed=False, images=[], provider_images=[], base_stage={}, log_dir="", progress_log="",
                    missing_sources=[], msg="no Kubernetes version to build")
    with ProgressLog(None if module.check_mode else progress_path) as progress:
        builder = ProviderImageBuilder(
            engine_factory(params), plan, build_dir, user_dockerfile=user_dockerfile,
            overlay_dir=params["overlay_dir"], parallel=params["parallel"], force=params["force"],
            installer=params["installer"], pull=params["pull"], check_mode=module.check_mode, progress=progress)
        result = builder.run()
    result["provider_images"] = [image["reference"] for image in result["images"]]
    result["progress_log"] = progress_path
    return result


def main():
    argument_spec = dict(
        config=dict(type="dict", required=True),
        k8s_versions=dict(type="list", elements="str"),
        build_dir=dict(type="path", default="build"),
        dockerfile=dict(type="path"),
        dockerfile_content=dict(type="str"),
        overlay_dir=dict(type="path"),
        parallel=dict(type="int", default=2),
        force=dict(type="bool", default=False),
        installer=dict(type="bool", default=False),
        pull=dict(type="bool", default=False),
        http_proxy=dict(type="str", no_log=True),
        https_proxy=dict(type="str", no_log=True),
    )
    module = EdgeforgeModule(argument_spec=argument_spec, shared_specs=[DOCKER_ARGUMENT_SPEC],
                             required_libraries=[("docker", HAS_DOCKER, DOCKER_IMPORT_ERROR)])
    module.run(run)


if __name__ == "__main__":
    main()
