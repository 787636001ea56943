# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build contexts (Dockerfile + files) for the base stage, the provider images and the installer image.

What CanvOS's Earthfile does for ``+base-image``, ``+provider-image`` and ``+iso-image``, as plain Dockerfiles for the
classic builder:

- **base stage** (built once per configuration, shared by every Kubernetes version): ``FROM base_image``; extra CA
  certificates into the distribution's trust store; the user's own Dockerfile instructions; ``/etc/kairos-release``
  patched; boot arguments (cgroup v2, SELinux off when asked, nouveau blacklisted); caches, ``/tmp`` and the
  machine-id cleaned. Proxies are passed as the engine's predefined build args, so they never land in the image.
- **provider image** (one per Kubernetes version): the agent-provider files (moved to ``/system/providers``), the
  Kubernetes payload (``/var/cache`` dropped), the stylus configuration and branding (only the files CanvOS copies),
  the overlay's ``etc/``, the optional edge custom config, SSH host keys removed, machine-id emptied.
- **installer image** ``palette-installer-image:<IMAGE_TAG>``: base stage + the whole stylus framework filesystem +
  the overlay files.

Each context carries an *inputs digest* (configuration that affects the image, Dockerfile text, every file copied
in, the ids of the images it reads from); it is stored as the ``io.edgeforge.inputs-digest`` label, so an image whose
label matches is up to date and is not rebuilt.

Plain Python (no Ansible import): unit-tested without an engine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import shlex

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError, ValidationError, atomic_write


LABEL_DIGEST = "io.edgeforge.inputs-digest"
LABEL_KIND = "io.edgeforge.kind"
LABEL_PREFIX = "io.edgeforge."
BASE_STAGE_REPO = "edgeforge-base-stage"
FORMAT_VERSION = "1"  # bump when the generated Dockerfiles change meaning, to rebuild everything once

# Where each distribution keeps extra CA certificates, and the command that refreshes its trust store.
TRUST_STORES = {
    "ubuntu": ("/usr/local/share/ca-certificates", "update-ca-certificates"),
    "debian": ("/usr/local/share/ca-certificates", "update-ca-certificates"),
    "opensuse-leap": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "opensuse-tumbleweed": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "opensuse": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "sles": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "slem": ("/usr/share/pki/trust/anchors", "update-ca-certificates"),
    "rhel": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
    "rockylinux": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
    "almalinux": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
    "centos": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
    "fedora": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
}
UBUNTU_SHORT_VERSIONS = {"20": "20.04", "22": "22.04", "24": "24.04"}
CGROUP_V2_ARG = "systemd.unified_cgroup_hierarchy=1"
NOUVEAU_ARGS = ("rd.driver.blacklist=nouveau", "modprobe.blacklist=nouveau", "nouveau.modeset=0")

# Configuration keys that change what goes into the images (others, e.g. iso_name or AWS names, do not).
BASE_KEYS = ("os_distribution", "os_version", "arch", "base_image", "kairos_version", "disable_selinux",
             "fips_enabled", "update_kernel", "cis_hardening")
PROVIDER_KEYS = ("k8s_distribution", "pe_version", "provider_source_image", "stylus_framework_image")
INSTALLER_KEYS = ("pe_version", "custom_tag", "stylus_framework_image")

