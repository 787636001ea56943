# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of an image import: defaults and choices written once, checked before any AWS call."""

from __future__ import annotations

import datetime
import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.sharing import normalise_launch_permissions

MiB = 1024 * 1024
GiB = 1024 * MiB
S3_MIN_PART = 5 * MiB
S3_MAX_PART = 5 * GiB

ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
BOOT_MODES = ("uefi", "legacy-bios", "uefi-preferred")
DISK_FORMATS = ("raw", "vmdk")
DEFAULT_EBS_KEY = "alias/aws/ebs"
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")

# name: (AnsibleModule type, default, choices). The module's argument spec is built from this table.
IMPORT_OPTIONS = {
    "state": ("str", "present", ("present", "absent")),
    "image_path": ("path", None, None),
    "image_sha256": ("str", None, None),
    "bucket": ("str", None, None),
    "key": ("str", None, None),
    "disk_format": ("str", "raw", DISK_FORMATS),
    "part_size_mb": ("int", 64, None),
    "concurrency": ("int", 4, None),
    "overwrite": ("bool", False, None),
    "resume": ("bool", False, None),
    "force": ("bool", False, None),
    "role_name": ("str", "vmimport", None),
    "encrypted": ("bool", False, None),
    "kms_key_id": ("str", None, None),
    "create_vmimport_role": ("bool", False, None),
    "import_description": ("str", None, None),
    "ami_name": ("str", None, None),
    "ami_description": ("str", None, None),
    "arch": ("str", "amd64", tuple(ARCHITECTURES)),
    "root_device_name": ("str", "/dev/xvda", None),
    "volume_size": ("int", None, None),
    "min_volume_size": ("int", None, None),
    "volume_type": ("str", "gp3", VOLUME_TYPES),
    "delete_on_termination": ("bool", True, None),
    "boot_mode": ("str", "uefi", BOOT_MODES),
    "ena_support": ("bool", True, None),
    "tags": ("dict", {}, None),
    "launch_permissions": ("dict", None, None),
    "purge_launch_permissions": ("bool", False, None),
    "deprecation_time": ("str", None, None),
    "copy_to_regions": ("list", None, None),
    "copy_kms_key_ids": ("dict", None, None),
    "remove_object": ("bool", False, None),
    "upload_timeout": ("int", None, None),
    "wait_timeout": ("int", 3600, None),
    "poll_interval": ("float", 15, None),
    "delete_object_after": ("bool", False, None),
    "work_dir": ("path", None, None),
}


def import_argument_spec():
    """The AnsibleModule argument_spec of ec2_image_import's own options (connection options aside)."""
    spec = {}
    for name, (kind, default, choices) in IMPORT_OPTIONS.items():
        entry = {"type": kind}
        if default is not None:
            entry["default"] = default
        if choices:
            entry["choices"] = list(choices)
        spec[name] = entry
    spec["bucket"]["required"] = True
    spec["copy_to_regions"]["elements"] = "str"
    spec["launch_permissions"]["options"] = {
        name: {"type": "list", "elements": "str"} for name in ("user_ids", "group_names", "org_arns", "org_unit_arns")
    }
    spec["key"]["no_log"] = False
    spec["copy_kms_key_ids"]["no_log"] = False  # key ids and ARNs, not key material
    return spec


def _defaults():
    opts = {name: default for name, (_kind, default, _choices) in IMPORT_OPTIONS.items()}
    opts["tags"] = {}
    return opts


def _check_choices(opts):
    for name, (_kind, _default, choices) in IMPORT_OPTIONS.items():
        if choices and opts[name] not in choices:
            raise ValidationError(name, opts[name], "use one of %s" % ", ".join(choices))


def _check_numbers(opts):
    part_size = int(opts["part_size_mb"]) * MiB
    if part_size < S3_MIN_PART or part_size > S3_MAX_PART:
        raise ValidationError("part_size_mb", opts["part_size_mb"], "S3 parts are 5 MiB to 5120 MiB")
    opts["part_size"] = part_size
    if int(opts["concurrency"]) < 1 or int(opts["concurrency"]) > 64:
        raise ValidationError("concurrency", opts["concurrency"], "use 1 to 64 parallel part uploads")
    opts["concurrency"] = int(opts["concurrency"])
    for name in ("wait_timeout", "poll_interval", "upload_timeout"):
        if opts[name] is not None and float(opts[name]) <= 0:
            raise ValidationError(name, opts[name], "use a positive number of seconds")
    if opts["volume_size"] is not None and int(opts["volume_size"]) < 1:
        raise ValidationError("volume_size", opts["volume_size"], "use a size in GiB, at least the image size")
    if opts["min_volume_size"] is not None and int(opts["min_volume_size"]) < 0:
        raise ValidationError("min_volume_size", opts["min_volume_size"], "use a size in GiB (0: not known)")


