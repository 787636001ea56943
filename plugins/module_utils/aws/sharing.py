# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch permissions of the AMI: accounts, organizations, organizational units, or everyone.

Wanted permissions are added; permissions the AMI has beyond them are removed only with ``purge`` (as amazon.aws
does for tags), so a run never takes away a share someone made by hand unless asked to.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error

# option key -> the LaunchPermission field of EC2 (the names of amazon.aws's ec2_ami launch_permissions)
PERMISSION_KEYS = {
    "user_ids": "UserId",
    "group_names": "Group",
    "org_arns": "OrganizationArn",
    "org_unit_arns": "OrganizationalUnitArn",
}


def normalise_launch_permissions(value):
    """The wanted permissions as EC2 LaunchPermission entries (sorted), or None when not managed."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(PERMISSION_KEYS):
        raise ValidationError("launch_permissions", value,
                              "use a dictionary with the lists %s" % ", ".join(sorted(PERMISSION_KEYS)))
    wanted = []
    for key, field in sorted(PERMISSION_KEYS.items()):
        items = value.get(key) or []
        if isinstance(items, str) or not isinstance(items, list):
            raise ValidationError("launch_permissions.%s" % key, items, "use a list")
        for item in items:
            item = str(item)
            if key == "user_ids" and (len(item) != 12 or not item.isdigit()):
                raise ValidationError("launch_permissions.user_ids", item, "use 12-digit AWS account ids")
            if key == "group_names" and item != "all":
                raise ValidationError("launch_permissions.group_names", item, "the only group is all (public)")
            wanted.append({field: item})
    return _sorted(wanted)


def _sorted(permissions):
    unique = {tuple(sorted(p.items())) for p in permissions}
    return [dict(p) for p in sorted(unique)]


def permission_changes(current, wanted, purge):
    """(to add, to remove): ``wanted`` missing from ``current``; with ``purge`` also ``current`` beyond ``wanted``."""
    current = _sorted(current or [])
    add = [p for p in wanted if p not in current]
    remove = [p for p in current if p not in wanted] if purge else []
    return add, remove


def ensure_launch_permissions(ctx, image_id, wanted, purge):
    """Bring the AMI's launch permissions to ``wanted`` (None: not managed); True when something changed."""
    if wanted is None:
        return False
    ec2 = ctx.conn.ec2
    try:
        answer = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    except Exception as err:  # pylint: disable=broad-except
        raise describe_error("EC2 DescribeImageAttribute launchPermission of %s" % image_id, err) from None
    add, remove = permission_changes(answer.get("LaunchPermissions"), wanted, purge)
    if not add and not remove:
        return False
    if not ctx.check_mode:
        change = {}
        if add:
            change["Add"] = add
        if remove:
            change["Remove"] = remove
        try:
            ec2.modify_image_attribute(ImageId=image_id, LaunchPermission=change)
        except Exception as err:  # pylint: disable=broad-except
            raise describe_error("EC2 ModifyImageAttribute launchPermission of %s" % image_id, err) from None
        ctx.log("launch permissions of %s: added %s, removed %s" % (image_id, add or "none", remove or "none"))
    return True
