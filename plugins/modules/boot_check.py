#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: boot_check
short_description: Boot an installer ISO or a raw disk image in QEMU and wait for a line on its serial console
version_added: 0.1.0
description:
  - Proves an image boots before anyone flashes it - starts QEMU with BIOS (SeaBIOS) or UEFI (OVMF) firmware, the ISO
    as a CD-ROM or the raw image as a disk (in snapshot mode, so the file and its checksum are never changed), sends
    the serial console to a log file and waits a bounded time for O(marker).
  - With O(secure_boot=true) the firmware is OVMF's Secure Boot build with Microsoft's keys enrolled, so the check
    shows whether a machine with Secure Boot enabled starts the image (the signed shim and GRUB of the image's own
    distribution) or refuses it.
  - Fails with the last console lines when the marker does not appear in time or QEMU stops early. QEMU is always
    stopped when the module returns.
  - Changes nothing (changed is always false); runs in check mode too.
author:
  - edgeforge.artifacts contributors (@edgeforge)
extends_documentation_fragment:
  - edgeforge.artifacts.attributes
options:
  path:
    description:
      - The ISO (booted as a CD-ROM) or raw disk image (booted as a virtio disk).
    type: path
    required: true
  firmware:
    description:
      - V(bios) (SeaBIOS) or V(uefi) (OVMF).
      - Default - V(uefi) when O(secure_boot=true), else V(bios).
    type: str
    choices: [bios, uefi]
  marker:
    description:
      - Text to wait for on the serial console (ttyS0).
      - The default is the getty login prompt, which a Kairos system (installer or installed) prints on the serial
        console once it has booted, as its kernel command line has C(console=ttyS0). Use a line your user data prints
        to wait for a later point.
    type: str
    default: "login:"
  timeout:
    description:
      - Seconds to wait for the marker. Software emulation (TCG) needs about 45 seconds for a small image on an idle
        machine; allow 120-180 on a busy one.
    type: int
    default: 180
  accel:
    description:
      - V(tcg) (software emulation, works everywhere, the default), V(kvm), or V(auto) (KVM when /dev/kvm is usable and
        a short probe succeeds, else TCG). Some virtual machines offer a /dev/kvm on which guests hang; keep V(tcg) there.
    type: str
    choices: [tcg, kvm, auto]
    default: tcg
  media:
    description:
      - How the image is attached; V(auto) picks V(cdrom) for C(.iso) files and V(disk) otherwise.
    type: str
    choices: [auto, cdrom, disk]
    default: auto
  memory_mb:
    description:
      - Guest memory in MiB.
    type: int
    default: 2048
  cpus:
    description:
      - Guest CPUs.
    type: int
    default: 2
  log_path:
    description:
      - Where to write the serial console log. Default - beside the image, C(<image>.<firmware>-boot.log)
        (C(<image>.uefi-secureboot-boot.log) with O(secure_boot=true)).
    type: path
  secure_boot:
    description:
      - Boot with UEFI Secure Boot enforced - OVMF's Secure Boot build (O(ovmf_code)) with Microsoft's keys enrolled in
        its variables (O(ovmf_vars)), on a QEMU q35 machine with SMM and secure flash
        (C(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on)).
      - The firmware then starts only loaders signed by a key it trusts (a distribution's shim signed by Microsoft's
        UEFI CA); an unsigned loader fails with C(Access Denied) on the console and the marker never appears.
      - Implies O(firmware=uefi); O(firmware=bios) is refused.
    type: bool
    default: false
  ovmf_code:
    description:
      - OVMF firmware code file.
      - Default without O(secure_boot) - the first installed of C(/usr/share/OVMF/OVMF_CODE.fd) and its variants.
      - Default with O(secure_boot=true) - C(/usr/share/OVMF/OVMF_CODE_4M.secboot.fd) (Debian package ovmf).
    type: path
  ovmf_vars:
    description:
      - OVMF variables template (copied for each boot, never written).
      - Default without O(secure_boot) - the one matching O(ovmf_code).
      - Default with O(secure_boot=true) - C(/usr/share/OVMF/OVMF_VARS_4M.ms.fd) (Secure Boot on, Microsoft's KEK and
        db keys enrolled; Debian package ovmf).
    type: path
