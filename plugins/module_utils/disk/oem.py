# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the raw disk's OEM partition holds besides the user data (CONFORMANCE 6.4): the GRUB environment block that
sends the first boot to the recovery system, and the reset configuration that lays out the rest of the disk and
resets into the installed system. Our own text, with the function of the files AuroraBoot writes there."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MIB = 1024 * 1024
GRUBENV_BYTES = 1024
GRUBENV_HEADER = "# GRUB Environment Block\n"
# Menu entry ids of the raw disk's menu (disk.menu) that a GRUB environment may name.
ENTRY_IDS = {"recovery": "recovery", "reset": "statereset"}


def grubenv(**variables):
    """A GRUB environment block (what grub-editenv writes): the header, ``name=value`` lines, ``#`` up to 1024 bytes."""
    text = GRUBENV_HEADER + "".join("%s=%s\n" % (name, value) for name, value in sorted(variables.items()))
    data = text.encode("utf-8")
    if len(data) > GRUBENV_BYTES:
        raise ValueError("a GRUB environment block holds %d bytes" % GRUBENV_BYTES)
    return data + b"#" * (GRUBENV_BYTES - len(data))


def state_size_mib(recovery_partition_bytes):
    """The state partition made at first boot: three recovery images and 100 MiB (AuroraBoot's rule, 6.4)."""
    return (3 * recovery_partition_bytes + 100 * MIB) // MIB


def reset_config(state_mib):
    """01_reset.yaml: at first boot (recovery), add state and persistent partitions, then reset unattended."""
    return """\
# Expand the disk layout and reset (edgeforge.artifacts; read by the recovery system at first boot)
name: Expand disk layout and autoreset
stages:
  rootfs.before:
    - name: Add the state and persistent partitions after the last one
      layout:
        device:
          label: COS_RECOVERY
        add_partitions:
          - fsLabel: COS_STATE
            pLabel: state
            size: %d
            filesystem: ext2
          - fsLabel: COS_PERSISTENT
            pLabel: persistent
            size: 0
            filesystem: ext2
  network:
    - name: Let udev see the new partitions
      commands:
        - udevadm trigger
    - name: Reset into the installed system, unless told not to
      if: '[ -f /run/cos/recovery_mode ] && [ ! -e /oem/.autoreset.skip ]'
      commands:
        - kairos-agent --debug reset --unattended --reboot
  after-reset:
    - name: This configuration has done its work
      commands:
        - rm -f /oem/01_reset.yaml
""" % int(state_mib)
