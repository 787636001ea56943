# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raw disk -> stream-optimized VMDK (qemu-img), which holds only the allocated data of a mostly empty disk."""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, atomic_output


def subprocess_env():
    """The environment for helper commands: never the AWS credentials."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("AWS_")}


def convert_to_vmdk(raw_path, dest_path, log=None):
    """qemu-img raw -> stream-optimized VMDK, written atomically (a half-written file never has the final name)."""
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        raise EdgeforgeError("disk_format vmdk needs qemu-img (Debian/Ubuntu package qemu-utils)")
    with atomic_output(dest_path, 0o600) as tmp_path:
        cmd = [qemu_img, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw_path, tmp_path]
        if log:
            log("converting %s to a stream-optimized VMDK" % raw_path)
        proc = subprocess.run(  # nosec - fixed argument list, no shell
            cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
        )
        if proc.returncode != 0:
            raise EdgeforgeError(
                "qemu-img convert failed (rc %d): %s" % (proc.returncode, proc.stderr.decode("utf-8", "replace"))
            )
    return dest_path
