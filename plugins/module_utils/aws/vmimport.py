# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VM Import/Export service role (``vmimport``) that ImportSnapshot needs: checked, created on request.

CanvOS's script relies on the role without checking or documenting it (CONFORMANCE 6.8, B15); this preflight fails
before the upload with the fix, or creates the role with the trust and role policies AWS documents.
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import unquote

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.aws.connection import describe_error, error_code

VMIE_SERVICE = "vmie.amazonaws.com"


@dataclasses.dataclass
class RoleOutcome:
    plan: str = "exists"
    created: bool = False
    changed: bool = False


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_policy(document):
    if isinstance(document, dict):
        return document
    if not document:
        return {}
    text = str(document)
    if text.startswith("%7B") or text.startswith("%7b"):
        text = unquote(text)
    return json.loads(text)


def trust_allows_vmie(document):
    """True when the trust policy lets vmie.amazonaws.com call sts:AssumeRole."""
    policy = parse_policy(document)
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal") or {}
        if principal == "*":
            return True
        services = _as_list(principal.get("Service") if isinstance(principal, dict) else None)
        if VMIE_SERVICE in services:
            return True
    return False


def vmimport_trust_policy():
    """The trust policy AWS documents for the VM Import/Export service role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": VMIE_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:Externalid": "vmimport"}},
            }
        ],
    }


def vmimport_role_policy(bucket):
    """The role policy AWS documents: read the import bucket, and the EC2 snapshot/image permissions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket],
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:ModifySnapshotAttribute", "ec2:CopySnapshot", "ec2:RegisterImage", "ec2:Describe*"],
                "Resource": "*",
            },
        ],
    }


def policy_grants_bucket(document, bucket):
    policy = parse_policy(document)
    wanted = ("arn:aws:s3:::%s/*" % bucket, "arn:aws:s3:::*", "*")
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("s3:GetObject", "s3:Get*", "s3:*", "*") for a in actions):
            continue
        if any(r in wanted for r in _as_list(statement.get("Resource"))):
            return True
    return False


def missing_role_message(role, bucket):
    return (
        "the VM import service role %r does not exist; ImportSnapshot needs it. Set "
        "create_vmimport_role: true to create it (trust vmie.amazonaws.com with external id vmimport, "
        "S3 read on bucket %s), or create it as AWS documents (aws iam create-role --role-name %s "
        "--assume-role-policy-document file://trust-policy.json; aws iam put-role-policy --role-name %s "
        "--policy-name vmimport --policy-document file://role-policy.json), or name an existing role "
        "with role_name." % (role, bucket, role, role)
    )


KMS_ACTIONS = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*",
               "kms:ReEncrypt*"]


def kms_resource(kms_key_id):
    """The policy resource of a key: its ARN when given as one, else every key (an alias or id is no resource)."""
    return kms_key_id if str(kms_key_id).startswith("arn:") else "*"


def vmimport_kms_policy(kms_key_id):
    """What the role needs to write an encrypted snapshot with a customer managed key (AWS's VM Import docs)."""
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": KMS_ACTIONS, "Resource": kms_resource(kms_key_id)}]}


def policy_grants_kms(document, kms_key_id):
    policy = parse_policy(document)
    wanted = (kms_resource(kms_key_id), "*")
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("kms:CreateGrant", "kms:*", "*") for a in actions):
            continue
        if any(r in wanted for r in _as_list(statement.get("Resource"))):
            return True
    return False


def ensure_vmimport_role(ctx, role, bucket, create, kms_key_id=None):
    """Check the role (and create it, or grant it the bucket and the KMS key, when ``create``); a RoleOutcome."""
    outcome = _ensure_role(ctx, role, bucket, create)
    role_exists = outcome.created or not outcome.plan.startswith("create")  # in check mode a new role is planned
    if create and kms_key_id and _ensure_kms_policy(ctx, role, kms_key_id, role_exists):
        outcome.changed = True
        outcome.plan = "%s; grant the use of KMS key %s" % (outcome.plan, kms_key_id)
    return outcome


def _ensure_kms_policy(ctx, role, kms_key_id, role_exists):
    iam = ctx.conn.iam
    if role_exists:
        for name in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
            if policy_grants_kms(iam.get_role_policy(RoleName=role, PolicyName=name).get("PolicyDocument"),
                                 kms_key_id):
                return False
    if not ctx.check_mode:
        iam.put_role_policy(RoleName=role, PolicyName="vmimport-kms",
                            PolicyDocument=json.dumps(vmimport_kms_policy(kms_key_id)))
        ctx.log("granted role %s the use of KMS key %s" % (role, kms_key_id))
    return True


def _ensure_role(ctx, role, bucket, create):
    iam = ctx.conn.iam
    try:
        answer = iam.get_role(RoleName=role)
    except Exception as err:  # pylint: disable=broad-except
        if error_code(err) != "NoSuchEntity":
            raise describe_error("IAM GetRole %s" % role, err) from None
        answer = None
    if answer is None:
        if not create:
            raise EdgeforgeError(missing_role_message(role, bucket))
        return _create_role(ctx, role, bucket)
    if not trust_allows_vmie(answer["Role"].get("AssumeRolePolicyDocument")):
        raise EdgeforgeError(
            "the role %r exists but its trust policy does not let %s assume it; ImportSnapshot would fail. "
            "Update its trust policy (aws iam update-assume-role-policy) to the one AWS documents for VM "
            "Import/Export, or name another role with role_name." % (role, VMIE_SERVICE)
        )
    if create:
        return _ensure_bucket_policy(ctx, role, bucket)
    return RoleOutcome()


def _create_role(ctx, role, bucket):
    if ctx.check_mode:
        return RoleOutcome(plan="create %s" % role, changed=True)
    iam = ctx.conn.iam
    try:
        iam.create_role(
            RoleName=role,
            AssumeRolePolicyDocument=json.dumps(vmimport_trust_policy()),
            Description="VM Import/Export service role (created by edgeforge.artifacts.ec2_image_import)",
        )
    except Exception as err:  # pylint: disable=broad-except
        # A repeated CreateRole (botocore retry after a lost answer) finds the role the first one made.
        if error_code(err) != "EntityAlreadyExists":
            raise describe_error("IAM CreateRole %s" % role, err) from None
    iam.put_role_policy(RoleName=role, PolicyName="vmimport", PolicyDocument=json.dumps(vmimport_role_policy(bucket)))
    ctx.log("created the VM import service role %s" % role)
    return RoleOutcome(plan="create %s" % role, created=True, changed=True)


def _ensure_bucket_policy(ctx, role, bucket):
    iam = ctx.conn.iam
    for name in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
        document = iam.get_role_policy(RoleName=role, PolicyName=name).get("PolicyDocument")
        if policy_grants_bucket(document, bucket):
            return RoleOutcome()
    plan = "add S3 read on %s to %s" % (bucket, role)
    if ctx.check_mode:
        return RoleOutcome(plan=plan, changed=True)
    iam.put_role_policy(RoleName=role, PolicyName="vmimport-%s" % bucket,
                        PolicyDocument=json.dumps(vmimport_role_policy(bucket)))
    ctx.log("granted role %s read access to bucket %s" % (role, bucket))
    return RoleOutcome(plan=plan, changed=True)