_FROM_RE = re.compile(r"^\s*FROM\s", re.IGNORECASE | re.MULTILINE)
_CERT_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def sha256_text(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def inputs_digest(parts):
    """``sha256:<hex>`` of a canonical JSON rendering of ``parts`` (dicts/lists/strings only)."""
    return "sha256:" + sha256_text(json.dumps(parts, sort_keys=True, separators=(",", ":")))


class BuildContext:
    """A generated Docker build context held in memory until written: Dockerfile text + files + digest parts."""

    def __init__(self, kind, name, dockerfile, files=None, sources=None, config=None, labels=None):
        self.kind = kind
        self.name = name
        self.dockerfile = dockerfile
        self.files = dict(files or {})  # relative path -> bytes
        self.sources = dict(sources or {})  # role -> image id (or reference when the id is unknown)
        self.config = dict(config or {})
        self.labels = dict(labels or {})
        self.labels[LABEL_KIND] = kind
        # Metadata labels in one LABEL instruction (one build step); only the digest is added by the engine.
        dockerfile = dockerfile.rstrip("\n") + "\nLABEL " + " ".join(
            "%s=%s" % (key, json.dumps(str(value))) for key, value in sorted(self.labels.items())) + "\n"
        self.dockerfile = dockerfile
        self.digest = inputs_digest({
            "format": FORMAT_VERSION,
            "kind": kind,
            "dockerfile": dockerfile,
            "files": {path: sha256_text(data) for path, data in sorted(self.files.items())},
            "sources": self.sources,
            "config": self.config,
        })
        self.labels[LABEL_DIGEST] = self.digest

    @property
    def build_labels(self):
        """Labels the engine adds at build time (only the inputs digest; the rest is in the Dockerfile)."""
        return {LABEL_DIGEST: self.digest}

    @property
    def short_digest(self):
        return self.digest.split(":", 1)[1][:16]

    def write(self, directory):
        """Write the context under ``directory`` (replacing what a previous run left) and return its path."""
        os.makedirs(directory, exist_ok=True)
        wanted = set(self.files) | {"Dockerfile"}
        for root, _dirs, names in os.walk(directory):
            for name in names:
                rel = os.path.relpath(os.path.join(root, name), directory)
                if rel not in wanted:
                    os.unlink(os.path.join(root, name))
        atomic_write(os.path.join(directory, "Dockerfile"), self.dockerfile)
        for rel, data in self.files.items():
            path = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, data, mode=0o644)
        return directory


# ---------------------------------------------------------------------------------------------------------------
# Helpers on the configuration

def trust_store(os_distribution):
    """(anchor directory, refresh command) for a distribution's CA trust store."""
    return TRUST_STORES.get(os_distribution, TRUST_STORES["ubuntu"])


def long_os_version(os_distribution, os_version):
    if os_distribution == "ubuntu":
        return UBUNTU_SHORT_VERSIONS.get(str(os_version), str(os_version))
    return str(os_version)


def kairos_release_values(config):
    """(KAIROS_NAME, KAIROS_IMAGE_LABEL) as CanvOS writes them into /etc/kairos-release."""
    version = long_os_version(config["os_distribution"], config["os_version"])
    name = "kairos-core-%s-%s" % (config["os_distribution"], version)
    label = "%s-standard-%s-generic" % (version, config.get("arch") or "amd64")
    return name, label


def boot_args(config):
    """Kernel arguments the base stage makes sure are on the command line."""
    return [CGROUP_V2_ARG] + list(NOUVEAU_ARGS)


def builds_of_share(builds, share):
    """The builds of the plan for the Kubernetes versions in ``share`` (a build host's part of the matrix).

    An empty share builds nothing; a version outside the configuration's matrix is an error.
    """
    matrix = [build["k8s_version"] for build in builds]
    unknown = [version for version in share if version not in matrix]
    if unknown:
        raise ValidationError("k8s_versions", unknown, "versions of the configuration's matrix (%s)"
                              % ", ".join(matrix))
    return [build for build in builds if build["k8s_version"] in share]


def user_dockerfile_text(dockerfile=None, dockerfile_content=None):
    """The user's Dockerfile customisations (instructions run on top of the base image), validated."""
    text = ""
    if dockerfile:
        if not os.path.isfile(dockerfile):
            raise ValidationError("dockerfile", dockerfile, "the path of an existing file of Dockerfile instructions")
        with open(dockerfile, "r", encoding="utf-8") as handle:
            text = handle.read()
    if dockerfile_content:
        text = (text.rstrip("\n") + "\n" if text else "") + dockerfile_content
    if _FROM_RE.search(text):
        raise ValidationError("dockerfile", (dockerfile or "(inline)"),
                              "Dockerfile instructions without FROM: they run on top of the base image "
                              "(RUN, ENV, COPY --from=<image> ...); the base image is set by base_image")
    return text.strip("\n")


def read_cert_files(paths):
    """{context-relative name: bytes} for the extra CA certificates (names end in .crt, kept unique)."""
    files = {}
    for index, path in enumerate(paths or []):
        if not os.path.isfile(path):
            raise ValidationError("proxy_cert_paths", path, "paths of existing PEM certificate files")
        with open(path, "rb") as handle:
            data = handle.read()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValidationError("proxy_cert_paths", path, "PEM certificate files (-----BEGIN CERTIFICATE-----)")
        stem = _CERT_NAME_RE.sub("-", os.path.splitext(os.path.basename(path))[0]).strip("-") or "cert"
        files["certs/%02d-%s.crt" % (index, stem)] = data
    return files


