#!/usr/bin/env bash
# Install the system packages edgeforge.artifacts and its test bed need (Debian 12 / Ubuntu 22.04+).
# Idempotent: packages already present are not reinstalled and apt is not asked at all when nothing is missing.
# Uses sudo only when not run as root. Keep this list in step with bindep.txt.
set -euo pipefail

PACKAGES=(
    # Python controller and the test venv
    python3 python3-venv python3-pip python3-dev
    git ca-certificates curl
    # Docker engine and the registries of the test bed
    docker.io docker-registry apache2-utils
    # Stand-in upstream images (debootstrap rootfs) and artifact builders
    debootstrap debian-archive-keyring
    xorriso squashfs-tools mtools dosfstools e2fsprogs fdisk
    grub-pc-bin grub-efi-amd64-bin grub-common
    zstd jq openssl
    # Linters: ansible-test sanity checks the shell scripts with shellcheck
    shellcheck
    # Boot checks of the built ISO and disk images
    qemu-system-x86 qemu-utils ovmf
    # Secure Boot tests: sbverify lists the signatures of the EFI binaries on the EFI partition
    sbsigntool
    # molecule test of build_host: SSH into the test container
    openssh-client
)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
else
    SUDO=(sudo)
fi

# The arm64 boot chain test fetches Debian's arm64 shim-signed and grub-efi-arm64-signed (apt-get download, then
# dpkg-deb -x; nothing is executed): apt needs the arm64 package lists for that.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "install-deps: adding the arm64 architecture to apt (package lists only)"
    "${SUDO[@]}" dpkg --add-architecture arm64
    "${SUDO[@]}" apt-get update -q
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    [[ "$pkg" == \#* ]] && continue
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} system packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
