# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud extras of the raw disk's recovery system (CONFORMANCE 6.2, 6.6): the registration and reset boot entries,
the after-reset configuration, the script that takes the content partition and the one that grows the persistent
partition. Our own text, with the function of the files CanvOS adds to its installer image when IS_CLOUD_IMAGE=true.

They enter the recovery squashfs only (mksquashfs pseudo files), so one installer image serves the ISO and the raw
disk, and the exported root filesystem (or a given tree) is never changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import sha256_hex
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import q

# Kairos's menu sources the state partition's /grubmenu, copied from here after the reset (6.6 step 3).
GRUBMENU = """\
# Palette Edge boot entries of the installed system (edgeforge.artifacts).
# Kairos's boot menu includes this file; custom-post-reset.yaml makes "registration" the default entry.

menuentry "Palette eXtended Kubernetes Edge Reset" --id statereset {
    search --no-floppy --label COS_RECOVERY --set=root
    set label=COS_SYSTEM
    if [ -s /cOS/recovery.squashfs ]; then
        set img=/cOS/recovery.squashfs
        set recoverylabel=COS_RECOVERY
    else
        set img=/cOS/recovery.img
    fi
    loopback loop0 ($root)$img
    source (loop0)/etc/cos/bootargs.cfg
    linux (loop0)$kernel $kernelcmd ${extra_cmdline} ${extra_recovery_cmdline} kairos.reset
    initrd (loop0)$initramfs
}

menuentry "Palette eXtended Kubernetes Edge Registration" --id registration {
    search --no-floppy --label COS_STATE --set=root
    set img=/cOS/active.img
    set label=COS_ACTIVE
    loopback loop0 ($root)$img
    source (loop0)/etc/cos/bootargs.cfg
    linux (loop0)$kernel $kernelcmd ${extra_cmdline} ${extra_active_cmdline} stylus.registration
    initrd (loop0)$initramfs
}
"""

# Conditions of the after-reset items. Each item carries its own condition (CanvOS's first two items lose theirs, B10).
GRUB_HOST = ('[ ! -e /run/cos/uki_boot_mode ] && [ ! -e /run/cos/uki_install_mode ] && '
             '[ ! -f "${STYLUS_ROOT:-}/opt/spectrocloud/state/agent-mode" ]')
UKI_HOST = '[ -e /run/cos/uki_boot_mode ] && [ ! -f "${STYLUS_ROOT:-}/opt/spectrocloud/state/agent-mode" ]'

POST_RESET = """\
# Palette Edge cloud disk image: after the reset, and at every boot of the installed system (edgeforge.artifacts)
name: Palette Edge cloud image after reset
stages:
  after-reset:
    - name: Boot the registration entry from now on
      if: '%(grub)s'
      commands:
        - rm -f /oem/80_stylus.yaml
        - >-
          grub2-editenv /oem/grubenv set saved_entry=registration
          || grub-editenv /oem/grubenv set saved_entry=registration
    - name: Boot the registration entry from now on (UKI)
      if: '%(uki)s'
      commands:
        - rm -f /oem/80_stylus.yaml
        - kairos-agent bootentry --select registration
    - name: Prepare the persistent partition for the Palette agent
      if: '%(grub)s'
      commands:
        - if mountpoint -q /usr/local; then umount /usr/local; fi
        - mount "$(findfs PARTLABEL=persistent)" /usr/local
        - bash /opt/spectrocloud/scripts/content.sh
        - mkdir -p /usr/local/bin
        - ln -sf /opt/spectrocloud/bin/agent-provider-stylus /usr/local/bin/agent-provider-stylus
        - ln -sf /opt/spectrocloud/bin/palette-tui /usr/local/bin/palette-tui
        - ln -sf /opt/spectrocloud/bin/helm /usr/local/bin/helm
        - (umask 077; journalctl --no-pager > /usr/local/installer.log)
        - umount /usr/local
  network:
    - name: Take the content partition, then give the persistent partition the free space after it
      if: '[ -f /run/cos/active_mode ]'
      commands:
        - bash /opt/spectrocloud/scripts/cloud-content.sh
        - bash /opt/spectrocloud/scripts/cloud-extend-persistent.sh
""" % {"grub": GRUB_HOST, "uki": UKI_HOST}

