# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One request type for both disk artifacts (installer ISO, raw disk image): every input validated at construction,
before anything is written, so a bad input leaves nothing behind."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError, inputs_digest
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import cloud, menu
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.builder_image import builder_recipe_digest
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import file_fingerprint

MIB = 1024 * 1024
DEFAULT_ISO_NAME = "palette-edge-installer"
# zstd level 3 squashes about five times faster than mksquashfs's default (15) for ~10 % more bytes.
DEFAULT_SQUASHFS_LEVEL = 3
# CanvOS runs `split --bytes=3GB` on every bundle: ISO 9660 stores a file in extents below 4 GiB.
CONTENT_PART_BYTES = 3 * 1000 ** 3
# A name becomes a file name and part of a shell command: letters, digits and . _ - only.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_ALLOWED = ("1-100 characters: letters, digits, '.', '_' and '-', starting with a letter or digit "
                "(no '/', spaces or shell characters)")
# What each kind takes: its name option, file suffix and bundle kinds (CanvOS: only .zst for ISOs).
KINDS = {
    "iso": {"name_param": "iso_name", "suffix": ".iso", "bundles": (".zst",)},
    "raw": {"name_param": "raw_name", "suffix": ".raw", "bundles": (".zst", ".tar")},
}
RAW_DEFAULT_ENTRIES = ("recovery", "reset")
# Kairos reads configuration files of at most 1 MB from the installer medium and skips larger ones with only a
# warning (CONFORMANCE 5.5): such a user data would leave the host unregistered, so it is refused here.
USER_DATA_MAX_BYTES = 1000 * 1000
# The ISO and the raw disk hold the user data (with the registration token): the owner's alone unless widened.
DEFAULT_ARTIFACT_MODE = "0600"
ARTIFACT_MODE_ALLOWED = ("an octal file mode such as 0600 (default), 0640 or 0644: the owner reads and writes it, "
                         "nobody executes it, no special bits")


def validate_name(param, value):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError(param, value, NAME_ALLOWED)
    return value


def check_file(param, path, what):
    """An optional input file: None/empty means absent; a given path must be a readable regular file."""
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.isfile(path):
        raise ValidationError(param, path, "%s: the file does not exist (give an existing file or leave it unset)"
                              % what)
    if not os.access(path, os.R_OK):
        raise ValidationError(param, path, "%s: the file is not readable" % what)
    return path


def parse_artifact_mode(value):
    """The file mode of the artifacts, from an octal string (``0600``, ``640``)."""
    text = DEFAULT_ARTIFACT_MODE if value is None or value == "" else str(value)
    if not re.match(r"^0?[0-7]{3}$", text):
        raise ValidationError("artifact_mode", value, ARTIFACT_MODE_ALLOWED)
    mode = int(text, 8)
    if mode & 0o600 != 0o600 or mode & 0o111:
        raise ValidationError("artifact_mode", value, ARTIFACT_MODE_ALLOWED)
    return mode


def check_user_data(path):
    path = check_file("user_data", path, "the user-data file")
    if path and os.path.getsize(path) > USER_DATA_MAX_BYTES:
        raise ValidationError("user_data", path, "at most 1 MB (%d bytes; this file has %d): Kairos skips a larger "
                              "configuration file on the installer medium, so the host would never register"
                              % (USER_DATA_MAX_BYTES, os.path.getsize(path)))
    return path


def find_bundles(content_dirs, suffixes=(".zst",)):
    """Content bundles in the given directories (CanvOS: content-*/*.zst for the ISO, .zst and .tar for raw images).

    A directory that does not exist is an error (CanvOS silently ignores a mistyped one). Returns a sorted list of
    dicts {path, name, size, dir}; two bundles with the same file name are an error (they would overwrite each other).
    """
    bundles = []
    seen = {}
    for directory in content_dirs or []:
        if not directory:
            continue
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        if not os.path.isdir(directory):
            raise ValidationError("content_dir", directory,
                                  "a directory holding content bundles (*.zst); this one does not exist")
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not os.path.isfile(path) or not name.endswith(tuple(suffixes)):
                continue
            if name in seen:
                raise ValidationError("content_dir", path, "bundle file names must be unique; %s is also in %s"
                                      % (name, seen[name]))
            seen[name] = directory
            bundles.append({"path": path, "name": name, "size": os.path.getsize(path), "dir": directory})
    return bundles


