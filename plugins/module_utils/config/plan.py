# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A validated build configuration and the build plan derived from it.

``BuildConfig.from_options(options)`` validates (see ``normalise``); ``plan()`` returns the documented dict (the
build_config module's result), ``as_dict()`` the normalised configuration, which ``from_options`` accepts back
unchanged; ``arg_text()`` / ``write_arg()`` the configuration as a CanvOS ``.arg`` file.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from collections import OrderedDict

from ansible_collections.edgeforge.artifacts.plugins.module_utils import arg_file as _arg_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import atomic_write
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.derive import provider_tag
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.normalise import normalise
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.proxies import (
    PROXY_NAMES,
    mask_url,
    url_password,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.schema import BY_NAME, CONFIG_NAMES

ARG_HEADER = [
    "CanvOS build arguments written by edgeforge.artifacts.build_config.",
    "K8S_VERSION may hold a comma-separated list (the edgeforge build matrix); CanvOS reads a single version.",
    "PROXY_CERT_PATHS, K8S_VERSIONS_FILE and the *_IMAGE sources are edgeforge extensions.",
]


class BuildConfig:
    """A validated build configuration. Build with ``from_options``; read with ``as_dict``/``plan``."""

    def __init__(self, config, versions_table, explicit, warnings, deprecations):
        self._config = config
        self._versions_table = versions_table
        self._explicit = frozenset(explicit)
        self.warnings = list(warnings)
        self.deprecations = list(deprecations)  # [{"msg": ..., "version": ...}]

    @classmethod
    def from_options(cls, options, base_dir=None):
        """Validate ``options`` (flat lower-case names; None = not given) and return a BuildConfig.

        Relative file paths are resolved against ``base_dir`` (default: the current directory) and stored absolute.
        Raises ValidationError for the first bad value, before anything else is done.
        """
        draft = normalise(options, base_dir)
        return cls(draft.cfg, draft.table, draft.explicit, draft.warnings, draft.deprecations)

    # -----------------------------------------------------------------------------------------------------------
    def as_dict(self, mask=False):
        """The normalised configuration (every option, defaults applied; ``k8s_versions`` = the build matrix)."""
        cfg = copy.deepcopy(dict(self._config))
        if mask:
            for name in PROXY_NAMES:
                cfg[name] = mask_url(cfg[name])
        return cfg

    @property
    def config(self):
        return self.as_dict()

    def secrets(self):
        """Values that must never be printed (proxy passwords)."""
        found = []
        for name in PROXY_NAMES:
            password = url_password(self._config[name])
            if password:
                found.append(password)
        return found

    @property
    def image_tag(self):
        """PE_VERSION[-CUSTOM_TAG]: the tag part shared by provider images and the installer image."""
        cfg = self._config
        return "%s-%s" % (cfg["pe_version"], cfg["custom_tag"]) if cfg["custom_tag"] else cfg["pe_version"]

    def builds(self):
        cfg = self._config
        out = []
        for version in cfg["k8s_versions"]:
            tag = provider_tag(cfg["k8s_distribution"], version, cfg["pe_version"], cfg["custom_tag"])
            out.append({
                "k8s_version": version,
                "image": "%s/%s:%s" % (cfg["image_registry"], cfg["image_repo"], tag),
                "tag": tag,
                "k8s_payload_image": cfg["k8s_payload_image"].format(k8s_version=version),
            })
        return out

    def manifest(self):
        """The BYOOS (edge-native-byoi) pack option values, as CanvOS prints them after a provider build."""
        cfg = self._config
        prefix = ".spectro.pack.edge-native-byoi.options.system"
        uri = ("{{ %s.registry }}/{{ %s.repo }}:{{ %s.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}"
               "-{{ %s.peVersion }}" % (prefix, prefix, prefix, prefix))
        if cfg["custom_tag"]:
            uri += "-{{ %s.customTag }}" % prefix
        return OrderedDict([
            ("system.uri", uri),
            ("system.registry", cfg["image_registry"]),
            ("system.repo", cfg["image_repo"]),
            ("system.k8sDistribution", cfg["k8s_distribution"]),
            ("system.osName", cfg["os_distribution"]),
            ("system.peVersion", cfg["pe_version"]),
            ("system.customTag", cfg["custom_tag"]),
            ("system.osVersion", cfg["os_version"]),
        ])

    def plan(self, mask=False):
        """The build plan (the build_config module's result keys)."""
        cfg = self._config
        builds = self.builds()
        return {
            "config": self.as_dict(mask=mask),
            "provider_images": [b["image"] for b in builds],
            "builds": builds,
            "base_image": cfg["base_image"],
            "sources": {
                "provider_source_image": cfg["provider_source_image"],
                "stylus_framework_image": cfg["stylus_framework_image"],
                "k8s_payload_image": cfg["k8s_payload_image"],
            },
            "installer_image": "palette-installer-image:%s" % self.image_tag,
            "iso_path": "build/%s.iso" % cfg["iso_name"],
            "manifest": dict(self.manifest()),
        }

    # -----------------------------------------------------------------------------------------------------------
    def arg_values(self, mask=False):
        """The configuration as ordered ``.arg`` key/values (CanvOS names first, in template order)."""
        cfg = self.as_dict(mask=mask)
        values = OrderedDict()
        for name in CONFIG_NAMES:
            option = BY_NAME[name]
            if option.derived and name not in self._explicit:
                if name == "image_repo":
                    # As the CanvOS template writes it: follows OS_DISTRIBUTION in both CanvOS and this reader.
                    values["IMAGE_REPO"] = _arg_file.Raw("$OS_DISTRIBUTION")
                continue
            value = cfg[name]
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list):
                value = ",".join(value)
            if value == "" and not option.keep_empty:
                continue
            values[option.arg_key] = value
        return values

    def arg_text(self, mask=False):
        """The configuration as ``.arg`` text (valid for CanvOS and for read_arg_file)."""
        return _arg_file.render_arg_text(self.arg_values(mask=mask), header=ARG_HEADER)

    def write_arg(self, path, mode=None):
        """Write ``arg_text()`` to ``path`` atomically (default mode: ``arg_file_mode``); return the text."""
        text = self.arg_text()
        atomic_write(path, text, mode=self.arg_file_mode if mode is None else mode)
        return text

    @property
    def arg_file_mode(self):
        """0600 when a proxy URL carries credentials, else 0644."""
        return 0o600 if self.secrets() else 0o644