SCRIPT_LOG = """\
log() {
    echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') $*" | tee -a "$LOG" >&2
}
fail() {
    log "error: $*"
    exit 1
}
mkdir -p "$(dirname "$LOG")"
"""

CLOUD_CONTENT = """\
#!/bin/bash
# Palette Edge cloud disk image (edgeforge.artifacts): take what the build put on the content partition (label
# COS_CONTENT) into the installed system - content bundles into the bundle store, the cluster definition, the edge
# custom configuration - then wipe and remove the partition. Run at the network stage of every boot of the installed
# system; without the partition there is nothing to do. On any error the partition stays, so the next boot retries.
set -uo pipefail

LOG=/var/log/stylus-cloud-content-script.log
MNT=/opt/spectrocloud/content
BUNDLES=/usr/local/spectrocloud/bundle
CLUSTERCONFIG=/usr/local/spectrocloud/clusterconfig
AGENT=/opt/spectrocloud/bin/palette-agent
%(log)s
part=$(blkid -L COS_CONTENT 2>/dev/null || true)
[ -n "$part" ] || exit 0
log "content partition: $part"
mkdir -p "$MNT" "$BUNDLES" "$CLUSTERCONFIG" || fail "cannot create $MNT, $BUNDLES, $CLUSTERCONFIG"
if ! mountpoint -q "$MNT"; then
    mount -t ext4 -o ro "$part" "$MNT" || fail "cannot mount $part on $MNT"
fi
trap 'umount "$MNT" 2>/dev/null || true' EXIT

shopt -s nullglob
for bundle in "$MNT"/bundle-content/*.zst; do
    log "extracting $(basename "$bundle")"
    if ! "$AGENT" content-extract --source "$bundle" --destination "$BUNDLES" >>"$LOG" 2>&1; then
        log "content-extract failed: $(basename "$bundle") copied as it is"
        cp "$bundle" "$BUNDLES/" || fail "cannot copy $bundle to $BUNDLES"
    fi
done
for bundle in "$MNT"/bundle-content/*.tar; do
    log "unpacking $(basename "$bundle")"
    tar -xf "$bundle" -C "$BUNDLES" || fail "cannot unpack $bundle into $BUNDLES"
done
for spc in "$MNT"/spc-config/*; do
    log "cluster definition $(basename "$spc")"
    cp "$spc" "$CLUSTERCONFIG/" || fail "cannot copy $spc to $CLUSTERCONFIG"
done
edge="$MNT/edge-config/.edge_custom_config.yaml"
if [ -f "$edge" ]; then
    oem=/oem
    if ! mountpoint -q /oem; then
        oem=$(mktemp -d) && mount "$(findfs PARTLABEL=oem)" "$oem" || fail "cannot mount the OEM partition"
    fi
    install -m 0600 "$edge" "$oem/.edge_custom_config.yaml" || fail "cannot copy the edge custom configuration"
    [ "$oem" = /oem ] || umount "$oem"
    log "edge custom configuration copied to the OEM partition"
fi

umount "$MNT" || fail "cannot unmount $MNT"
trap - EXIT
name=$(basename "$(readlink -f "$part")")
disk=/dev/$(lsblk -no PKNAME "/dev/$name" | head -n 1)
number=$(cat "/sys/class/block/$name/partition")
wipefs -a "$part" >>"$LOG" 2>&1 || fail "cannot wipe $part"
if command -v parted >/dev/null; then
    parted -s "$disk" rm "$number" >>"$LOG" 2>&1 || fail "cannot remove partition $number of $disk"
else
    sfdisk --delete "$disk" "$number" >>"$LOG" 2>&1 || fail "cannot remove partition $number of $disk"
fi
partx -d --nr "$number" "$disk" 2>/dev/null || true
udevadm settle 2>/dev/null || true
log "content partition $number of $disk removed"
""" % {"log": SCRIPT_LOG}

