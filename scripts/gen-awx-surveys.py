"""Generate the AWX survey specs (awx/surveys/<playbook>.json) from the roles' argument specs.

    python scripts/gen-awx-surveys.py           # rewrite awx/surveys/*.json
    python scripts/gen-awx-surveys.py --check   # exit 1 if a survey is not current (scripts/test.sh runs this)

One survey per playbook. Its questions are the guide's values the playbook ships (playbooks/vars/<playbook>.yml)
plus build_dir; a playbook without such a file (build_host.yml) asks for the scalar variables of the roles it calls.
Type, choices and help text come from the argument spec of the role that owns the variable; the default is the
shipped value. A question is required when its spec says so or when the flow ships a non-empty value for it (an
empty answer would replace that value). Secrets and the variables the credential types in awx/credential_types/
inject are left out: they come from credentials. Lists without choices and dictionaries are left out too: a survey
answer is text (set them as extra variables).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

import yaml

import generated_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOKS = ("basic", "advanced", "aws", "build_host")
BUILD_DIR = {
    "question_name": "build_dir",
    "question_description": "Directory of the outputs on each build host. Empty: ./build of the job's working "
                            "directory (AWX discards it after the job: give a path the build host keeps).",
    "required": False,
    "type": "text",
    "variable": "build_dir",
    "default": "",
    "min": 0,
    "max": 4096,
}
MARKUP = re.compile(r"[CVOMIBERPU]\(([^)]*)\)")


def role_specs():
    """{role: {variable: spec}} of every role's entry points."""
    specs = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        with open(path, encoding="utf-8") as handle:
            entry_points = yaml.safe_load(handle)["argument_specs"]
        options = {}
        for entry in entry_points.values():
            options.update(entry.get("options") or {})
        specs[role] = options
    return specs


def injected_variables():
    """Variables the credential types set (extra vars): a credential, not a survey, supplies them."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, "awx", "credential_types", "*.yml")):
        with open(path, encoding="utf-8") as handle:
            names.update((yaml.safe_load(handle)["injectors"].get("extra_vars") or {}).keys())
    return names


def playbook_roles(playbook, specs):
    """Roles the playbook calls, in the order they appear in it."""
    with open(os.path.join(ROOT, "playbooks", playbook + ".yml"), encoding="utf-8") as handle:
        text = handle.read()
    found = re.findall(r"edgeforge\.artifacts\.([a-z_]+)", text)
    return [role for index, role in enumerate(found) if role in specs and role not in found[:index]]


def shipped_values(playbook):
    path = os.path.join(ROOT, "playbooks", "vars", playbook + ".yml")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def describe(spec):
    """The first sentence of the variable's description, without Ansible doc markup."""
    text = spec.get("description") or ""
    text = " ".join((" ".join(text) if isinstance(text, list) else str(text)).split())
    text = MARKUP.sub(r"\1", text)
    first = text.split(". ")[0].rstrip(".")
    return (first[:497] + "...") if len(first) > 500 else first + "."


def _answer(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def question(name, spec, value, shipped):
    """One survey question, or None when a survey cannot carry the variable."""
    kind = spec.get("type", "str")
    choices = [str(choice) for choice in spec.get("choices") or []]
    if spec.get("no_log") or kind == "dict" or (kind == "list" and not choices):
        return None
    default = _answer(value)
    required = bool(spec.get("required")) or (shipped and default != "")
    if "{{" in default:
        if not shipped:
            return None  # the role computes it from other variables
        default = ""  # the playbook's template is no answer: ask for the value
    item = {"question_name": name, "question_description": describe(spec), "required": required, "variable": name}
    if kind == "bool":
        item.update(type="multiplechoice", choices=["true", "false"], default=default or "false")
    elif kind == "list":
        item.update(type="multiselect", choices=choices, default="\n".join(value or []))
    elif choices:
        item.update(type="multiplechoice", choices=choices, default=default)
    elif kind in ("int", "float"):
        item.update(type="integer" if kind == "int" else "float", default=value if value not in (None, "") else "")
    else:
        item.update(type="text", default=default, min=0, max=4096)
    return item


def survey(playbook, specs, injected):
    roles = playbook_roles(playbook, specs)
    owner = {}  # variable -> its spec, from the first role of the playbook that documents it
    for role in reversed(roles):
        owner.update(specs[role])
    values = shipped_values(playbook)
    if values is None:
        names = [name for role in roles for name in specs[role]]
        values = {name: owner[name].get("default") for name in names}
        shipped = False
    else:
        names = list(values)
        shipped = True
    spec = []
    for name in names:
        if name in injected or name not in owner:
            continue
        item = question(name, owner[name], values.get(name), shipped)
        if item:
            spec.append(item)
    if shipped:
        spec.append(dict(BUILD_DIR))
    return {"name": "edgeforge.artifacts %s" % playbook,
            "description": "Generated by scripts/gen-awx-surveys.py from roles/*/meta/argument_specs.yml and "
                           "playbooks/vars/%s.yml; do not edit." % playbook,
            "spec": spec}


def render(playbook, specs, injected):
    return json.dumps(survey(playbook, specs, injected), indent=2) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a survey file is not current")
    args = parser.parse_args(argv)
    specs, injected = role_specs(), injected_variables()
    files = dict((os.path.join(ROOT, "awx", "surveys", playbook + ".json"), render(playbook, specs, injected))
                 for playbook in PLAYBOOKS)
    return generated_files.sync(files, args.check, "roles/*/meta/argument_specs.yml and playbooks/vars/",
                                "scripts/gen-awx-surveys.py")


if __name__ == "__main__":
    sys.exit(main())
