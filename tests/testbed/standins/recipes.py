"""File trees of the small stand-in images (scratch images), shaped like the real ones at every path the build reads.

Each recipe returns {path in the image: (bytes, mode)} and names the CONFORMANCE items it mirrors
(/work/shared/spec/canvos-v4.10.0/CONFORMANCE.md). Contents are ours and tiny; the paths are the real ones.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile

STANDIN_NOTE = "edgeforge test-bed stand-in"
UPX_MARKER = b"UPX!"


def script(text):
    return ("#!/bin/sh\n# %s\n%s" % (STANDIN_NOTE, text)).encode("utf-8"), 0o755


def data(text, mode=0o644):
    return (text.encode("utf-8") if isinstance(text, str) else text), mode


def elf_program(message, padding=b""):
    """A static x86-64 ELF executable that prints ``message`` and exits 0; ``padding`` is loaded after the message.

    UPX refuses files under a few kilobytes: the padding makes a program it packs (4.9, ``upx -1``).
    """
    msg = message.encode("utf-8")
    base = 0x400000
    code = (b"\xb8\x01\x00\x00\x00"            # mov eax, 1 (write)
            b"\xbf\x01\x00\x00\x00"            # mov edi, 1 (stdout)
            b"\x48\x8d\x35\x10\x00\x00\x00"    # lea rsi, [rip+16] (the message after the code)
            + b"\xba" + struct.pack("<I", len(msg))  # mov edx, len
            + b"\x0f\x05"                      # syscall
            b"\xb8\x3c\x00\x00\x00"            # mov eax, 60 (exit)
            b"\x31\xff"                        # xor edi, edi
            b"\x0f\x05")                       # syscall
    entry = base + 64 + 56
    size = 64 + 56 + len(code) + len(msg) + len(padding)
    header = (b"\x7fELF\x02\x01\x01" + b"\x00" * 9
              + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0))
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + program + code + msg + padding


# -- Kairos provider images: edge/kairos-io/provider-<name>:<ver> (4.5) ------------------------------------------
def provider(name, version):
    """Scratch image: the agent provider under /system/providers and its scripts under /opt/<name>/scripts (4.5)."""
    return {
        "/system/providers/agent-provider-%s" % name: script(
            'echo "agent-provider-%s %s"\n' % (name, version)),
        "/opt/%s/scripts/import.sh" % name: script('echo "import images for %s"\n' % name),
    }


# -- stylus framework: edge/stylus-framework-linux-<arch>:<pe_version> (4.6, 5.1) --------------------------------
def stylus_framework(pe_version):
    branding = "Palette Edge %s (%s)\n" % (pe_version, STANDIN_NOTE)
    return {
        "/etc/kairos/branding/interactive_install_text": data("Palette Edge Interactive Installer %s\n" % pe_version),
        "/etc/kairos/branding/install_text": data(branding),
        "/etc/kairos/branding/recovery_text": data(branding),
        "/etc/kairos/branding/reset_text": data(branding),
        "/etc/kairos/80_stylus.yaml": data(
            "name: stylus\nstages:\n  boot:\n    - name: stylus stand-in %s\n      commands:\n"
            "        - /opt/spectrocloud/bin/palette-agent version\n" % pe_version),
        "/oem/stylus_config.yaml": data("stylus:\n  version: %s\n" % pe_version),
        "/etc/elemental/config.yaml": data("install:\n  firmware: efi\n  part-table: gpt\n"),
        "/opt/spectrocloud/bin/palette-agent": script('echo "palette-agent %s"\n' % pe_version),
        "/opt/spectrocloud/bin/agent-provider-stylus": script('echo "agent-provider-stylus %s"\n' % pe_version),
        "/usr/bin/luet": script('echo "luet (%s)"\n' % STANDIN_NOTE),
        "/etc/logrotate.d/stylus.conf": data("# stylus framework's own copy (the overlay's wins)\n", 0o600),
    }


# -- third-party image: third-party/spectro-third-party:4.8 (4.9) ------------------------------------------------
ETCDCTL_PADDING = "".join("etcdctl stand-in padding line %05d\n" % line for line in range(3000)).encode("ascii")


def etcdctl_version_line(kind, arch):
    """What the stand-in etcdctl prints when run (any arguments, such as ``--version``)."""
    return "etcdctl version: 3.5.13 (%s, %s %s)\n" % (STANDIN_NOTE, kind, arch)


def third_party():
    """etcdctl unpacked, as in the real image: CanvOS packs it at build time, and upx refuses a packed file (4.9)."""
    files = {}
    for kind in ("palette", "vertex"):
        for arch in ("amd64",):
            files["/binaries/etcdctl/latest/%s/%s/etcdctl" % (kind, arch)] = (
                elf_program(etcdctl_version_line(kind, arch), ETCDCTL_PADDING), 0o755)
    files["/binaries/luet/latest/amd64/luet"] = (elf_program("luet (%s)\n" % STANDIN_NOTE), 0o755)  # unpacked too
    return files


# -- CanvOS's Alpine helper: edge/canvos/alpine:3.20 (ALPINE_IMG, 2.1, 4.9) --------------------------------------
def alpine_helper():
    """What the stand-in adds to Debian's upx image: a note saying what it stands in for (upx and /bin/sh come
    from that image; the build reads nothing else of the helper)."""
    return {"/etc/edgeforge-standin": data(
        "%s of CanvOS's Alpine helper edge/canvos/alpine:3.20: Debian's upx-ucl and /bin/sh, not Alpine\n"
        % STANDIN_NOTE)}


# -- Kubernetes payloads: edge/luet-repo-<amd|arm>:<name>-k8s-<version> (4.8) ------------------------------------
# A real package tree has parts under lib/ and usr/, which is what breaks a merged-/usr base when copied naively.
def payload(dist, version, package_version):
    """What `luet install k8s/<dist>@<version> --system-target /output` leaves (before /var/cache is dropped)."""
    version = version.lstrip("v")
    service = {"k3s": "k3s", "rke2": "rke2-server", "canonical": "k8sd"}.get(dist, "kubelet")
    files = {
        "/usr/bin/kubelet": script('echo "Kubernetes v%s"\n' % version),
        "/usr/bin/kubectl": script('echo "Client Version: v%s"\n' % version),
        "/lib/systemd/system/%s.service" % service: data(
            "[Unit]\nDescription=%s %s (%s)\n[Service]\nExecStart=/usr/bin/kubelet\n"
            % (dist, version, STANDIN_NOTE)),
        "/lib/modules-load.d/k8s.conf": data("overlay\nbr_netfilter\n"),
        "/etc/sysctl.d/99-k8s.conf": data("net.ipv4.ip_forward = 1\n"),
        "/opt/spectrocloud/k8s-version": data("%s %s\n" % (dist, package_version)),
        "/var/cache/luet/packages/k8s-%s-%s.package.yaml" % (dist, package_version): data(
            "name: %s\ncategory: k8s\nversion: %s\n" % (dist, package_version)),
    }
    if dist in ("k3s", "rke2"):
        files["/usr/bin/%s" % dist] = script('echo "%s version v%s"\n' % (dist, package_version))
    if dist in ("kubeadm", "kubeadm-fips"):
        files["/usr/bin/kubeadm"] = script('echo "kubeadm version v%s"\n' % version)
    if dist == "nodeadm":
        files.update(nodeadm_util(version))
    return files


def nodeadm_util(version):
    """nodeadm stand-in (4.10): records its calls and leaves what `install -p iam-ra|ssm` leaves, with a real .deb."""
    log = "/var/log/edgeforge-standin-nodeadm.log"
    return {
        "/opt/nodeadmutil/bin/nodeadm": script(
            'echo "nodeadm $*" >> %s\n'
            'case "$3" in\n'
            '  iam-ra) mkdir -p /usr/local/bin && cp /opt/nodeadmutil/share/aws_signing_helper /usr/local/bin/ ;;\n'
            '  ssm) mkdir -p /opt/ssm/%s /usr/local/bin\n'
            '       cp /opt/nodeadmutil/share/amazon-ssm-agent.deb /opt/ssm/%s/\n'
            '       cp /opt/nodeadmutil/share/aws-iam-authenticator /usr/local/bin/ ;;\n'
            '  *) echo "nodeadm stand-in: unknown package $3" >&2; exit 2 ;;\n'
            'esac\n' % (log, version, version)),
        "/opt/nodeadmutil/share/aws_signing_helper": script('echo "aws_signing_helper"\n'),
        "/opt/nodeadmutil/share/aws-iam-authenticator": script('echo "aws-iam-authenticator"\n'),
        "/opt/nodeadmutil/share/amazon-ssm-agent.deb": (ssm_agent_deb(), 0o644),
    }


def ssm_agent_deb():
    """A real (tiny) Debian package named amazon-ssm-agent holding its systemd unit, built with dpkg-deb."""
    with tempfile.TemporaryDirectory() as work:
        root = os.path.join(work, "pkg")
        os.makedirs(os.path.join(root, "DEBIAN"))
        os.makedirs(os.path.join(root, "usr", "lib", "systemd", "system"))
        with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
            handle.write("Package: amazon-ssm-agent\nVersion: 3.3.0-1\nArchitecture: all\n"
                         "Maintainer: edgeforge test bed <none@example.invalid>\n"
                         "Description: SSM agent (%s)\n" % STANDIN_NOTE)
        with open(os.path.join(root, "usr", "lib", "systemd", "system", "amazon-ssm-agent.service"), "w",
                  encoding="utf-8") as handle:
            handle.write("[Unit]\nDescription=amazon-ssm-agent (%s)\n[Service]\nExecStart=/bin/true\n"
                         % STANDIN_NOTE)
        out = os.path.join(work, "amazon-ssm-agent.deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out], check=True,
                       capture_output=True)
        with open(out, "rb") as handle:
            return handle.read()


# -- recording package manager for the openSUSE stand-in (3.4, 3.5) -----------------------------------------------
ZYPPER_LOG = "/var/log/edgeforge-standin-zypper.log"


def zypper_recorder():
    """A `zypper` that records each call and succeeds: the openSUSE stand-in is Debian underneath."""
    return {"/usr/bin/zypper": script('echo "zypper $*" >> %s\n' % ZYPPER_LOG)}


# -- recording package managers for the update_kernel steps (3.3c, 3.4, 3.6, 4.2, 4.3) ----------------------------
PACKAGES_LOG = "/var/log/edgeforge-standin-packages.log"
# Ubuntu kernel metapackages the recording dpkg-query reports as installed (the stand-in is Debian underneath, so
# none exists there): the holds of 3.3c then have something to hold, for every Ubuntu release the tags name.
UBUNTU_KERNEL_METAS = tuple(
    "%s-%s" % (name, release) for release in ("20.04", "22.04", "24.04")
    for name in ("linux-image-generic-hwe", "linux-headers-generic-hwe", "linux-generic-hwe")
) + ("linux-image-generic", "linux-headers-generic", "linux-generic")


def package_recorders():
    """apt-get, apt-mark, dpkg-query, zypper, yum and dracut that record their calls and succeed.

    Ubuntu's kernel packages, zypper and yum cannot run on the Debian stand-in: these record what the build asks of
    them (in /usr/local/bin, ahead of Debian's own on PATH). dpkg-query answers "installed" for the Ubuntu kernel
    metapackages and asks the real dpkg database for everything else. dracut only records: the real initrd
    regeneration is checked on the plain base stand-in, and skipping it keeps this image's builds to seconds.
    """
    record = 'echo "$(basename "$0") $*" >> %s\n' % PACKAGES_LOG
    names = ("apt-get", "apt-mark", "zypper", "yum", "dracut")
    files = {"/usr/local/bin/%s" % name: script(record) for name in names}
    files["/usr/local/bin/dpkg-query"] = script(
        record
        + 'for last in "$@"; do :; done\n'
        + 'case " %s " in\n' % " ".join(UBUNTU_KERNEL_METAS)
        + '  *" $last "*) case "$*" in *Status*) echo "install ok installed"; exit 0 ;; esac ;;\n'
        + 'esac\n'
        + 'exec /usr/bin/dpkg-query "$@"\n')
    return files
