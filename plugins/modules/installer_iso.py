#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: installer_iso
short_description: Build the Palette Edge installer ISO from the installer image
version_added: 0.1.0
description:
  - Builds what CanvOS's C(+iso) target builds, C(build/<ISO_NAME>.iso) and C(build/<ISO_NAME>.iso.sha256), without
    Earthly and without privileged containers.
  - The root filesystem of the installer image (C(palette-installer-image:<tag>)) is exported through the Docker
    engine, squashed (zstd, all cores) and packed with GRUB into an ISO in the layout CanvOS's ISO tool writes -
    volume label C(COS_LIVE) with Joliet, C(/rootfs.squashfs), C(/boot/kernel), C(/boot/initrd),
    C(/boot/grub2/grub.cfg), El Torito C(/boot/x86_64/loader/eltorito.img) and the EFI image C(/boot/uefi.img)
    (FAT C(COS_GRUB)) - bootable from BIOS and UEFI firmware and, written to a USB stick, as a hybrid MBR/GPT disk.
  - The GRUB menu is CanvOS's, token by token - C(Palette eXtended Kubernetes Edge Installer), C(... (manual)) and
    C(Palette Edge Interactive Installer), a 5 second menu, a hidden C(Text mode) entry on key C(t) under UEFI;
    C(force_interactive_install) makes the third the default and C(debug) adds
    C(rd.immucore.debug console=tty0 rd.debug) to every entry. It also shows on a serial console when there is one.
  - The user data becomes C(/files-iso/config.yaml) (where Kairos finds it on the medium); content bundles
    (C(*.zst)) go to C(/opt/spectrocloud/content/) cut into 3 GB parts C(<name>.zst_part00), C(_part01) ... (every
    bundle, even a small one; the parts are mapped straight from the bundle, so no split copies are written);
    C(clusterconfig) becomes C(/opt/spectrocloud/clusterconfig/spc.tgz), C(edge_custom_config)
    C(/.edge_custom_config.yaml), and C(local_ui) is extracted into the root filesystem's C(/opt/spectrocloud/).
  - The tools run in the disk builder image, which the module builds from its own Dockerfile
    (C(files/builder/Dockerfile) of the collection; Debian with xorriso, GRUB, mtools, squashfs-tools, dosfstools,
    e2fsprogs, fdisk, openssl) and reuses while its recipe label matches.
  - The ISO is written under a temporary name, hashed as it is written, and renamed when complete; the C(.sha256)
    file beside it (C(sha256sum) format) is checked after it is written. A stamp of the inputs digest is kept beside it
    (C(.<ISO_NAME>.iso.edgeforge-inputs)); when the inputs are unchanged and the ISO still matches its checksum,
    nothing is rebuilt (changed=false).
  - Progress lines go to C(<build_dir>/logs/installer_iso.progress.log) while the build runs; the full tool output to
    C(<build_dir>/logs/<ISO_NAME>.iso.build.log).
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.disk_image
  - edgeforge.artifacts.docker
  - edgeforge.artifacts.attributes
options:
  iso_name:
    description:
      - Name of the ISO without C(.iso). Overrides C(config.iso_name); default V(palette-edge-installer).
      - Letters, digits, V(.), V(_) and V(-) only.
    type: str
  force_interactive_install:
    description:
      - Make C(Palette Edge Interactive Installer) the default menu entry. Overrides C(config.force_interactive_install).
    type: bool
notes:
  - C(builder=auroraboot) - to use Kairos's own tool instead, run what CanvOS runs on a host that can pull it -
    C(docker run --privileged -v /var/run/docker.sock:/var/run/docker.sock -v $PWD/build:/output
    quay.io/kairos/auroraboot:<version> build-iso --overlay-iso /overlay --output /output docker:<installer image>).
    That path is not tested here (the image cannot be pulled offline); the module fails with this hint.
  - Run the result with M(edgeforge.artifacts.boot_check) to see it boot in QEMU (BIOS and UEFI) before flashing.
seealso:
  - module: edgeforge.artifacts.raw_disk_image
  - module: edgeforge.artifacts.boot_check
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the ISO would be built (inputs changed) without exporting or building anything.
      - When the user data or the installer image is missing - an earlier step of the same check-mode run would
        have made them - the ISO is reported as to be built, with a warning, instead of failing.
  diff_mode:
    support: full
    details: Shows the old and new checksum of the ISO.