def read_tree(directory, prefix):
    """{prefix/relative path: bytes} of every regular file under ``directory`` (symlinks kept as their target)."""
    files = {}
    if not directory or not os.path.isdir(directory):
        return files
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    files["%s/%s" % (prefix, os.path.relpath(path, directory))] = handle.read()
    return files


def _subset(config, keys):
    return {key: config.get(key) for key in keys}


# ---------------------------------------------------------------------------------------------------------------
# Contexts

def base_stage_script(config):
    """The shell run last in the base stage: kairos-release, boot arguments, cleanup (CanvOS +base-image 6-8)."""
    name, label = kairos_release_values(config)
    disable_selinux = "true" if config.get("disable_selinux") else "false"
    lines = [
        "#!/bin/sh",
        "# Generated by edgeforge.artifacts: base-stage adjustments (kairos-release, boot arguments, cleanup).",
        "set -eu",
        "release=/etc/kairos-release",
        "touch \"$release\"",
        "set_release() {",
        "  if grep -q \"^$1=\" \"$release\"; then",
        "    sed -i \"s|^$1=.*|$1=\\\"$2\\\"|\" \"$release\"",
        "  else",
        "    printf '%s=\"%s\"\\n' \"$1\" \"$2\" >> \"$release\"",
        "  fi",
        "}",
        "set_release KAIROS_NAME %s" % shlex.quote(name),
        "set_release KAIROS_IMAGE_LABEL %s" % shlex.quote(label),
        "bootargs=/etc/cos/bootargs.cfg",
        "if [ -f \"$bootargs\" ]; then",
        "  if [ %s = true ]; then sed -i 's/selinux=1/selinux=0/g' \"$bootargs\"; fi" % disable_selinux,
        "  for arg in %s; do" % " ".join(shlex.quote(arg) for arg in boot_args(config)),
        "    if ! grep -q -- \"$arg\" \"$bootargs\"; then",
        "      sed -i -E \"s/^([[:space:]]*set (kernelcmd|baseExternalArgs|extra_cmdline)=\\\"[^\\\"]*)\\\"/\\1 $arg\\\"/\" "
        "\"$bootargs\"",
        "    fi",
        "  done",
        "fi",
        "if [ -d /var/cache ]; then find /var/cache -mindepth 1 -maxdepth 1 ! -name cracklib -exec rm -rf {} +; fi",
        "rm -rf /tmp/* /var/log/journal/* 2>/dev/null || true",
        "rm -f /etc/machine-id && touch /etc/machine-id && chmod 444 /etc/machine-id",
        "",
    ]
    return "\n".join(lines)


def base_stage_context(config, base_image_id, user_dockerfile="", cert_files=None):
    """The shared base stage: BASE_IMAGE + certificates + user customisations + kairos/bootargs adjustments."""
    cert_files = dict(cert_files or {})
    anchors, refresh = trust_store(config["os_distribution"])
    out = [
        "# Generated by edgeforge.artifacts: base stage shared by every provider image and the installer image.",
        "FROM %s" % config["base_image"],
    ]
    if cert_files:
        out += [
            "# Extra CA certificates (proxy_cert_paths) into the %s trust store." % config["os_distribution"],
            "COPY certs/ %s/" % anchors,
            "RUN if command -v %s >/dev/null 2>&1; then %s; "
            "else echo 'edgeforge: %s not found; certificates copied to %s only'; fi"
            % (refresh.split()[0], refresh, refresh.split()[0], anchors),
        ]
    if user_dockerfile:
        out += ["# --- user Dockerfile customisations ---", user_dockerfile, "# --- end of user customisations ---"]
    out += [
        "COPY edgeforge-base.sh /tmp/edgeforge-base.sh",
        "RUN sh /tmp/edgeforge-base.sh && rm -f /tmp/edgeforge-base.sh",
        "",
    ]
    files = dict(cert_files)
    files["edgeforge-base.sh"] = base_stage_script(config).encode("utf-8")
    labels = {
        LABEL_PREFIX + "base-image": config["base_image"],
        LABEL_PREFIX + "os": "%s-%s" % (config["os_distribution"], config["os_version"]),
    }
    return BuildContext("base-stage", "base-stage", "\n".join(out), files=files,
                        sources={"base_image": base_image_id}, config=_subset(config, BASE_KEYS), labels=labels)


def base_stage_tag(context):
    return "%s:%s" % (BASE_STAGE_REPO, context.short_digest)


