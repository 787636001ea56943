# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smallest disk (an instance's root volume) the raw image works on (CONFORMANCE 6.6, B21).

At first boot the recovery system adds two partitions after the image's last one (``01_reset.yaml``, disk.oem):
``state`` of ``T = 3 x recovery partition + 100 MiB`` (the same disk.oem.state_size_mib that writes the file) and
``persistent`` with the rest of the disk. CanvOS's AMI keeps the image size as its root volume, so ``T`` does not fit
and its first boot fails. The minimum counts:

- the image's partitions up to the end of the last one (read from the image's own GPT);
- ``T``;
- a persistent partition of at least PERSISTENT_MIN_BYTES plus twice the content partition: persistent holds
  ``/usr/local`` and ``/var/lib`` (containerd's images, kubelet, etcd) of the Edge host, and the content bundles are
  extracted onto it and then imported into containerd (two copies); 10 GiB holds a single-node cluster's Kubernetes
  and Palette agent images with room for its workloads' first images;
- 1 MiB at the end for the backup GPT.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.gpt import MIB, mib_up, read_gpt
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.oem import state_size_mib

GIB = 1024 * MIB
PERSISTENT_MIN_BYTES = 10 * GIB
GPT_TAIL_BYTES = MIB


def min_root_volume_gib(partitions_end, recovery_bytes, content_bytes=0):
    """GiB (rounded up) of the smallest disk the image resets into: its partitions, state, persistent, backup GPT.

    ``partitions_end``: byte offset of the end of the image's last partition; ``recovery_bytes`` and
    ``content_bytes``: sizes of the recovery and content (0 when none) partitions.
    """
    state = state_size_mib(recovery_bytes) * MIB
    persistent = PERSISTENT_MIN_BYTES + 2 * int(content_bytes)
    total = mib_up(partitions_end) + state + persistent + GPT_TAIL_BYTES
    return -(-total // GIB)


def image_min_root_volume_gib(path):
    """min_root_volume_gib of a built raw image, from its own partition table."""
    parts = read_gpt(path)
    sizes = {p["name"]: p["end"] - p["start"] for p in parts}
    if "recovery" not in sizes:
        raise DiskBuildError("%s has no recovery partition" % path)
    return min_root_volume_gib(max(p["end"] for p in parts), sizes["recovery"], sizes.get("content", 0))
