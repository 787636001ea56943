# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disk artifacts built from the installer image: the installer ISO and the raw disk image.

- ``request``: DiskRequest, every input of one build, validated before anything is written.
- ``build``: DiskBuilder, the one build skeleton (plan, stage, assemble, checksum, stamp).
- ``iso``: the ISO's tree and build script. ``raw``: the raw disk's trees and scripts; ``gpt``: its partition
  table and BIOS boot code; ``oem``: its OEM partition's first-boot files.
- ``menu``: the GRUB menus (boot menu text); ``grub``: the builder's own GRUB images.
- ``runner``: the generated scripts and the script runner; ``builder_image``: the disk builder image.
- ``rootfs``: the installer image's exported root filesystem; ``stamps``: checksums and inputs stamps.
- ``module``: what the installer_iso and raw_disk_image modules share.
"""