"""

EXAMPLES = r"""
- name: Build the installer ISO
  edgeforge.artifacts.installer_iso:
    config: "{{ build_config_plan.config }}"
    installer_image: "{{ build_config_plan.installer_image }}"
    user_data: "{{ user_data_path }}"
    content_dir: [content-3a1f9e]
    build_dir: "{{ playbook_dir }}/../build"
  register: iso

- name: Show its checksum
  ansible.builtin.debug:
    msg: "{{ iso.iso_path }} sha256 {{ iso.sha256 }}"
"""

RETURN = r"""
iso_path:
  description: Absolute path of the ISO.
  returned: always
  type: str
  sample: /home/user/edge/build/palette-edge-installer.iso
sha256_path:
  description: Path of the checksum file (C(sha256sum -c) format).
  returned: always
  type: str
  sample: /home/user/edge/build/palette-edge-installer.iso.sha256
sha256:
  description: SHA-256 of the ISO (absent in check mode when it would be built).
  returned: when the ISO exists
  type: str
  sample: 4f8e0f2b1c9d5a7e3b6c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a
size:
  description: Size of the ISO in bytes.
  returned: when the ISO exists
  type: int
  sample: 1438646272
content_parts:
  description: Content bundle parts in the ISO (C(/opt/spectrocloud/content/<name>)) with their sizes.
  returned: unless check mode found the user data or the installer image missing
  type: list
  elements: dict
  sample: [{"name": "core-bundle.tar.zst_part00", "size": 3000000000}, {"name": "core-bundle.tar.zst_part01", "size": 221225472}]
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
  description: Digest of every input of the build (the stamp compared for idempotency).
  returned: unless check mode found the user data or the installer image missing
  type: str
  sample: sha256:22e7adb5e1f3acddb022500929bf7af4dbfca3d7b8d1785b3b49e5603dfdca05
seconds:
  description: Build time in seconds.
  returned: when built
  type: float
  sample: 61.4
kernel:
  description: Kernel path inside the installer image that became C(/boot/kernel).
  returned: when built
  type: str
  sample: /boot/vmlinuz
initrd:
  description: Initrd path inside the installer image that became C(/boot/initrd).
  returned: when built
  type: str
  sample: /boot/initrd
build_files:
  description: The file names in the build directory after the build (what C(ls build/) shows).
  returned: always
  type: list
  elements: str
  sample: [palette-edge-installer.iso, palette-edge-installer.iso.sha256]
progress_log:
  description: File with timestamped progress lines of the build.
  returned: unless check mode found the user data or the installer image missing
  type: str
  sample: /home/user/edge/build/logs/installer_iso.progress.log
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.module import (
    DISK_ARGUMENT_SPEC, artifact_name, fail_or_predict, pick, request_from_params, run_disk_build)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, DOCKER_IMPORT_ERROR, HAS_DOCKER)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def build_files(build_dir):
    try:
        return sorted(name for name in os.listdir(build_dir) if not name.startswith("."))
    except OSError:
        return []


def run(module):
    params = module.params
    build_dir = os.path.abspath(params["build_dir"])
    try:
        request = request_from_params("iso", params, "iso_name", force_interactive_install=bool(
            pick(params, params["config"] or {}, "force_interactive_install")))
        result = run_disk_build(module, request, os.path.join(build_dir, "logs", "installer_iso.progress.log"))
    except EdgeforgeError as err:
        iso_path = os.path.join(build_dir, artifact_name(params, "iso_name") + ".iso")
        fail_or_predict(module, err, dict(iso_path=iso_path, sha256_path=iso_path + ".sha256",
                                          build_files=build_files(build_dir)))
    result["build_files"] = build_files(build_dir)
    return result


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            iso_name=dict(type="str"),
            force_interactive_install=dict(type="bool"),
        ),
        shared_specs=[DISK_ARGUMENT_SPEC, DOCKER_ARGUMENT_SPEC],
        required_libraries=[("docker", HAS_DOCKER, DOCKER_IMPORT_ERROR)],
    )
    module.run(run)


if __name__ == "__main__":
    main()
