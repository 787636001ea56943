#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: raw_disk_image
short_description: Build a bootable raw GPT disk image (the Palette Edge cloud image) from the installer image
version_added: 0.1.0
description:
  - Builds the raw disk CanvOS's C(+cloud-image) target makes with AuroraBoot and C(add-content-partition.sh) - the
    input of the AWS import - without privileged containers or loop devices.
  - "GPT layout: 1 EFI (FAT, label C(COS_GRUB), EFI system partition, GRUB at C(EFI/BOOT/BOOTX64.EFI)); 2 OEM (ext2,
    C(COS_OEM), the user data as C(90_custom.yaml), or a file holding only C(#cloud-config) when none is given,
    C(grubenv) sending the first boot to the O(default_entry) entry, and C(01_reset.yaml));
    3 RECOVERY (ext2, C(COS_RECOVERY), C(/cOS/recovery.squashfs) made from the installer image, C(/cOS/vmlinuz),
    C(/cOS/initrd) and the GRUB menu C(/grub2/grub.cfg)); 4 CONTENT (ext4, C(COS_CONTENT), only when there are
    content bundles, a cluster definition or an edge custom config - C(bundle-content/), C(spc-config/),
    C(edge-config/.edge_custom_config.yaml)); and a 1 MiB BIOS boot partition (GRUB core image) so the disk boots
    from BIOS as well as UEFI firmware."
  - On first boot the recovery system reads C(01_reset.yaml) - it adds the C(state) partition (C(COS_STATE), three
    times the recovery partition plus 100 MiB) and the C(persistent) partition (C(COS_PERSISTENT), the rest of the
    disk) after the last partition, and resets unattended into the installed system (unless C(/oem/.autoreset.skip)
    exists). The disk the image is written to must be large enough for them.
  - Each filesystem is made in a file of its partition's size (C(mkfs -d), C(mkfs.vfat) + mtools) and copied into a
    sparse image with C(dd conv=notrunc,sparse), so the file only allocates about the data it holds.
  - Written under a temporary name, renamed when complete, checked against the C(.sha256) file written beside it;
    unchanged inputs and a matching checksum give changed=false.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.disk_image
  - edgeforge.artifacts.docker
  - edgeforge.artifacts.attributes
options:
  raw_name:
    description:
      - File name of the image without C(.raw). Default C(config.iso_name), else V(palette-edge-installer).
      - Letters, digits, V(.), V(_) and V(-) only.
    type: str
  default_entry:
    description:
      - Default GRUB entry - V(recovery) boots the recovery system, V(reset) boots it with C(kairos.reset). The
        first boot takes it through the OEM C(grubenv) (C(next_entry)), as CanvOS's image does.
    type: str
    choices: [recovery, reset]
    default: recovery
  bios_boot:
    description:
      - Add the BIOS boot partition and GRUB's BIOS boot code (UEFI boot works either way).
    type: bool
    default: true
  deprecated_variables:
    description:
      - For the C(edgeforge.artifacts.raw_disk_image) role - the deprecated role variables the play sets (for example
        C(installer_iso_raw_image)); each gives a deprecation warning naming what replaces it. Nothing else changes.
    type: list
    elements: str
    default: []
seealso:
  - module: edgeforge.artifacts.installer_iso
  - module: edgeforge.artifacts.boot_check
  - module: edgeforge.artifacts.ec2_image_import
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the image would be built without building it.
      - When the user data or the installer image is missing - an earlier step of the same check-mode run would
        have made them - the image is reported as to be built, with a warning, instead of failing.
  diff_mode:
    support: full
    details: Shows the old and new checksum.
"""

EXAMPLES = r"""
- name: Build the raw disk image for the AWS import
  edgeforge.artifacts.raw_disk_image:
    config: "{{ build_config_plan.config }}"
    installer_image: "{{ build_config_plan.installer_image }}"
    user_data: "{{ user_data_path }}"
    build_dir: "{{ playbook_dir }}/../build"
  register: raw

- name: Boot it once in QEMU before importing it
  edgeforge.artifacts.boot_check:
    path: "{{ raw.raw_path }}"
    firmware: uefi
"""

RETURN = r"""
raw_path:
  description: Absolute path of the raw disk image.
  returned: always
  type: str
  sample: /home/user/edge/build/palette-edge-installer.raw
sha256_path:
  description: Path of the checksum file (C(sha256sum -c) format).
  returned: always
  type: str
  sample: /home/user/edge/build/palette-edge-installer.raw.sha256
sha256:
  description: SHA-256 of the image.
  returned: when the image exists
  type: str
  sample: 9b1c3d5e7f9a1b3c5d7e9f1a4f8e0f2b1c9d5a7e3b6c0d2e4f6a8b0c1d3e5f7a