def payload_script(k8s_distribution):
    """Shell run in the payload stage: agent-provider files to /system/providers, stylus picks, no /var/cache."""
    return "\n".join([
        "#!/bin/sh",
        "# Generated by edgeforge.artifacts: assemble the provider payload under /out.",
        "set -eu",
        "rm -rf /out/var/cache",
        "mkdir -p /out/system/providers",
        "if [ -d /out/usr/local/system/providers ]; then",
        "  for f in /out/usr/local/system/providers/agent-provider-*; do",
        "    [ -e \"$f\" ] && mv \"$f\" /out/system/providers/",
        "  done",
        "  rmdir /out/usr/local/system/providers 2>/dev/null || true",
        "fi",
        "if ! ls /out/system/providers/agent-provider-* >/dev/null 2>&1; then",
        "  echo 'edgeforge: the provider source image has no agent-provider files "
        "(expected /usr/local/system/providers/agent-provider-%s)' >&2" % k8s_distribution,
        "  exit 3",
        "fi",
        "mkdir -p /out/etc/kairos /out/etc/elemental",
        "cp -a /stylus/etc/kairos/branding /out/etc/kairos/branding",
        "if [ -f /stylus/etc/kairos/80_stylus.yaml ]; then cp -a /stylus/etc/kairos/80_stylus.yaml /out/etc/kairos/; fi",
        "cp -a /stylus/oem/stylus_config.yaml /out/etc/kairos/branding/stylus_config.yaml",
        "cp -a /stylus/etc/elemental/config.yaml /out/etc/elemental/config.yaml",
        "",
    ])


FINAL_CLEANUP = ("RUN rm -f /etc/ssh/ssh_host_* /etc/ssh/moduli && rm -f /etc/machine-id && touch /etc/machine-id "
                 "&& chmod 444 /etc/machine-id")


def provider_context(config, build, base_context, source_ids, overlay_dir=None, edge_custom_config=None):
    """One provider image: base stage + agent provider + Kubernetes payload + stylus config + custom config."""
    stylus = config["stylus_framework_image"]
    files = {"edgeforge-payload.sh": payload_script(config["k8s_distribution"]).encode("utf-8")}
    out = [
        "# Generated by edgeforge.artifacts: provider image %s" % build["image"],
        "FROM %s AS payload" % base_stage_tag(base_context),
        "COPY edgeforge-payload.sh /tmp/edgeforge-payload.sh",
        "COPY --from=%s /etc/kairos/ /stylus/etc/kairos/" % stylus,
        "COPY --from=%s /oem/stylus_config.yaml /stylus/oem/stylus_config.yaml" % stylus,
        "COPY --from=%s /etc/elemental/config.yaml /stylus/etc/elemental/config.yaml" % stylus,
        "COPY --from=%s / /out/" % config["provider_source_image"],
        "COPY --from=%s / /out/" % build["k8s_payload_image"],
        "RUN sh /tmp/edgeforge-payload.sh",
        "",
        "FROM %s" % base_stage_tag(base_context),
        "COPY --from=payload /out/ /",
    ]
    overlay = read_tree(os.path.join(overlay_dir, "etc") if overlay_dir else None, "overlay-etc")
    if overlay:
        files.update(overlay)
        out.append("COPY overlay-etc/ /etc/")
    if edge_custom_config:
        if not os.path.isfile(edge_custom_config):
            raise ValidationError("edge_custom_config", edge_custom_config, "the path of an existing file")
        with open(edge_custom_config, "rb") as handle:
            files["edge_custom_config.yaml"] = handle.read()
        out.append("COPY edge_custom_config.yaml /oem/.edge_custom_config.yaml")
    out += [FINAL_CLEANUP, ""]
    sources = {
        "base_stage": base_context.digest,
        "provider_source_image": source_ids.get("provider_source_image"),
        "stylus_framework_image": source_ids.get("stylus_framework_image"),
        "k8s_payload_image": source_ids.get(build["k8s_payload_image"]),
    }
    cfg = _subset(config, PROVIDER_KEYS)
    cfg["k8s_version"] = build["k8s_version"]
    cfg["k8s_payload_image"] = build["k8s_payload_image"]
    labels = {
        LABEL_PREFIX + "k8s-distribution": config["k8s_distribution"],
        LABEL_PREFIX + "k8s-version": build["k8s_version"],
        LABEL_PREFIX + "pe-version": config["pe_version"],
        LABEL_PREFIX + "os": "%s-%s" % (config["os_distribution"], config["os_version"]),
        LABEL_PREFIX + "base-image": config["base_image"],
        LABEL_PREFIX + "provider-source-image": config["provider_source_image"],
        LABEL_PREFIX + "k8s-payload-image": build["k8s_payload_image"],
        LABEL_PREFIX + "stylus-framework-image": stylus,
        LABEL_PREFIX + "custom-tag": config.get("custom_tag") or "",
    }
    return BuildContext("provider", build["image"], "\n".join(out), files=files, sources=sources, config=cfg,
                        labels=labels)


