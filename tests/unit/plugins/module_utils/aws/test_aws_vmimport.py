"""The VM import service role's policies."""

import json
from urllib.parse import quote

from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws import vmimport as vm


# -- role policies ---------------------------------------------------------------------------------------------------


def test_documented_trust_policy_is_accepted_in_every_encoding():
    policy = vm.vmimport_trust_policy()
    assert policy["Statement"][0]["Condition"]["StringEquals"]["sts:Externalid"] == "vmimport"
    assert vm.trust_allows_vmie(policy)
    assert vm.trust_allows_vmie(json.dumps(policy))
    assert vm.trust_allows_vmie(quote(json.dumps(policy)))  # IAM's raw API answer is URL-encoded


def test_trust_for_another_service_or_deny_is_rejected():
    other = {"Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]},
                            "Action": "sts:AssumeRole"}]}
    deny = {"Statement": [{"Effect": "Deny", "Principal": {"Service": "vmie.amazonaws.com"},
                           "Action": "sts:AssumeRole"}]}
    assert not vm.trust_allows_vmie(other)
    assert not vm.trust_allows_vmie(deny)
    assert not vm.trust_allows_vmie("")


def test_role_policy_grants_the_bucket_and_the_snapshot_permissions():
    policy = vm.vmimport_role_policy("my-bucket")
    assert vm.policy_grants_bucket(policy, "my-bucket")
    assert not vm.policy_grants_bucket(policy, "other-bucket")
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert {"s3:GetObject", "s3:ListBucket", "ec2:ModifySnapshotAttribute", "ec2:CopySnapshot"} <= set(actions)


def test_the_kms_policy_names_the_key_arn_or_every_key():
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = vm.vmimport_kms_policy(arn)
    assert policy["Statement"][0]["Resource"] == arn
    assert "kms:CreateGrant" in policy["Statement"][0]["Action"]
    assert vm.policy_grants_kms(policy, arn)
    assert vm.vmimport_kms_policy("alias/edge")["Statement"][0]["Resource"] == "*"
    assert not vm.policy_grants_kms(vm.vmimport_role_policy("bucket"), arn)
