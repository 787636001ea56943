# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Dockerfiles of the base stage, the provider images and the installer image (CONFORMANCE sections 3-5).

- **base stage** (built once per configuration, shared by every Kubernetes version and the installer image):
  ``FROM base_image``; extra CA certificates into the distribution's trust store; the user's own Dockerfile
  instructions; the distribution's package and kernel steps; ``/etc/kairos-release``; cleanup; boot arguments.
- **provider image** (one per Kubernetes version): a staging tree ``/out`` gets, in CanvOS's order (later wins), the
  stock and user overlay ``etc/``, the whole Kairos provider image, the stylus branding and configuration, the edge
  custom config, the Kubernetes payload and etcdctl (packed with ``upx -1`` in a stage from CanvOS's Alpine helper
  image, which names no version, so the layer cache serves every version); it is merged into ``usr/`` when the
  base is merged-/usr and copied onto the base stage in one layer; then SSH host keys go and the machine-id is emptied.
- **installer image** ``palette-installer-image:<IMAGE_TAG>``: base stage + the whole stylus framework + the whole
  stock and user overlay, staged the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import kernel, steps
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.context import (
    LABEL_PREFIX, BuildContext, read_tree, subset)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.overlay import stock_files


BASE_STAGE_REPO = "edgeforge-base-stage"
THIRD_PARTY_TAG = "4.8"
ALPINE_TAG = "3.20"
DEFAULT_PUB_REPO = "us-docker.pkg.dev/palette-images"
FIPS_PUB_REPO = "us-docker.pkg.dev/palette-images-fips"

# Where each distribution keeps extra CA certificates, and the command that refreshes its trust store.
TRUST_STORES = {
    "ubuntu": ("/usr/local/share/ca-certificates", "update-ca-certificates"),
    "opensuse-leap": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "sles": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "rhel": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
}

# Configuration keys that change what goes into the images (others, e.g. iso_name or AWS names, do not).
BASE_KEYS = ("os_distribution", "os_version", "arch", "base_image", "kairos_version", "disable_selinux",
             "fips_enabled", "update_kernel", "cis_hardening")
PROVIDER_KEYS = ("k8s_distribution", "pe_version", "provider_source_image", "stylus_framework_image",
                 "os_distribution", "arch", "fips_enabled", "update_kernel")
INSTALLER_KEYS = ("pe_version", "custom_tag", "stylus_framework_image")


def trust_store(os_distribution):
    """(anchor directory, refresh command) for a distribution's CA trust store."""
    return TRUST_STORES.get(os_distribution, TRUST_STORES["ubuntu"])


def third_party_image(config):
    """Spectro's third-party image (etcdctl): CanvOS names it on palette-images, never on the FIPS registry (2.1).

    A mirror (any other ``spectro_pub_repo``) is expected to hold it under the same path.
    """
    pub = config.get("spectro_pub_repo") or DEFAULT_PUB_REPO
    if pub == FIPS_PUB_REPO:
        pub = DEFAULT_PUB_REPO
    return "%s/third-party/spectro-third-party:%s" % (pub, THIRD_PARTY_TAG)


def upx_helper_image(config):
    """CanvOS's Alpine helper image (ALPINE_IMG), where it packs etcdctl with ``upx -1`` (4.9).

    On ``spectro_pub_repo``, which the configuration has already moved to the FIPS registry where CanvOS does (2.1).
    """
    return "%s/edge/canvos/alpine:%s" % (config.get("spectro_pub_repo") or DEFAULT_PUB_REPO, ALPINE_TAG)


def etcdctl_stage(config):
    """4.9: the third-party image ships etcdctl unpacked; CanvOS packs it with ``upx -1`` in its Alpine helper.

    The stage comes first and names no Kubernetes version, so every provider image reuses its cached layers.
    """
    return [
        "FROM %s AS etcdctl" % upx_helper_image(config),
        "COPY --from=%s %s /WORKDIR/etcdctl" % (third_party_image(config), etcdctl_path(config)),
        "RUN upx -1 /WORKDIR/etcdctl",
        "",
    ]


def etcdctl_path(config):
    """4.9: the etcdctl binary of the third-party image (``vertex`` binaries for FIPS builds)."""
    kind = "vertex" if config.get("fips_enabled") else "palette"
    return "/binaries/etcdctl/latest/%s/%s/etcdctl" % (kind, config.get("arch") or "amd64")


