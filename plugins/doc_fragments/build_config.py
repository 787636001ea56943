# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The flat build-configuration options: the CanvOS ``.arg`` names in lower case."""

    DOCUMENTATION = r"""
options:
  custom_tag:
    description:
      - Suffix of the provider image tags and of the installer image tag (CanvOS C(CUSTOM_TAG)).
      - Lowercase letters, digits and V(-) (not at either end), for example V(palette-learn).
      - An empty string gives tags without a suffix (C(k3s-1.27.2-v4.4.12)); a warning then reminds you that the
        stock BYOOS pack's C(system.uri) appends C(-<customTag>), so use the C(system.uri) of the returned manifest.
      - When not set, V(demo) (the CanvOS template value).
    type: str
  image_registry:
    description:
      - Registry (and optional namespace) the provider images are named for (CanvOS C(IMAGE_REGISTRY)).
      - C(host[:port][/namespace...]) following DNS rules, lowercase, without C(http://) or C(https://) and without
        underscores, for example V(ttl.sh), V(docker.io/myuser) or V(registry.example.com:5000/edge).
      - When not set, V(ttl.sh). Images pushed to ttl.sh expire after 24 hours by default.
    type: str
  image_repo:
    description:
      - Repository name of the provider images (CanvOS C(IMAGE_REPO)); Docker repository name rules (lowercase).
      - When not set, the value of O(os_distribution).
    type: str
  os_distribution:
    description:
      - Operating system family of the images (CanvOS C(OS_DISTRIBUTION)).
      - V(ubuntu) and V(opensuse-leap) have a default base image; V(rhel) and V(sles) need O(base_image).
      - When not set, V(ubuntu).
    type: str
    choices: [ubuntu, opensuse-leap, rhel, sles]
  os_version:
    description:
      - Operating system version (CanvOS C(OS_VERSION)).
      - V(ubuntu) accepts V(20), V(20.04), V(22), V(22.04) and V(24.04) (V(20) and V(22) become V(20.04) and
        V(22.04)); V(opensuse-leap) accepts V(15.6); V(rhel) and V(sles) take the numeric version of the base image
        and require it.
      - When not set, V(22.04) for Ubuntu and V(15.6) for openSUSE Leap.
    type: str
  k8s_distribution:
    description:
      - Kubernetes distribution of the provider images (CanvOS C(K8S_DISTRIBUTION)).
      - An empty value is refused (CanvOS silently builds nothing).
      - When not set, V(k3s).
    type: str
    choices: [k3s, kubeadm, kubeadm-fips, rke2, nodeadm, canonical]
  k8s_version:
    description:
      - Kubernetes version(s) to build provider images for (CanvOS C(K8S_VERSION)) - one C(x.y.z) string, a
        comma-separated string or a list (the build matrix).
      - Each version must be listed for O(k8s_distribution) in the versions table (the shipped one or
        O(k8s_versions_file)).
      - When not set or empty, every version listed for the distribution (one provider image of about 4-5 GB each).
    type: raw
  arch:
    description:
      - Target CPU architecture (CanvOS C(ARCH)). When not set, V(amd64).
    type: str
    choices: [amd64, arm64]
  iso_name:
    description:
      - File name of the installer ISO without C(.iso) (CanvOS C(ISO_NAME)); lowercase letters, digits, V(-) and V(_).
      - When not set, V(palette-edge-installer).
    type: str
  base_image:
    description:
      - Base OS image (a Kairos core image) to build from (CanvOS C(BASE_IMAGE)), a full reference in a registry.
      - Required for V(rhel), V(sles) and FIPS builds. When not set for Ubuntu,
        C(<spectro_pub_repo>/edge/kairos-ubuntu:<os_version>-core-<arch>-generic-<kairos_version>); for openSUSE Leap
        C(<spectro_pub_repo>/edge/kairos-opensuse:leap-<os_version>-core-<arch>-generic-<kairos_version>).
    type: str
  pe_version:
    description:
      - Palette Edge agent version (CanvOS C(PE_VERSION)), a release tag C(vX.Y.Z); it is part of every provider image
        tag and must match what your Palette instance runs (see M(edgeforge.artifacts.palette_agent_version)).
      - A version without the V(v) prefix (as Palette prints it) gets one.
      - When not set, V(v4.9.21) (the CanvOS v4.10.0 release).
    type: str
  kairos_version:
    description:
      - Kairos version of the default base image (CanvOS C(KAIROS_VERSION)). When not set, V(v4.0.4).
    type: str
  spectro_pub_repo:
    description:
      - Registry path the upstream Spectro Cloud images come from (CanvOS C(SPECTRO_PUB_REPO)); point it at a mirror
        to build air-gapped.
      - When not set, V(us-docker.pkg.dev/palette-images); FIPS builds (O(fips_enabled) or V(kubeadm-fips)) then use
        V(us-docker.pkg.dev/palette-images-fips).
    type: str
  spectro_luet_repo:
    description:
      - Registry path of the luet repository images that hold the Kubernetes packages (CanvOS C(SPECTRO_LUET_REPO)).
      - When not set, C(<spectro_pub_repo>/edge) with the O(spectro_pub_repo) you set; FIPS builds keep it on
        V(us-docker.pkg.dev/palette-images/edge), as CanvOS does.
    type: str
  fips_enabled:
    description:
      - Build FIPS-compliant artifacts (CanvOS C(FIPS_ENABLED)). Requires O(base_image) and excludes O(update_kernel).
      - When not set, V(false).
    type: bool
  update_kernel:
    description:
      - Upgrade the kernel of the base image to the latest upstream one (CanvOS C(UPDATE_KERNEL)).
      - When not set, V(false).
    type: bool
  http_proxy:
    description:
      - HTTP proxy URL for the build (not for the host), for example V(http://proxy.example.com:3128)
        (CanvOS C(HTTP_PROXY)).
      - May carry credentials (V(http://user:password@proxy:3128)); the password is masked in every returned value,
        diff and log line.
    type: str
  https_proxy:
    description:
      - HTTPS proxy URL for the build (CanvOS C(HTTPS_PROXY)); same rules and masking as O(http_proxy).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains, IP addresses or CIDRs the build reaches without the proxy (CanvOS C(NO_PROXY)).
    type: str
  proxy_cert_paths:
    description:
      - CA certificate files (PEM) of the proxy, trusted during the build (CanvOS C(certs/) directory).
      - Each file must exist; a missing file is an error (CanvOS would silently skip it).
    type: list
    elements: path
  proxy_cert_path:
    description:
      - Deprecated single proxy CA file (CanvOS C(PROXY_CERT_PATH)); added to O(proxy_cert_paths) with a deprecation
        warning. Use O(proxy_cert_paths).
    type: path
  clusterconfig:
    description:
      - Cluster definition (C(spc.tgz)) to embed in the installer ISO (CanvOS C(CLUSTERCONFIG)).
      - Empty by default; a path you give must exist (CanvOS ignores a missing file silently).
    type: path
  edge_custom_config:
    description:
      - Edge custom configuration file, for example the content-signing public key (CanvOS C(EDGE_CUSTOM_CONFIG)).
      - Empty by default; a path you give must exist.
    type: path
  cis_hardening:
    description:
      - Apply the CIS hardening script to the base image (CanvOS C(CIS_HARDENING)); Ubuntu on amd64 only.
      - When not set, V(false).
    type: bool
  disable_selinux:
    description:
      - Disable SELinux on the kernel command line of the images (CanvOS C(DISABLE_SELINUX)). When not set, V(true).
    type: bool
  force_interactive_install:
    description:
      - Make the interactive installer the default boot entry of the ISO (CanvOS C(FORCE_INTERACTIVE_INSTALL)).
      - When not set, V(false).
    type: bool
  debug:
    description:
      - Verbose ISO build and kernel debug flags (CanvOS C(DEBUG)). When not set, V(false).
    type: bool
  region:
    description:
      - AWS region of the S3 bucket and of the AMI (CanvOS C(REGION)), for example V(us-east-1).
    type: str
  s3_bucket:
    description:
      - S3 bucket the raw disk image is uploaded to before the AMI import (CanvOS C(S3_BUCKET)); S3 bucket naming rules.
    type: str
  s3_key:
    description:
      - S3 object key of the uploaded raw image (CanvOS C(S3_KEY)); letters, digits and the characters ! - _ . * ' ( ) /, at most 1024
        bytes. Empty lets the AWS import choose its default.
    type: str
  ami_name:
    description:
      - Name of the registered AMI; 3-128 letters, digits, spaces and the characters ( ) [ ] . / - ' @ _. Empty lets the AWS import use
        the S3 key.
    type: str
  k8s_versions_file:
    description:
      - JSON file in the shape of CanvOS C(k8s_version.json) (distribution to list of C(x.y.z) versions) that replaces
        the versions table shipped with the collection.
    type: path
  provider_source_image:
    description:
      - Image holding the Kairos agent provider for the distribution.
      - When not set, C(<spectro_pub_repo>/edge/kairos-io/provider-<dist>:<version>) with the provider versions of the
        CanvOS v4.10.0 release (V(kubeadm-fips) uses the kubeadm provider).
    type: str
  stylus_framework_image:
    description:
      - Image holding the Palette agent (stylus) framework files.
      - When not set, C(<spectro_pub_repo>/edge/stylus-framework-linux-<arch>:<pe_version>).
    type: str
  k8s_payload_image:
    description:
      - Template of the image holding the Kubernetes package for one version; must contain C({k8s_version}).
      - When not set, C(<spectro_luet_repo>/luet-repo-<amd|arm>:<dist>-k8s-{k8s_version}[-k3s1|-rke2r1]), the tag luet
        gives the package C(k8s/<dist>) that CanvOS installs.
    type: str
"""