def installer_context(config, reference, base_context, source_ids, overlay_dir=None):
    """The installer image: base stage + the full stylus framework filesystem + overlay files."""
    files = read_tree(overlay_dir, "overlay")
    out = [
        "# Generated by edgeforge.artifacts: installer image %s" % reference,
        "FROM %s" % base_stage_tag(base_context),
        "COPY --from=%s / /" % config["stylus_framework_image"],
    ]
    if files:
        out.append("COPY overlay/ /")
    out += [FINAL_CLEANUP, ""]
    labels = {
        LABEL_PREFIX + "pe-version": config["pe_version"],
        LABEL_PREFIX + "os": "%s-%s" % (config["os_distribution"], config["os_version"]),
        LABEL_PREFIX + "base-image": config["base_image"],
        LABEL_PREFIX + "stylus-framework-image": config["stylus_framework_image"],
    }
    return BuildContext("installer", reference, "\n".join(out), files=files,
                        sources={"base_stage": base_context.digest,
                                 "stylus_framework_image": source_ids.get("stylus_framework_image")},
                        config=_subset(config, INSTALLER_KEYS), labels=labels)


def proxy_build_args(config):
    """The engine's predefined proxy build args (never persisted in the image), upper and lower case."""
    args = {}
    for key in ("http_proxy", "https_proxy", "no_proxy"):
        value = config.get(key) or ""
        if value:
            args[key.upper()] = value
            args[key] = value
    return args