def base_stage_tag(context):
    return "%s:%s" % (BASE_STAGE_REPO, context.short_digest)


def _os_label(config):
    return "%s-%s" % (config["os_distribution"], config["os_version"])


def base_stage_context(config, base_image_id, user_dockerfile="", cert_files=None):
    """The shared base stage: BASE_IMAGE + certificates + user customisations + CanvOS's +base-image steps."""
    cert_files = dict(cert_files or {})
    anchors, refresh = trust_store(config["os_distribution"])
    out = [
        "# Generated by edgeforge.artifacts: base stage shared by every provider image and the installer image.",
        "FROM %s" % config["base_image"],
    ]
    if cert_files:
        out += [
            "# 3.1a extra CA certificates (proxy_cert_paths) into the %s trust store." % config["os_distribution"],
            "COPY certs/ %s/" % anchors,
            "RUN if command -v %s >/dev/null 2>&1; then %s; "
            "else echo 'edgeforge: %s not found; certificates copied to %s only'; fi"
            % (refresh.split()[0], refresh, refresh.split()[0], anchors),
        ]
    if user_dockerfile:
        out += ["# --- user Dockerfile customisations ---", user_dockerfile, "# --- end of user customisations ---"]
    out += [
        "COPY edgeforge-base.sh /tmp/edgeforge-base.sh",
        "RUN sh /tmp/edgeforge-base.sh",
        "",
    ]
    files = dict(cert_files)
    files["edgeforge-base.sh"] = steps.base_stage_script(config).encode("utf-8")
    labels = {LABEL_PREFIX + "base-image": config["base_image"], LABEL_PREFIX + "os": _os_label(config)}
    return BuildContext("base-stage", "base-stage", "\n".join(out), files=files,
                        sources={"base_image": base_image_id}, config=subset(config, BASE_KEYS), labels=labels)


def _overlay(overlay_dir, etc_only):
    """Stock overlay then the user's (later wins), as context files under ``overlay/``."""
    files, modes = stock_files("overlay", etc_only=etc_only)
    if overlay_dir:
        user_files, user_modes = read_tree(os.path.join(overlay_dir, "etc") if etc_only else overlay_dir,
                                           "overlay")
        files.update(user_files)
        modes.update(user_modes)
    return files, modes