size:
  description: Apparent size of the image in bytes (the disk size).
  returned: when the image exists
  type: int
  sample: 1279262720
allocated:
  description: Bytes the sparse image file really occupies.
  returned: when the image exists
  type: int
  sample: 402653184
min_root_volume_gib:
  description:
    - The smallest disk, in GiB (rounded up), the image works on - what an instance's root volume must at least be.
    - At first boot the recovery system adds the C(state) partition (three times the recovery partition plus 100 MiB,
      as C(01_reset.yaml) says) and the C(persistent) partition after the last partition; this counts the image's
      partitions, the state partition, a persistent partition of 10 GiB plus twice the content partition (the
      bundles are extracted onto it and imported into containerd) and the backup GPT. Read from the image's own
      partition table.
    - The C(edgeforge.artifacts.aws_cloud_image) role makes it the AMI's default root volume size.
  returned: when the image exists
  type: int
  sample: 14
partitions:
  description: The partition table (start and size in 512-byte sectors, GPT type GUID).
  returned: when built
  type: list
  elements: dict
  sample: [{"number": 1, "name": "efi", "start": 2048, "size": 131072, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"}]
# BEGIN GENERATED esp: scripts/gen-config-files.py
esp:
  description:
    - The EFI system partition's boot chain. With the installer image's signed shim and GRUB (Secure Boot machines
      accept them), C(signed) is true and C(shim)/C(grub) name their paths in the image; otherwise the builder's own
      unsigned GRUB is the loader and the task warns that Secure Boot machines refuse it.
  returned: when built
  type: dict
  sample: {"signed": true, "shim": "/usr/lib/shim/shimx64.efi.signed",
           "grub": "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
           "files": ["EFI/BOOT/bootx64.efi", "EFI/BOOT/grubx64.efi", "EFI/BOOT/grub.cfg", "EFI/ubuntu/grub.cfg"]}
# END GENERATED esp
inputs_digest:
  description: Digest of every input of the build.
  returned: unless check mode found the user data or the installer image missing
  type: str
  sample: sha256:5d7e9f1a4f8e0f2b1c9d5a7e3b6c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c
seconds:
  description: Build time in seconds.
  returned: when built
  type: float
  sample: 48.2
progress_log:
  description: File with timestamped progress lines of the build.
  returned: unless check mode found the user data or the installer image missing
  type: str
  sample: /home/user/edge/build/logs/raw_disk_image.progress.log
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.module import (
    DISK_ARGUMENT_SPEC, artifact_name, fail_or_predict, request_from_params, run_disk_build)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, DOCKER_IMPORT_ERROR, HAS_DOCKER)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule

# Role variables of earlier releases that the raw_disk_image role still reads, and what replaces them.
DEPRECATED_ROLE_VARIABLES = {
    "installer_iso_raw_image": "include the edgeforge.artifacts.raw_disk_image role instead",
    "installer_iso_raw_default_entry": "set raw_disk_image_default_entry (role edgeforge.artifacts.raw_disk_image)",
}


def deprecate_role_variables(module):
    for name in module.params["deprecated_variables"]:
        module.deprecate("The role variable %s is deprecated: %s" % (name, DEPRECATED_ROLE_VARIABLES.get(
            name, "see the edgeforge.artifacts.raw_disk_image role")), version="2.0.0",
            collection_name="edgeforge.artifacts")


def run(module):
    params = module.params
    deprecate_role_variables(module)
    build_dir = os.path.abspath(params["build_dir"])
    try:
        request = request_from_params("raw", params, "raw_name", bios_boot=params["bios_boot"],
                                      default_entry=params["default_entry"])
        result = run_disk_build(module, request, os.path.join(build_dir, "logs", "raw_disk_image.progress.log"))
    except EdgeforgeError as err:
        raw_path = os.path.join(build_dir, artifact_name(params, "raw_name") + ".raw")
        fail_or_predict(module, err, dict(raw_path=raw_path, sha256_path=raw_path + ".sha256"))
    return result


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            raw_name=dict(type="str"),
            default_entry=dict(type="str", default="recovery", choices=["recovery", "reset"]),
            bios_boot=dict(type="bool", default=True),
            deprecated_variables=dict(type="list", elements="str", default=[]),
        ),
        shared_specs=[DISK_ARGUMENT_SPEC, DOCKER_ARGUMENT_SPEC],
        required_libraries=[("docker", HAS_DOCKER, DOCKER_IMPORT_ERROR)],
    )
    module.run(run)


if __name__ == "__main__":
    main()