def content_parts(bundles, part_bytes=CONTENT_PART_BYTES):
    """How each bundle is cut for the ISO: CanvOS names every piece ``<name>_partNN`` (even a single one)."""
    parts = []
    for bundle in bundles:
        count = max(1, -(-bundle["size"] // part_bytes))
        for index in range(count):
            offset = index * part_bytes
            length = min(part_bytes, bundle["size"] - offset)
            parts.append({"bundle": bundle["name"], "path": bundle["path"], "dir": bundle["dir"],
                          "name": "%s_part%02d" % (bundle["name"], index), "offset": offset, "length": length})
    return parts


class DiskRequest:  # pylint: disable=too-many-instance-attributes
    """Everything one build needs, validated at construction. ``kind``: ``iso`` or ``raw``.

    ISO only: ``force_interactive_install``, ``content_part_bytes``. Raw only: ``bios_boot``, ``default_entry``.
    """

    def __init__(self, kind, installer_image, build_dir, name=DEFAULT_ISO_NAME, user_data=None, content_dirs=None,
                 clusterconfig=None, edge_custom_config=None, debug=False, grub_timeout=5, extra_cmdline="",
                 kernel_path=None, initrd_path=None, squashfs_level=DEFAULT_SQUASHFS_LEVEL, local_ui=None,
                 artifact_mode=DEFAULT_ARTIFACT_MODE, force_interactive_install=False,
                 content_part_bytes=CONTENT_PART_BYTES, bios_boot=True,
                 default_entry="recovery"):
        if kind not in KINDS:
            raise ValidationError("kind", kind, "one of %s" % ", ".join(sorted(KINDS)))
        self.kind = kind
        spec = KINDS[kind]
        if not installer_image:
            raise ValidationError("installer_image", installer_image, "the installer image reference is required")
        self.installer_image = installer_image
        self.name = validate_name(spec["name_param"], name or DEFAULT_ISO_NAME)
        if not build_dir:
            raise ValidationError("build_dir", build_dir, "a directory path is required")
        self.build_dir = os.path.abspath(os.path.expanduser(build_dir))
        if os.path.exists(self.build_dir) and not os.path.isdir(self.build_dir):
            raise ValidationError("build_dir", self.build_dir, "must be a directory")
        self.user_data = check_user_data(user_data)
        self.clusterconfig = check_file("clusterconfig", clusterconfig, "the cluster definition (spc.tgz)")
        self.edge_custom_config = check_file("edge_custom_config", edge_custom_config, "the edge custom config")
        self.local_ui = check_file("local_ui", local_ui, "the local UI archive (local-ui.tar)")
        self.bundles = find_bundles(content_dirs, spec["bundles"])
        self.debug = bool(debug)
        self.grub_timeout = int(grub_timeout)
        if self.grub_timeout < 0 or self.grub_timeout > 600:
            raise ValidationError("grub_timeout", grub_timeout, "0-600 seconds")
        self.extra_cmdline = extra_cmdline or ""
        if "\n" in self.extra_cmdline or '"' in self.extra_cmdline:
            raise ValidationError("extra_cmdline", extra_cmdline, "kernel arguments on one line, without quotes")
        self.kernel_path = kernel_path
        self.initrd_path = initrd_path
        self.squashfs_level = squashfs_level
        self.artifact_mode = parse_artifact_mode(artifact_mode)
        self._iso_options(force_interactive_install, content_part_bytes)
        self._raw_options(bios_boot, default_entry)

    def _iso_options(self, force_interactive_install, content_part_bytes):
        self.force_interactive_install = bool(force_interactive_install)
        self.part_bytes = int(content_part_bytes)
        if self.part_bytes < MIB or self.part_bytes >= 4 * 1024 ** 3:
            raise ValidationError("content_part_bytes", content_part_bytes, "between 1 MiB and 4 GiB - 1")
        self.parts = content_parts(self.bundles, self.part_bytes) if self.kind == "iso" else []

    def _raw_options(self, bios_boot, default_entry):
        self.bios_boot = bool(bios_boot)
        if default_entry not in RAW_DEFAULT_ENTRIES:
            raise ValidationError("default_entry", default_entry, "one of %s" % ", ".join(RAW_DEFAULT_ENTRIES))
        self.default_entry = default_entry

    @property
    def output(self):
        return os.path.join(self.build_dir, self.name + KINDS[self.kind]["suffix"])

    def grub_cfg(self):
        """The boot menu of the artifact."""
        if self.kind == "iso":
            return menu.iso_grub_cfg(2 if self.force_interactive_install else 0, self.grub_timeout, self.debug,
                                     self.extra_cmdline)
        return menu.raw_grub_cfg(RAW_DEFAULT_ENTRIES.index(self.default_entry), self.grub_timeout, self.debug,
                                 self.extra_cmdline)

    def content_bytes(self):
        """Bytes of the raw disk's content partition data (bundles, cluster definition, edge config); 0: none."""
        total = sum(b["size"] for b in self.bundles)
        for path in (self.clusterconfig, self.edge_custom_config):
            if path:
                total += os.path.getsize(path)
        return total if (self.bundles or self.clusterconfig or self.edge_custom_config) else 0

    def digest(self, image_id, builder):
        """The digest of every input that decides the artifact (compared with the stamp beside it)."""
        inputs = {
            "kind": self.kind, "format": 3, "image": image_id, "name": self.name, "grub": self.grub_cfg(),
            "user_data": file_fingerprint(self.user_data), "clusterconfig": file_fingerprint(self.clusterconfig),
            "edge_custom_config": file_fingerprint(self.edge_custom_config),
            "local_ui": file_fingerprint(self.local_ui),
            "bundles": [(b["name"], file_fingerprint(b["path"])) for b in self.bundles],
            "kernel": self.kernel_path, "initrd": self.initrd_path, "squashfs_level": self.squashfs_level,
            "builder": builder, "recipe": builder_recipe_digest() if builder == "container" else "host"}
        if self.kind == "iso":
            inputs["part_bytes"] = self.part_bytes
        else:
            inputs["bios_boot"] = self.bios_boot
            inputs["cloud_files"] = cloud.files_digest()
        return inputs_digest(inputs)
