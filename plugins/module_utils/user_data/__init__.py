# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Edge installer user data (`user-data`): render, merge, validate offline, mask secrets.

Plain Python (PyYAML only): unit tests import this without Ansible, and the user_data module runs it on the
build host. A bad file is refused before any ISO build, with one message per bad value that names the field;
secret values (the registration token, registry passwords, user passwords) never appear in a message, a warning or
a masked preview.

- ``schema``: the documented fields and ``validate_document``;
- ``structured``: the document built from structured options, ``merge_documents``;
- ``document``: text <-> document (``parse_document``, ``dump_document``), ``render``, ``validate_text``;
- ``masking``: ``collect_secrets``, ``mask_text`` and friends.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import MASK
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.document import (
    HAS_YAML, YAML_IMPORT_ERROR, dump_document, parse_document, render, validate_text)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.masking import (
    collect_secrets, mask_any_text, mask_document, mask_text, secrets_of_text)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.schema import (
    HEADER, LEAKABLE_SECRET_KEYS, SCHEMA, SECRET_KEYS, USERS_STAGE_NAME, VMXNET3_STAGE_NAME, Report, UserDataError,
    validate_document)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.structured import (
    build_document, merge_documents, structured_document, vmxnet3_stage)

__all__ = [
    "HAS_YAML", "HEADER", "LEAKABLE_SECRET_KEYS", "MASK", "SCHEMA", "SECRET_KEYS", "USERS_STAGE_NAME",
    "VMXNET3_STAGE_NAME", "YAML_IMPORT_ERROR", "Report", "UserDataError", "build_document", "collect_secrets",
    "dump_document", "mask_any_text", "mask_document", "mask_text", "merge_documents", "parse_document", "render",
    "secrets_of_text", "structured_document", "validate_document", "validate_text", "vmxnet3_stage",
]
