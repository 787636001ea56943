# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options shared by the modules that build a disk image (ISO, raw disk) from the installer image."""

    DOCUMENTATION = r"""
options:
  config:
    description:
      - The normalised build configuration, C(build_config_plan.config) as set by the
        C(edgeforge.artifacts.build_config) role. Read keys - C(iso_name), C(clusterconfig), C(edge_custom_config),
        C(force_interactive_install) (ISO only), C(debug), C(http_proxy), C(https_proxy), C(no_proxy).
    type: dict
    default: {}
  installer_image:
    description:
      - The installer image to build from (C(build_config_plan.installer_image)); it must be in the Docker engine.
    type: str
    required: true
  build_dir:
    description:
      - Directory of the outputs (CanvOS C(build/)).
    type: path
    default: build
  user_data:
    description:
      - The (validated) user-data file to embed. It holds the registration token, so it is never printed. A path
        that does not exist is an error; leave it unset for an image without user data.
      - At most 1 MB (1000000 bytes) - Kairos skips a larger configuration file on the installer medium with only
        a warning, so the host would never register; a larger file is refused before anything is built.
    type: path
  content_dir:
    description:
      - Directories holding content bundles (C(*.zst); the raw disk image also takes C(*.tar); other files are
        ignored, as in CanvOS). A directory that does not exist is an error.
    type: list
    elements: path
    default: []
  clusterconfig:
    description:
      - Cluster definition archive to embed; overrides C(config.clusterconfig). Must exist when set.
    type: path
  edge_custom_config:
    description:
      - Edge custom configuration file to embed; overrides C(config.edge_custom_config). Must exist when set.
    type: path
  local_ui:
    description:
      - CanvOS's C(local-ui.tar) - extracted into the installer root filesystem's C(/opt/spectrocloud/) before it
        is squashed (the ISO's C(rootfs.squashfs), the raw disk's recovery system). Must exist when set.
    type: path
  debug:
    description:
      - Add the debug kernel arguments to every menu entry. Overrides C(config.debug).
    type: bool
  grub_timeout:
    description:
      - Seconds the GRUB menu waits before booting the default entry (0-600; CanvOS waits 5).
    type: int
    default: 5
  extra_cmdline:
    description:
      - More kernel arguments for every menu entry, after CanvOS's own (and after the debug ones). One line, no
        quotes.
    type: str
    default: ""
  kernel_path:
    description:
      - Kernel inside the installer image; by default the first of C(/boot/vmlinuz), C(/vmlinuz), C(/boot/vmlinuz-*).
    type: str
  initrd_path:
    description:
      - Initrd inside the installer image; by default the first of C(/boot/initrd), C(/initrd.img), C(/boot/initrd.img-*).
    type: str
  squashfs_compression_level:
    description:
      - zstd level of the squashed root filesystem (1-22). Higher gives a smaller image and a slower build.
    type: int
    default: 3
  artifact_mode:
    description:
      - File mode of the image, as an octal string. The image holds the user data and its registration token, so
        by default only its owner reads it (V(0600); what the build writes on the way is the owner's alone too).
      - A wider mode such as V(0640) or V(0644) shares it. The owner must read and write it; no execute or special
        bits. An image that is up to date but has another mode gets this one (changed).
    type: str
    default: "0600"
  builder:
    description:
      - V(container) runs the tools in the disk builder image (default, nothing to install on the host).
      - V(host) runs the same commands on the host (needs the packages of the builder image installed there).
      - V(auroraboot) is not run by this module; see the notes of M(edgeforge.artifacts.installer_iso) for the
        equivalent upstream command.
    type: str
    choices: [container, host, auroraboot]
    default: container
  builder_base_image:
    description:
      - Base image of the disk builder image (a Debian 12 or later image; its package mirror must be reachable).
    type: str
    default: debian:bookworm-slim
  force:
    description:
      - Rebuild even when the image is up to date.
    type: bool
    default: false
  http_proxy:
    description:
      - The real HTTP proxy URL for the builder image's package downloads, when it carries a password (the plan of
        M(edgeforge.artifacts.build_config) masks proxy passwords). Without a password, C(config.http_proxy) is used.
    type: str
  https_proxy:
    description:
      - The real HTTPS proxy URL, as O(http_proxy).
    type: str
"""