requirements:
  - qemu-system-x86_64 (Debian package qemu-system-x86)
  - OVMF for UEFI (Debian package ovmf)
attributes:
  check_mode:
    support: full
    details: The boot check changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
seealso:
  - module: edgeforge.artifacts.installer_iso
  - module: edgeforge.artifacts.raw_disk_image
"""

EXAMPLES = r"""
- name: Boot the installer ISO under UEFI firmware
  edgeforge.artifacts.boot_check:
    path: build/palette-edge-installer.iso
    firmware: uefi
    timeout: 240

- name: Check that a machine with Secure Boot enabled starts the raw disk image
  edgeforge.artifacts.boot_check:
    path: build/kairos.raw
    secure_boot: true
    timeout: 600

- name: Wait for a line the user data prints instead of the login prompt
  edgeforge.artifacts.boot_check:
    path: build/palette-edge-installer.iso
    marker: "edge host ready"
"""

RETURN = r"""
seconds:
  description: Seconds from starting QEMU to the marker.
  returned: success
  type: float
  sample: 44.7
marker_line:
  description: The console line holding the marker.
  returned: success
  type: str
  sample: "edge-host login:"
log_path:
  description: The serial console log.
  returned: always
  type: str
  sample: /home/user/edge/build/palette-edge-installer.iso.uefi-boot.log
accel:
  description: The acceleration used.
  returned: success
  type: str
  sample: tcg
firmware:
  description: The firmware used.
  returned: success
  type: str
  sample: uefi
secure_boot:
  description: Whether the firmware enforced Secure Boot.
  returned: success
  type: bool
  sample: true
media:
  description: How the image was attached.
  returned: success
  type: str
  sample: cdrom
command:
  description: The QEMU command line.
  returned: success
  type: list
  elements: str
  sample: [qemu-system-x86_64, -accel, tcg, -machine, pc, -m, "2048"]
"""

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.boot_check import boot_check
from ansible_collections.edgeforge.artifacts.plugins.module_utils.module_base import EdgeforgeModule


def run(module):
    params = module.params
    firmware = params["firmware"] or ("uefi" if params["secure_boot"] else "bios")
    kind = firmware + ("-secureboot" if params["secure_boot"] else "")
    log_path = params["log_path"] or "%s.%s-boot.log" % (os.path.abspath(params["path"]), kind)
    try:
        result = boot_check(params["path"], firmware=firmware, marker=params["marker"],
                            timeout=params["timeout"], accel=params["accel"], media=params["media"],
                            memory_mb=params["memory_mb"], cpus=params["cpus"], log_path=log_path,
                            ovmf_code=params["ovmf_code"], ovmf_vars=params["ovmf_vars"],
                            secure_boot=params["secure_boot"], progress=module.log)
    except EdgeforgeError as err:
        module.fail_from(err, log_path=log_path)
    return dict(result, changed=False)


def main():
    module = EdgeforgeModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            firmware=dict(type="str", choices=["bios", "uefi"]),
            marker=dict(type="str", default="login:"),
            timeout=dict(type="int", default=180),
            accel=dict(type="str", default="tcg", choices=["tcg", "kvm", "auto"]),
            media=dict(type="str", default="auto", choices=["auto", "cdrom", "disk"]),
            memory_mb=dict(type="int", default=2048),
            cpus=dict(type="int", default=2),
            log_path=dict(type="path"),
            ovmf_code=dict(type="path"),
            ovmf_vars=dict(type="path"),
            secure_boot=dict(type="bool", default=False),
        ),
    )
    module.run(run)


if __name__ == "__main__":
    main()