def context_dir_name(context):
    """A file-system friendly directory name for a context."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", context.name.split("/")[-1])
    return "%s-%s" % (context.kind, name)


# ---------------------------------------------------------------------------------------------------------------
# Orchestration (the engine is injected: DockerEngine or anything with the same methods)

def _image_summary(found):
    return {"id": found.get("Id"), "size": found.get("Size")}


class ProviderImageBuilder:
    """Builds the base stage once, then the provider images (concurrently) and the installer image.

    ``engine_factory()`` returns a Docker engine client; one is made per worker thread.
    """

    def __init__(self, engine_factory, plan, build_dir, user_dockerfile="", overlay_dir=None, parallel=2,
                 force=False, installer=False, pull=False, check_mode=False, progress=None, auth_configs=None):
        self.engine_factory = engine_factory
        self.engine = engine_factory()
        self.plan = plan
        self.config = dict(plan["config"])
        self.config.setdefault("base_image", plan.get("base_image"))
        for key, value in (plan.get("sources") or {}).items():
            self.config.setdefault(key, value)
        self.build_dir = os.path.abspath(build_dir)
        self.user_dockerfile = user_dockerfile or ""
        self.overlay_dir = overlay_dir
        self.parallel = max(1, int(parallel))
        self.force = bool(force)
        self.installer = bool(installer)
        self.pull = bool(pull)
        self.check_mode = bool(check_mode)
        self.progress = progress or (lambda message: None)
        self.auth_configs = auth_configs
        self.log_dir = os.path.join(self.build_dir, "logs")

    # -- sources
    def _source_ids(self):
        refs = [("base_image", self.config["base_image"]),
                ("provider_source_image", self.config["provider_source_image"]),
                ("stylus_framework_image", self.config["stylus_framework_image"])]
        refs += [(build["k8s_payload_image"], build["k8s_payload_image"]) for build in self.plan["builds"]]
        ids = {}
        missing = []
        for key, ref in refs:
            if self.check_mode:
                found = self.engine.image(ref)
                if not found:
                    missing.append(ref)
                ids[key] = found["Id"] if found else "missing:" + ref
            else:
                found = self.engine.ensure_image(ref, pull=self.pull, auth_config=None, progress=self.progress)
                ids[key] = found["Id"]
        return ids, missing

    def contexts(self, source_ids):
        cert_files = read_cert_files(self.config.get("proxy_cert_paths") or [])
        base = base_stage_context(self.config, source_ids["base_image"], self.user_dockerfile, cert_files)
        providers = [provider_context(self.config, build, base, source_ids, self.overlay_dir,
                                      self.config.get("edge_custom_config") or None)
                     for build in self.plan["builds"]]
        installer = None
        if self.installer:
            installer = installer_context(self.config, self.plan["installer_image"], base, source_ids,
                                          self.overlay_dir)
        return base, providers, installer

    def _up_to_date(self, reference, context):
        found = self.engine.image(reference)
        if not found:
            return None
        labels = (found.get("Config") or {}).get("Labels") or {}
        return found if labels.get(LABEL_DIGEST) == context.digest else None

    # -- building
    def _build(self, engine, context, reference, kind_label):
        import time  # local: keeps module import light
        import uuid
        directory = context.write(os.path.join(self.build_dir, "contexts", context_dir_name(context)))
        log_path = os.path.join(self.log_dir, "%s.log" % context_dir_name(context))
        temp_tag = "edgeforge-build-tmp:%s-%s" % (context.short_digest[:12], uuid.uuid4().hex[:8])
        started = time.monotonic()
        self.progress("building %s %s (log: %s)" % (kind_label, reference, log_path))
        try:
            image_id = engine.build(directory, temp_tag, buildargs=proxy_build_args(self.config),
                                    labels=context.build_labels, log_path=log_path, progress=self.progress,
                                    label=reference.rsplit("/", 1)[-1], auth_configs=self.auth_configs)
            engine.tag(image_id, reference)
        finally:
            engine.untag(temp_tag)
        found = engine.image(reference) or {}
        seconds = round(time.monotonic() - started, 1)
        self.progress("built %s %s in %.1fs" % (kind_label, reference, seconds))
        return {"reference": reference, "id": found.get("Id", image_id), "size": found.get("Size"),
                "status": "built", "seconds": seconds, "inputs_digest": context.digest, "log": log_path}

    def run(self):
        source_ids, missing = self._source_ids()
        base, providers, installer = self.contexts(source_ids)
        targets = [(ctx, build["image"], build["k8s_version"]) for ctx, build in zip(providers, self.plan["builds"])]
        if installer is not None:
            targets.append((installer, self.plan["installer_image"], None))
        results = {}
        todo = []
        for ctx, reference, version in targets:
            found = None if self.force else self._up_to_date(reference, ctx)
            if found:
                item = {"reference": reference, "status": "reused", "seconds": 0.0, "inputs_digest": ctx.digest}
                item.update(_image_summary(found))
                results[reference] = item
            else:
                todo.append((ctx, reference))
                results[reference] = {"reference": reference, "status": "would_build" if self.check_mode else None,
                                      "id": None, "size": None, "seconds": 0.0, "inputs_digest": ctx.digest}
            if version:
                results[reference]["k8s_version"] = version
            results[reference]["kind"] = ctx.kind
        base_tag = base_stage_tag(base)
        base_result = {"reference": base_tag, "inputs_digest": base.digest, "status": "not_needed"}
        if todo and not self.check_mode:
            base_found = None if self.force else self._up_to_date(base_tag, base)
            if base_found:
                base_result.update(status="reused", **_image_summary(base_found))
            else:
                base_result = self._build(self.engine, base, base_tag, "base stage")
            self._build_all(todo, results)
        elif todo:
            base_result["status"] = "would_build" if not self._up_to_date(base_tag, base) else "reused"
        images = [results[ref] for _ctx, ref, version in targets if version is not None]
        out = {
            "images": images,
            "base_stage": base_result,
            "changed": bool(todo),
            "missing_sources": missing,
            "log_dir": self.log_dir,
        }
        if installer is not None:
            out["installer_image"] = results[self.plan["installer_image"]]
        return out

    def _build_all(self, todo, results):
        from concurrent.futures import ThreadPoolExecutor, wait, FIRST_EXCEPTION
        import threading
        local = threading.local()

        def engine():
            if not hasattr(local, "engine"):
                local.engine = self.engine_factory()
            return local.engine

        def job(ctx, reference):
            return self._build(engine(), ctx, reference, ctx.kind + " image")

        errors = []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(todo))) as pool:
            futures = {pool.submit(job, ctx, ref): ref for ctx, ref in todo}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending and any(f.exception() for f in done):
                for future in pending:
                    future.cancel()
                done, _pending = wait(futures)
            for future, ref in futures.items():
                if future.cancelled():
                    results[ref]["status"] = "cancelled"
                    continue
                exc = future.exception()
                if exc is not None:
                    errors.append(exc)
                    results[ref]["status"] = "failed"
                else:
                    results[ref].update(future.result())
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise EdgeforgeError("%d image builds failed:\n%s" % (len(errors), "\n\n".join(str(e) for e in errors)))