def volume_size_warning(opts):
    """The root volume the AMI registers: the user's ``volume_size`` wins; without one, ``min_volume_size`` (the
    size the image's first boot needs, B21). Returns a warning when the user's size is below that minimum."""
    minimum = int(opts["min_volume_size"] or 0)
    if opts["volume_size"] is None:
        if minimum:
            opts["volume_size"] = minimum
        return None
    if int(opts["volume_size"]) < minimum:
        return ("volume_size %s GiB is below the %s GiB the raw image needs at first boot (its partitions plus the "
                "state and persistent partitions it adds): instances of this AMI fail their first boot unless "
                "launched with a larger root volume" % (opts["volume_size"], minimum))
    return None


def normalise_options(options):
    """Defaults applied and every value checked; raises ValidationError naming the parameter."""
    opts = _defaults()
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    if not opts["bucket"]:
        raise ValidationError("bucket", opts["bucket"], "name the S3 bucket that receives the image")
    if opts["state"] == "present" and not opts["image_path"]:
        raise ValidationError("image_path", opts["image_path"], "give the path of the raw disk image to import")
    if not opts["key"]:
        if not opts["image_path"]:
            raise ValidationError("key", opts["key"], "give the S3 key (or image_path: the key is its file name)")
        opts["key"] = os.path.basename(opts["image_path"])  # CanvOS: S3_KEY defaults to the raw file name
    if not opts["ami_name"]:
        opts["ami_name"] = opts["key"]  # CanvOS: AMI_NAME defaults to S3_KEY
    if opts["image_sha256"]:
        digest = str(opts["image_sha256"]).strip().lower().split()[0]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValidationError("image_sha256", opts["image_sha256"], "give the 64 hex digits of the image's SHA-256")
        opts["image_sha256"] = digest
    _check_choices(opts)
    _check_numbers(opts)
    tags = opts["tags"] or {}
    if not isinstance(tags, dict):
        raise ValidationError("tags", tags, "use a dictionary of tag names to values")
    opts["tags"] = {str(k): str(v) for k, v in tags.items()}
    opts["launch_permissions"] = normalise_launch_permissions(opts["launch_permissions"])
    if opts["kms_key_id"]:
        opts["encrypted"] = True
    if opts["launch_permissions"] and opts["encrypted"] and opts["kms_key_id"] in (None, DEFAULT_EBS_KEY):
        raise ValidationError(
            "launch_permissions", opts["launch_permissions"],
            "an AMI encrypted with the default aws/ebs key cannot be shared; give kms_key_id (a customer managed key "
            "whose key policy lets those accounts use it) or share none")
    deprecation_time(opts["deprecation_time"])  # checked now, before any work
    normalise_regions(opts["copy_to_regions"], opts["copy_kms_key_ids"], opts["encrypted"])
    if not opts["import_description"]:
        opts["import_description"] = "Import %s" % opts["key"]
    return opts


def aws_architecture(arch):
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValidationError("arch", arch, "use amd64 (x86_64) or arm64") from None


def deprecation_time(value):
    """The wanted deprecation time as an aware UTC datetime to the minute (AWS keeps minutes), or None (pure)."""
    if value in (None, ""):
        return None
    try:
        when = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("deprecation_time", value, "use an ISO 8601 date and time, e.g. 2027-06-30T00:00:00Z") \
            from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).replace(second=0, microsecond=0)


def normalise_regions(regions, kms_key_ids, encrypted, home_region=None):
    """The target regions (the home region and duplicates dropped); each needs a KMS key when encrypting with one."""
    regions = [str(r) for r in (regions or [])]
    kms_key_ids = dict(kms_key_ids or {})
    unknown = sorted(set(kms_key_ids) - set(regions))
    if unknown:
        raise ValidationError("copy_kms_key_ids", unknown, "give keys only for regions of copy_to_regions")
    if encrypted and kms_key_ids and set(regions) - set(kms_key_ids):
        raise ValidationError("copy_kms_key_ids", sorted(kms_key_ids), "a KMS key is per region: give one for each "
                              "region of copy_to_regions (%s)" % ", ".join(regions))
    return [r for i, r in enumerate(regions) if r not in regions[:i] and r != home_region]
