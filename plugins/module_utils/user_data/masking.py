# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets of the user data (the registration token, registry and user passwords) hidden from every output."""

from __future__ import annotations

import copy
import re

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import MASK, mask_secrets
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.document import yaml
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.schema import (
    LEAKABLE_SECRET_KEYS, SECRET_KEYS)


def collect_secrets(doc, keys=LEAKABLE_SECRET_KEYS):
    """Every value stored under one of ``keys`` anywhere in the document (default: token and passwords, not
    user passwords, which are often common words such as a user name)."""
    found = []

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and value is not None and not isinstance(value, (dict, list)):
                    found.append(str(value))
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(doc)
    return [value for value in found if value]


def mask_document(doc):
    """A deep copy with every secret value replaced by the mask."""

    def visit(node):
        if isinstance(node, dict):
            return {key: (MASK if key in SECRET_KEYS and value is not None and not isinstance(value, (dict, list))
                          else visit(value)) for key, value in node.items()}
        if isinstance(node, list):
            return [visit(item) for item in node]
        return copy.deepcopy(node)

    return visit(doc)


_KEYS_RE = "|".join(re.escape(key) for key in SECRET_KEYS)
# `key: value` in block style (mask to the end of the line) ...
_BLOCK_SECRET_RE = re.compile(r"(?m)^(?P<lead>[ \t]*(?:-[ \t]+)?[\"']?(?:%s)[\"']?[ \t]*:)(?P<value>[ \t]*\S.*)$"
                              % _KEYS_RE)
# ... and in flow style (`{password: x, ...}`: mask to the next comma or closing brace).
_FLOW_SECRET_RE = re.compile(r"(?P<lead>[{,][ \t]*[\"']?(?:%s)[\"']?[ \t]*:)(?P<value>[ \t]*[^,}\n]+)" % _KEYS_RE)


def mask_text(text, secrets=()):
    """Hide secret values in user-data text: by key (block and flow style) and by known value."""
    if not text:
        return text
    text = _BLOCK_SECRET_RE.sub(lambda m: m.group("lead") + " " + MASK, text)
    text = _FLOW_SECRET_RE.sub(lambda m: m.group("lead") + " " + MASK, text)
    return mask_secrets(text, secrets)


def secrets_of_text(text):
    """The secrets of a text that may not even be YAML (a previous file, a broken src): best effort, never raises."""
    try:
        return collect_secrets(yaml.safe_load(text))
    except Exception:  # pylint: disable=broad-except  # masking must never fail on a broken file
        return []


def mask_any_text(text):
    """Mask a text that may not even be YAML: parse it if possible to learn its secrets."""
    return mask_text(text, secrets_of_text(text))
