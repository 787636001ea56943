"""Launch permissions: what is added, what is removed only with purge, what is refused."""

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import sharing
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError


def test_the_options_become_ec2_launch_permissions():
    wanted = sharing.normalise_launch_permissions({
        "user_ids": ["123456789012", "123456789012"], "group_names": ["all"],
        "org_arns": ["arn:aws:organizations::123456789012:organization/o-abc"], "org_unit_arns": None})
    assert wanted == [{"Group": "all"}, {"OrganizationArn": "arn:aws:organizations::123456789012:organization/o-abc"},
                      {"UserId": "123456789012"}]
    assert sharing.normalise_launch_permissions(None) is None
    assert sharing.normalise_launch_permissions({}) == []


@pytest.mark.parametrize("bad, param", [
    ({"user_ids": ["12345"]}, "launch_permissions.user_ids"),
    ({"group_names": ["admins"]}, "launch_permissions.group_names"),
    ({"users": ["123456789012"]}, "launch_permissions"),
    ({"user_ids": "123456789012"}, "launch_permissions.user_ids"),
])
def test_bad_permissions_name_the_parameter(bad, param):
    with pytest.raises(ValidationError) as err:
        sharing.normalise_launch_permissions(bad)
    assert err.value.param == param


def test_missing_permissions_are_added_and_others_removed_only_with_purge():
    current = [{"UserId": "111111111111"}, {"Group": "all"}]
    wanted = [{"UserId": "222222222222"}, {"Group": "all"}]
    assert sharing.permission_changes(current, wanted, purge=False) == ([{"UserId": "222222222222"}], [])
    assert sharing.permission_changes(current, wanted, purge=True) == (
        [{"UserId": "222222222222"}], [{"UserId": "111111111111"}])
    assert sharing.permission_changes(wanted, wanted, purge=True) == ([], [])
