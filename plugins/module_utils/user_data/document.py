# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""User-data text and documents: parse (the `#cloud-config` header, then YAML), dump, render, validate a text."""

from __future__ import annotations

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.schema import (
    HEADER, Report, UserDataError, _type_of, validate_document)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data.structured import build_document


def parse_document(text, source="user-data"):
    """Parse user-data text: the `#cloud-config` header is required, then YAML. Returns the document (dict)."""
    if not HAS_YAML:  # pragma: no cover
        raise EdgeforgeError("PyYAML is required to read user data")
    if text.startswith("\ufeff"):
        text = text[1:]
    first_line = text.split("\n", 1)[0].strip()
    if first_line != HEADER:
        raise UserDataError(["%s: the first line must be '%s' (the installer ignores user data without it)"
                             % (source, HEADER)])
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = " at line %d column %d" % (mark.line + 1, mark.column + 1)
        problem = getattr(err, "problem", None) or "syntax error"
        # The YAML library quotes the offending line, which may hold the token: report only the position.
        raise UserDataError(["%s: not valid YAML: %s%s" % (source, problem, where)]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise UserDataError(["%s: the document must be a mapping of keys (stylus, install, stages, ...), got %s"
                             % (source, _type_of(doc))])
    return doc


if HAS_YAML:
    class _Dumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
        """Block style, multi-line strings (PEM certificates) as literal blocks, lists indented under keys."""

        def increase_indent(self, flow=False, indentless=False):
            return super().increase_indent(flow, False)

    def _str_representer(dumper, value):
        if "\n" in value:
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    _Dumper.add_representer(str, _str_representer)


def dump_document(doc):
    """The file content: the header line then the YAML document (key order kept, so output is deterministic)."""
    if not HAS_YAML:  # pragma: no cover
        raise EdgeforgeError("PyYAML is required to write user data")
    body = yaml.dump(doc, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True,
                     width=4096) if doc else ""
    return HEADER + "\n" + body


def render(options, base_text=None, source="user-data"):
    """Render and validate. Returns (text, document, report); raises UserDataError when the result is invalid.

    ``base_text`` is a user-supplied document (src file or content); it must carry the `#cloud-config` header.
    """
    base = parse_document(base_text, source) if base_text is not None else None
    doc = build_document(options, base)
    report = validate_document(doc)
    report.raise_for_errors()
    return dump_document(doc), doc, report


def validate_text(text, source="user-data"):
    """Validate an existing user-data text (the CanvOS `+validate-user-data` equivalent). Returns the Report;
    header and YAML problems are reported as errors too, so the caller decides whether to raise."""
    try:
        doc = parse_document(text, source)
    except UserDataError as err:
        report = Report()
        report.errors.extend(err.problems)
        return report
    return validate_document(doc)