def provider_context(config, build, base_context, source_ids, overlay_dir=None, edge_custom_config=None):
    """One provider image, in the layer order of CanvOS's +provider-image (4.1)."""
    stylus = config["stylus_framework_image"]
    third_party = third_party_image(config)
    files, modes = _overlay(overlay_dir, etc_only=True)
    files["edgeforge-payload.sh"] = steps.payload_script().encode("utf-8")
    files["edgeforge-final.sh"] = steps.image_final_script(config, build["k8s_version"]).encode("utf-8")
    base_tag = base_stage_tag(base_context)
    out = ["# Generated by edgeforge.artifacts: provider image %s" % build["image"]] + etcdctl_stage(config) + [
        "FROM %s AS payload" % base_tag,
        "COPY edgeforge-payload.sh /tmp/edgeforge-payload.sh",
        "COPY overlay/ /out/etc/",
        "COPY --from=%s / /out/" % config["provider_source_image"],
        "COPY --from=%s /etc/kairos/branding/ /out/etc/kairos/branding/" % stylus,
        "COPY --from=%s /etc/kairos/ /stylus/etc/kairos/" % stylus,
        "COPY --from=%s /oem/stylus_config.yaml /out/etc/kairos/branding/stylus_config.yaml" % stylus,
        "COPY --from=%s /etc/elemental/config.yaml /out/etc/elemental/config.yaml" % stylus,
    ]
    if edge_custom_config:
        if not os.path.isfile(edge_custom_config):
            raise ValidationError("edge_custom_config", edge_custom_config, "the path of an existing file")
        with open(edge_custom_config, "rb") as handle:
            files["edge_custom_config.yaml"] = handle.read()
        out.append("COPY edge_custom_config.yaml /out/oem/.edge_custom_config.yaml")
    out += [
        "COPY --from=%s / /out/" % build["k8s_payload_image"],
        "COPY --from=etcdctl /WORKDIR/etcdctl /out/usr/bin/etcdctl",
        "RUN sh /tmp/edgeforge-payload.sh",
        "",
        "FROM %s" % base_tag,
    ]
    if kernel.needs_headers(config):  # 4.2 / 4.3
        files["edgeforge-kernel-headers.sh"] = kernel.headers_script(config).encode("utf-8")
        out += ["COPY edgeforge-kernel-headers.sh /tmp/edgeforge-kernel-headers.sh",
                "RUN sh /tmp/edgeforge-kernel-headers.sh && rm -f /tmp/edgeforge-kernel-headers.sh"]
    out += [
        "COPY --from=payload /out/ /",
        "COPY edgeforge-final.sh /tmp/edgeforge-final.sh",
        "RUN sh /tmp/edgeforge-final.sh && rm -f /tmp/edgeforge-final.sh",
        "",
    ]
    sources = {
        "base_stage": base_context.digest,
        "provider_source_image": source_ids.get("provider_source_image"),
        "stylus_framework_image": source_ids.get("stylus_framework_image"),
        "third_party_image": source_ids.get("third_party_image"),
        "upx_helper_image": source_ids.get("upx_helper_image"),
        "k8s_payload_image": source_ids.get(build["k8s_payload_image"]),
    }
    cfg = subset(config, PROVIDER_KEYS)
    cfg.update(k8s_version=build["k8s_version"], k8s_payload_image=build["k8s_payload_image"],
               third_party_image=third_party, upx_helper_image=upx_helper_image(config))
    labels = {
        LABEL_PREFIX + "k8s-distribution": config["k8s_distribution"],
        LABEL_PREFIX + "k8s-version": build["k8s_version"],
        LABEL_PREFIX + "pe-version": config["pe_version"],
        LABEL_PREFIX + "os": _os_label(config),
        LABEL_PREFIX + "base-image": config["base_image"],
        LABEL_PREFIX + "provider-source-image": config["provider_source_image"],
        LABEL_PREFIX + "k8s-payload-image": build["k8s_payload_image"],
        LABEL_PREFIX + "stylus-framework-image": stylus,
        LABEL_PREFIX + "third-party-image": third_party,
        LABEL_PREFIX + "upx-helper-image": upx_helper_image(config),
        LABEL_PREFIX + "custom-tag": config.get("custom_tag") or "",
    }
    return BuildContext("provider", build["image"], "\n".join(out), files=files, sources=sources, config=cfg,
                        labels=labels, modes=modes)


def installer_context(config, reference, base_context, source_ids, overlay_dir=None):
    """The installer image (5.1): base stage + the whole stylus framework + the whole overlay (later wins)."""
    files, modes = _overlay(overlay_dir, etc_only=False)
    files["edgeforge-tree.sh"] = "\n".join(steps.HEADER + steps.merged_usr_steps("/out")).encode("utf-8") + b"\n"
    files["edgeforge-final.sh"] = steps.image_final_script(config).encode("utf-8")
    base_tag = base_stage_tag(base_context)
    out = [
        "# Generated by edgeforge.artifacts: installer image %s" % reference,
        "FROM %s AS tree" % base_tag,
        "COPY edgeforge-tree.sh /tmp/edgeforge-tree.sh",
        "COPY --from=%s / /out/" % config["stylus_framework_image"],
        "COPY overlay/ /out/",
        "RUN sh /tmp/edgeforge-tree.sh",
        "",
        "FROM %s" % base_tag,
        "COPY --from=tree /out/ /",
        "COPY edgeforge-final.sh /tmp/edgeforge-final.sh",
        "RUN sh /tmp/edgeforge-final.sh && rm -f /tmp/edgeforge-final.sh",
        "",
    ]
    labels = {
        LABEL_PREFIX + "pe-version": config["pe_version"],
        LABEL_PREFIX + "os": _os_label(config),
        LABEL_PREFIX + "base-image": config["base_image"],
        LABEL_PREFIX + "stylus-framework-image": config["stylus_framework_image"],
    }
    return BuildContext("installer", reference, "\n".join(out), files=files,
                        sources={"base_stage": base_context.digest,
                                 "stylus_framework_image": source_ids.get("stylus_framework_image")},
                        config=subset(config, INSTALLER_KEYS), labels=labels, modes=modes)
