# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write CanvOS ``.arg`` files.

A ``.arg`` file is a dotenv file that CanvOS feeds both to Earthly (as build args) and to ``earthly.sh``
(``source .arg``), so it must stay valid shell too. What this reader accepts:

- ``KEY=value`` lines, optionally prefixed by ``export``; blank lines and ``#`` comment lines;
- unquoted values (surrounding blanks stripped, `` #`` starts a trailing comment), ``'single-quoted'`` values
  (literal), ``"double-quoted"`` values (``\\"``, ``\\\\``, ``\\$`` and ``\\``` escapes);
- ``$VAR`` and ``${VAR}`` expansion of keys defined EARLIER in the file (the template's ``IMAGE_REPO=$OS_DISTRIBUTION``),
  in unquoted and double-quoted values; an unknown variable expands to an empty string and is reported;
- keys in any case (``K8s_VERSION`` in the public guide means ``K8S_VERSION``): keys are upper-cased, and the
  spelling in the file is kept in ``spelled`` so callers can tell users where CanvOS (case-sensitive) differs.

The writer quotes only when needed, so a written file reads back to the same values and is still valid shell.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import OrderedDict

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError, atomic_write


KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SAFE_UNQUOTED_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


class Raw(str):
    """A value written verbatim (unquoted), e.g. ``$OS_DISTRIBUTION`` so the file keeps following that key."""


class ArgValues(OrderedDict):
    """The values of a ``.arg`` file (upper-case keys, in file order).

    ``unresolved`` lists the ``$VAR`` references that named no earlier key (they expanded to "").
    ``lines`` maps each key to the line number where it was (last) set; ``raw`` to its text before parsing;
    ``spelled`` to the key as the file wrote it (CanvOS matches keys case-sensitively, so ``K8s_VERSION`` matters).
    """

    def __init__(self, *args, **kwargs):
        super(ArgValues, self).__init__(*args, **kwargs)
        self.unresolved = []
        self.lines = {}
        self.raw = {}
        self.spelled = {}


def _expand(text, known, unresolved):
    def repl(match):
        name = (match.group(1) or match.group(2)).upper()
        if name in known:
            return known[name]
        unresolved.append(name)
        return ""
    return _VAR_RE.sub(repl, text)


def _parse_value(raw, known, unresolved, where):
    """Parse the right-hand side of ``KEY=...`` (``raw`` has no trailing newline)."""
    raw = raw.lstrip()
    if not raw:
        return ""
    if raw[0] == "'":
        end = raw.find("'", 1)
        if end < 0:
            raise ValidationError(where, raw, "a closing single quote")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ValidationError(where, raw, "nothing but a comment after the closing quote")
        return raw[1:end]
    if raw[0] == '"':
        out = []
        i = 1
        while i < len(raw):
            char = raw[i]
            if char == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\$`':
                # An escaped '$' must not expand: protect it from the expansion pass below.
                out.append("\x00" if raw[i + 1] == "$" else raw[i + 1])
                i += 2
                continue
            if char == '"':
                rest = raw[i + 1:].strip()
                if rest and not rest.startswith("#"):
                    raise ValidationError(where, raw, "nothing but a comment after the closing quote")
                return _expand("".join(out), known, unresolved).replace("\x00", "$")
            out.append(char)
            i += 1
        raise ValidationError(where, raw, "a closing double quote")
    # Unquoted: a '#' preceded by blank starts a comment.
    value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return _expand(value, known, unresolved)


def parse_arg_text(text, source=".arg"):
    """Parse ``.arg`` text into an ArgValues (upper-case keys). Raises ValidationError on a malformed line."""
    values = ArgValues()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export ") or stripped.startswith("export\t"):
            stripped = stripped[len("export"):].lstrip()
        key, sep, rest = stripped.partition("=")
        key = key.strip()
        where = "%s line %d" % (source, number)
        if not sep or not KEY_RE.match(key):
            raise ValidationError(where, line, "KEY=value lines, '#' comments or blank lines")
        spelled, key = key, key.upper()
        values[key] = _parse_value(rest, values, values.unresolved, where)
        values.spelled[key] = spelled
        values.lines[key] = number
        values.raw[key] = rest.strip()
    return values


def read_arg_file(path):
    """Read a CanvOS ``.arg`` file into an ArgValues (upper-case keys, values expanded)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (IOError, OSError) as err:
        raise ValidationError("arg_file", path, "a readable CanvOS .arg file (%s)" % (err.strerror or err))
    except UnicodeDecodeError as err:
        raise ValidationError("arg_file", path, "a UTF-8 text file (%s)" % err)
    return parse_arg_text(text, source=path)


def quote_value(value):
    """Quote ``value`` so that both this reader and a POSIX shell read it back unchanged."""
    if isinstance(value, Raw):
        return str(value)
    value = "" if value is None else str(value)
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValidationError("value", value, "a single line (a .arg value cannot hold a newline)")
    if _SAFE_UNQUOTED_RE.match(value):
        return value
    if "'" not in value:
        return "'%s'" % value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return '"%s"' % escaped


def render_arg_text(values, header=None):
    """Render ``values`` (key -> str, in order) as ``.arg`` text. ``header`` lines become ``#`` comments."""
    lines = []
    for line in (header or []):
        lines.append(("# " + line).rstrip())
    for key, value in values.items():
        if not KEY_RE.match(key):
            raise ValidationError("arg key", key, "letters, digits and '_' (not starting with a digit)")
        lines.append("%s=%s" % (key.upper(), quote_value(value)))
    return "\n".join(lines) + "\n"


def write_arg_file(path, values, header=None, mode=0o644):
    """Write ``values`` as a ``.arg`` file atomically. Returns the text written."""
    text = render_arg_text(values, header)
    atomic_write(path, text, mode=mode)
    return text