EXTEND_PERSISTENT = """\
#!/bin/bash
# Palette Edge cloud disk image (edgeforge.artifacts): grow the persistent partition (PARTLABEL persistent) over the
# free space that follows it on its disk - a root volume enlarged after launch - and its filesystem to the partition.
# Run after cloud-content.sh at every boot of the installed system; with no free space it only checks.
# The content partition's space lies before the state partition, not next to the persistent one: it cannot be given
# to the persistent partition without moving the state partition the running system lives on.
set -uo pipefail

LOG=/var/log/persistent-extension.log
%(log)s
part=$(findfs PARTLABEL=persistent 2>/dev/null || blkid -L COS_PERSISTENT 2>/dev/null || true)
[ -n "$part" ] || exit 0
name=$(basename "$(readlink -f "$part")")
disk_name=$(lsblk -no PKNAME "/dev/$name" | head -n 1)
disk=/dev/$disk_name
number=$(cat "/sys/class/block/$name/partition")
end=$(( $(cat "/sys/class/block/$name/start") + $(cat "/sys/class/block/$name/size") ))
# the backup GPT takes the last 33 sectors; less than 1 MiB free is not worth a change of the partition table
free=$(( $(cat "/sys/block/$disk_name/size") - 33 - end ))
if [ "$free" -ge 2048 ]; then
    log "growing partition $number of $disk by $free sectors"
    if command -v growpart >/dev/null; then
        growpart "$disk" "$number" >>"$LOG" 2>&1 || fail "growpart $disk $number failed"
    else
        sfdisk --relocate gpt-bak-std "$disk" >>"$LOG" 2>&1 || fail "cannot move the backup GPT of $disk to its end"
        echo ", +" | sfdisk --no-reread --no-tell-kernel -N "$number" "$disk" >>"$LOG" 2>&1 \\
            || fail "cannot grow partition $number of $disk"
        partx -u --nr "$number" "$disk" >>"$LOG" 2>&1 || fail "the kernel did not take the new size of $part"
    fi
fi
case "$(blkid -s TYPE -o value "$part")" in
    ext2|ext3|ext4)
        # grows the filesystem to the partition (mounted or not); says so and changes nothing when it fits already
        resize2fs "$part" >>"$LOG" 2>&1 || fail "resize2fs $part failed" ;;
    xfs)
        mnt=$(findmnt -no TARGET "$part" | head -n 1)
        [ -z "$mnt" ] || xfs_growfs "$mnt" >>"$LOG" 2>&1 || fail "xfs_growfs $mnt failed" ;;
    *)
        log "filesystem of $part not grown: unknown type" ;;
esac
""" % {"log": SCRIPT_LOG}

# (path in the recovery system, mode, text)
FILES = (
    ("/etc/kairos/branding/grubmenu.cfg", 0o644, GRUBMENU),
    ("/system/oem/custom-post-reset.yaml", 0o644, POST_RESET),
    ("/opt/spectrocloud/scripts/cloud-content.sh", 0o755, CLOUD_CONTENT),
    ("/opt/spectrocloud/scripts/cloud-extend-persistent.sh", 0o755, EXTEND_PERSISTENT),
)


def files_digest():
    """Digest of the extras (a change rebuilds the raw disk)."""
    return sha256_hex("".join("%s\0%o\0%s\0" % entry for entry in FILES))


def stage(directory):
    """Write the extras under ``directory`` (host path) by their base names; return the names."""
    os.makedirs(directory, exist_ok=True)
    names = []
    for path, mode, text in FILES:
        target = os.path.join(directory, os.path.basename(path))
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(target, mode)
        names.append(os.path.basename(path))
    return names


def _parents(path):
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def pseudo_definitions(rootfs, source_dir):
    """mksquashfs pseudo file definitions that add the extras to the squashfs of ``rootfs`` (host path), reading them
    from ``source_dir`` (as the build script sees it), and the files of the tree they replace (to exclude).

    Directories missing in the tree are created root-owned 0755; links are followed as the image sees them.
    """
    lines, excludes, made = [], [], set()
    for path, mode, _text in FILES:
        for parent in _parents(path):
            if parent not in made and not os.path.isdir(os.path.join(rootfs, parent.lstrip("/"))):
                lines.append("%s d 755 0 0" % q(parent))
                made.add(parent)
        if os.path.lexists(os.path.join(rootfs, path.lstrip("/"))):
            excludes.append(path.lstrip("/"))
        lines.append("%s f %o 0 0 cat %s" % (q(path), mode, q("%s/%s" % (source_dir, os.path.basename(path)))))
    return "\n".join(lines) + "\n", excludes
