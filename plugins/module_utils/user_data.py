# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Edge installer user data (`user-data`): render, merge, validate offline, mask secrets.

Plain Python (PyYAML only): unit tests import this without Ansible, and the user_data module runs it on the
build host. The schema below is the documented field set of the Palette Edge installer configuration
(CanvOS `user-data.template` and the Installer Configuration Reference). Validation mirrors what
`palette-edge-cli validate` (CanvOS `+validate-user-data`) checks — YAML syntax, the `#cloud-config` header,
types and required combinations — so a bad file is refused here, before any ISO build, with one message per
bad value that names the field. Values of secret fields (the registration token, registry passwords, user
passwords) never appear in a message, a warning or a masked preview.
"""

from __future__ import annotations

import copy
import re

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import MASK, EdgeforgeError, mask_secrets


HEADER = "#cloud-config"

# Keys whose values are secrets wherever they appear in the document.
SECRET_KEYS = ("edgeHostToken", "password", "passwd")
# Secrets worth hiding as substrings of any output (user passwords like "kairos" are too common a word).
LEAKABLE_SECRET_KEYS = ("edgeHostToken", "password")

VMXNET3_STAGE_NAME = "Disable UDP segmentation"
USERS_STAGE_NAME = "Core system setup"


class UserDataError(EdgeforgeError):
    """The user data is invalid; the message lists every problem, one per bad field."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("user-data is not valid: " + "; ".join(self.problems))


# --------------------------------------------------------------------------------------------------------------
# Schema: a small, explicit description of the documented fields.
#   type:     string | boolean | integer | object | map | list | any
#   fields:   (object) the documented keys; unknown keys are warned about unless open=True
#   values:   (map) the schema of every value (keys are free: tags, interfaces, stages)
#   items:    (list) the schema of every item
#   enum:     allowed values
#   secret:   the value is never shown
# --------------------------------------------------------------------------------------------------------------

def _s(**extra):
    node = {"type": "string"}
    node.update(extra)
    return node


def _b():
    return {"type": "boolean"}


def _i():
    return {"type": "integer"}


def _obj(fields, open_=False):
    return {"type": "object", "fields": fields, "open": open_}


def _list(items):
    return {"type": "list", "items": items}


def _map(values):
    return {"type": "map", "values": values}


_ANY = {"type": "any"}
_STR_LIST = _list(_s())

_INTERFACE = _obj({
    "type": _s(enum=("static", "dhcp")),
    "ipAddress": _s(),
    "mask": _s(),
    "gateway": _s(),
    "nameserver": _s(),
    "macAddress": _s(),
})

_NETWORK = _obj({
    "httpProxy": _s(),
    "httpsProxy": _s(),
    "noProxy": _s(),
    "nameserver": _s(),
    "interfaces": _map(_INTERFACE),
})

_SITE_USER = _obj({
    "name": _s(),
    "groups": _STR_LIST,
    "passwd": _s(secret=True),
    "passwordExpiry": _ANY,
    "lock_passwd": _b(),
    "ssh_authorized_keys": _STR_LIST,
}, open_=True)

_SITE = _obj({
    "paletteEndpoint": _s(),
    "edgeHostToken": _s(secret=True),
    "projectName": _s(),
    "projectUid": _s(),
    "tags": _map(_s()),
    "name": _s(),
    "hostName": _s(),
    "prefix": _s(),
    "registrationURL": _s(),
    "network": _NETWORK,
    "caCerts": _STR_LIST,
    "insecureSkipVerify": _b(),
    "clusterId": _s(),
    "clusterName": _s(),
    "ntpServers": _STR_LIST,
    "deviceUIDPaths": _list(_obj({"name": _s(), "regex": _s()})),
    "tagsFromFile": _obj({"fileName": _s(), "delimiter": _s(), "separator": _s()}),
    "tagsFromScript": _obj({"scriptName": _s(), "timeout": _i()}),
    "remoteShell": _obj({"disable": _b()}),
    "users": _list(_SITE_USER),
})

_REGISTRY_CREDENTIALS = _obj({
    "domain": _s(),
    "username": _s(),
    "password": _s(secret=True),
    "insecure": _b(),
    "encodedPassword": _b(),
})

_EXTERNAL_REGISTRY = _obj({
    "domain": _s(),
    "username": _s(),
    "password": _s(secret=True),
    "repositoryName": _s(),
    "certificates": _STR_LIST,
    "insecure": _b(),
    "encodedPassword": _b(),
})

_STYLUS = _obj({
    "site": _SITE,
    "registryCredentials": _REGISTRY_CREDENTIALS,
    "debug": _b(),
    "trace": _b(),
    "managementMode": _s(enum=("central", "local")),
    "installationMode": _s(enum=("connected", "airgap")),
    "path": _s(),
    "disableTui": _b(),
    "disablePasswordUpdate": _b(),
    "enableMultiNode": _b(),
    "featureGate": _s(),
    "localUI": _obj({"port": _i(), "login": _obj({}, open_=True)}, open_=True),
    "vip": _obj({"skip": _b()}),
    "externalRegistries": _obj({
        "registries": _list(_EXTERNAL_REGISTRY),
        "registryMappingRules": _map(_s()),
    }),
    "imageRedirectWebhook": _obj({"enable": _b(), "port": _i()}),
})

_INSTALL = _obj({
    "device": _s(),
    "reboot": _b(),
    "poweroff": _b(),
    "bind_mounts": _STR_LIST,
    "extra-dirs-rootfs": _STR_LIST,
    "grub_options": _obj({"extra_cmdline": _s()}, open_=True),
    "partitions": _obj({
        "persistent": _obj({"size": _i(), "fs": _s()}, open_=True),
        "oem": _obj({"size": _i(), "fs": _s()}, open_=True),
    }, open_=True),
    "extra-partitions": _list(_obj({"name": _s(), "size": _i(), "fs": _s(), "label": _s()}, open_=True)),
}, open_=True)

# Kairos (yip) stages: a map of stage name -> list of steps; steps are free-form but a few keys are checked.
_STAGE_STEP = _obj({
    "name": _s(),
    "commands": _STR_LIST,
    "users": _map(_obj({
        "passwd": _s(secret=True),
        "groups": _STR_LIST,
        "ssh_authorized_keys": _STR_LIST,
        "lock_passwd": _b(),
    }, open_=True)),
    "files": _list(_obj({}, open_=True)),
}, open_=True)

_KAIROS_USER = _obj({
    "name": _s(),
    "passwd": _s(secret=True),
    "groups": _STR_LIST,
    "ssh_authorized_keys": _STR_LIST,
    "lock_passwd": _b(),
}, open_=True)

# Top level: other keys are passed to cloud-init/Kairos unchanged (warned about by validate_document).
SCHEMA = _obj({
    "stylus": _STYLUS,
    "install": _INSTALL,
    "stages": _map(_list(_STAGE_STEP)),
    "users": _list(_KAIROS_USER),
}, open_=True)

_TYPE_NAMES = {
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "object": "a mapping",
    "map": "a mapping",
    "list": "a list",
}


def _type_of(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _matches(node_type, value):
    if node_type == "any":
        return True
    if node_type == "string":
        return isinstance(value, str)
    if node_type == "boolean":
        return isinstance(value, bool)
    if node_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if node_type in ("object", "map"):
        return isinstance(value, dict)
    if node_type == "list":
        return isinstance(value, list)
    raise ValueError("unknown schema type %r" % node_type)  # pragma: no cover - a schema bug


def _shown(value, secret):
    """How a bad value appears in a message: a secret only by its type."""
    if secret:
        return "a hidden %s value" % _type_of(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def _problem(path, value, allowed, secret=False):
    return "%s: %s is not valid; %s" % (path, _shown(value, secret), allowed)


class Report:
    """Result of a validation: errors (the document is refused) and warnings (it is accepted)."""

    def __init__(self):
        self.errors = []
        self.warnings = []

    @property
    def valid(self):
        return not self.errors

    def raise_for_errors(self):
        if self.errors:
            raise UserDataError(self.errors)


def _walk(node, value, path, report):
    node_type = node["type"]
    secret = node.get("secret", False)
    if not _matches(node_type, value):
        report.errors.append(_problem(path, value, "expected %s, got %s" % (_TYPE_NAMES[node_type], _type_of(value)),
                                      secret))
        return
    if "enum" in node and value not in node["enum"]:
        report.errors.append(_problem(path, value, "allowed: %s" % ", ".join(node["enum"]), secret))
        return
    if node_type == "object":
        fields = node["fields"]
        for key, sub in value.items():
            sub_path = "%s.%s" % (path, key) if path else str(key)
            if key in fields:
                _walk(fields[key], sub, sub_path, report)
            elif not node.get("open"):
                report.warnings.append("%s is not a documented user-data field; the installer may ignore it"
                                       % sub_path)
    elif node_type == "map":
        for key, sub in value.items():
            if not isinstance(key, str):
                report.errors.append(_problem("%s.%s" % (path, key), key, "keys must be strings (quote the key)"))
                continue
            _walk(node["values"], sub, "%s.%s" % (path, key), report)
    elif node_type == "list":
        for index, item in enumerate(value):
            _walk(node["items"], item, "%s[%d]" % (path, index), report)


def _get(doc, *keys):
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _check_combinations(doc, report):
    site = _get(doc, "stylus", "site")
    if isinstance(site, dict):
        has_name = bool(site.get("projectName"))
        has_uid = bool(site.get("projectUid"))
        if has_name and has_uid:
            report.errors.append("stylus.site.projectName and stylus.site.projectUid are both set; "
                                 "set only one of them to choose the project")
        if site.get("edgeHostToken") and not (has_name or has_uid):
            report.warnings.append("stylus.site.edgeHostToken is set without stylus.site.projectName or "
                                   "stylus.site.projectUid: if the registration token has no default project, "
                                   "set projectName (for example 'Default') or projectUid")
        endpoint = site.get("paletteEndpoint")
        if isinstance(endpoint, str) and "://" in endpoint:
            report.warnings.append("stylus.site.paletteEndpoint: %r has a scheme; the documented form is the "
                                   "Palette API host name alone, for example api.spectrocloud.com" % endpoint)
        interfaces = _get(site, "network", "interfaces")
        if isinstance(interfaces, dict):
            for nic, conf in interfaces.items():
                if isinstance(conf, dict) and conf.get("type") == "static" and not conf.get("ipAddress"):
                    report.errors.append("stylus.site.network.interfaces.%s.ipAddress: is required when type is "
                                         "static" % nic)
    creds = _get(doc, "stylus", "registryCredentials")
    if isinstance(creds, dict) and creds:
        # Missing = absent or empty; a present value of the wrong type has already been reported.
        def missing(key):
            return key not in creds or creds[key] == ""

        if missing("domain"):
            report.errors.append("stylus.registryCredentials.domain: is required when registry credentials are set")
        if missing("username") != missing("password"):
            absent, present = ("password", "username") if missing("password") else ("username", "password")
            report.errors.append("stylus.registryCredentials.%s: is required together with the %s"
                                 % (absent, present))
    install = doc.get("install")
    if isinstance(install, dict) and install.get("poweroff") is True and install.get("reboot") is True:
        report.errors.append("install.poweroff and install.reboot are both true; choose one "
                             "(or neither, to stay on the 'Installation Complete' screen)")


def validate_document(doc):
    """Check a parsed document against the documented schema; return a Report (never raises for bad input)."""
    report = Report()
    if not isinstance(doc, dict):
        report.errors.append("user-data: the document must be a mapping of keys (stylus, install, stages, ...), "
                             "got %s" % _type_of(doc))
        return report
    for key in doc:
        if key not in SCHEMA["fields"]:
            report.warnings.append("%s is not a documented top-level user-data key; the installer passes it to "
                                   "cloud-init/Kairos unchanged" % key)
    _walk(SCHEMA, doc, "", report)
    _check_combinations(doc, report)
    return report


# --------------------------------------------------------------------------------------------------------------
# Text <-> document
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# Rendering from structured options
# --------------------------------------------------------------------------------------------------------------

def vmxnet3_stage(interface):
    """The documented initramfs stage that works around the VMXNET3 UDP tunnel segmentation issue."""
    if not isinstance(interface, str) or not re.match(r"^[A-Za-z0-9_.:@-]{1,15}$", interface):
        raise UserDataError([_problem("vmxnet3_interface", interface,
                                      "expected a network interface name such as ens192 (1-15 characters)")])
    return {
        "name": VMXNET3_STAGE_NAME,
        "commands": [
            "ethtool --offload %s tx-udp_tnl-segmentation off" % interface,
            "ethtool --offload %s tx-udp_tnl-csum-segmentation off" % interface,
        ],
    }


def _users_stage(users):
    """Users as the documented initramfs stage: `users: {name: {groups, passwd, ...}}`."""
    entries = {}
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not user.get("name"):
            raise UserDataError([_problem("users[%d].name" % index, None, "every user needs a name")])
        entry = {}
        for key in ("groups", "passwd", "ssh_authorized_keys", "lock_passwd"):
            if user.get(key) is not None:
                entry[key] = user[key]
        entries[user["name"]] = entry
    return {"name": USERS_STAGE_NAME, "users": entries}


def _set(doc, keys, value):
    """Set doc[k1][k2]...= value, creating mappings; skip None (option not given)."""
    if value is None:
        return
    node = doc
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _drop_none(mapping):
    return {key: value for key, value in (mapping or {}).items() if value is not None}


_NETWORK_KEYS = {
    "http_proxy": "httpProxy",
    "https_proxy": "httpsProxy",
    "no_proxy": "noProxy",
    "nameserver": "nameserver",
    "interfaces": "interfaces",
}
_INTERFACE_KEYS = {"type": "type", "ip_address": "ipAddress", "ipAddress": "ipAddress", "mask": "mask",
                   "gateway": "gateway", "nameserver": "nameserver", "mac_address": "macAddress",
                   "macAddress": "macAddress"}
_REGISTRY_KEYS = {"domain": "domain", "username": "username", "password": "password", "insecure": "insecure",
                  "encoded_password": "encodedPassword", "encodedPassword": "encodedPassword"}


def _network(network):
    out = {}
    for key, value in _drop_none(network).items():
        target = _NETWORK_KEYS.get(key, key)
        if target == "interfaces" and isinstance(value, dict):
            value = {nic: ({_INTERFACE_KEYS.get(k, k): v for k, v in _drop_none(conf).items()}
                           if isinstance(conf, dict) else conf)
                     for nic, conf in value.items()}
        out[target] = value
    return out


def structured_document(options):
    """The document described by the structured options alone (keys only for options that were given).

    ``options`` uses the module's option names: edge_host_token, palette_endpoint, project_name, project_uid,
    tags, name, registration_url, ca_certs, network, registry_credentials, install, stages, users,
    vmxnet3_interface, extra.
    """
    doc = {}
    site = ("stylus", "site")
    _set(doc, site + ("paletteEndpoint",), options.get("palette_endpoint"))
    _set(doc, site + ("edgeHostToken",), options.get("edge_host_token"))
    _set(doc, site + ("projectName",), options.get("project_name"))
    _set(doc, site + ("projectUid",), options.get("project_uid"))
    _set(doc, site + ("tags",), options.get("tags") or None)
    _set(doc, site + ("name",), options.get("name"))
    _set(doc, site + ("registrationURL",), options.get("registration_url"))
    _set(doc, site + ("caCerts",), options.get("ca_certs") or None)
    network = _network(options.get("network"))
    _set(doc, site + ("network",), network or None)
    creds = {_REGISTRY_KEYS.get(k, k): v for k, v in _drop_none(options.get("registry_credentials")).items()}
    _set(doc, ("stylus", "registryCredentials"), creds or None)
    install = _drop_none(options.get("install"))
    _set(doc, ("install",), install or None)
    stages = copy.deepcopy(options.get("stages")) or {}
    initramfs = []
    if options.get("users"):
        initramfs.append(_users_stage(options["users"]))
    if options.get("vmxnet3_interface"):
        initramfs.append(vmxnet3_stage(options["vmxnet3_interface"]))
    if initramfs:
        if "initramfs" in stages and not isinstance(stages["initramfs"], list):
            raise UserDataError([_problem("stages.initramfs", stages["initramfs"], "expected a list of steps")])
        stages["initramfs"] = list(stages.get("initramfs") or []) + initramfs
    _set(doc, ("stages",), stages or None)
    extra = options.get("extra")
    if extra:
        doc = merge_documents(doc, extra)
    return doc


def _merge_stage_steps(base, overlay):
    """Steps of one stage: a step with the same name replaces the old one; new steps are appended."""
    result = list(base)
    for step in overlay:
        name = step.get("name") if isinstance(step, dict) else None
        replaced = False
        if name:
            for index, old in enumerate(result):
                if isinstance(old, dict) and old.get("name") == name:
                    result[index] = copy.deepcopy(step)
                    replaced = True
                    break
        if not replaced and step not in result:
            result.append(copy.deepcopy(step))
    return result


def merge_documents(base, overlay, _path=()):
    """Deep-merge ``overlay`` over ``base``: mappings merge, stage step lists merge by step name, other values
    (lists included) are replaced. Neither input is modified; key order of ``base`` is kept."""
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in overlay.items():
        path = _path + (key,)
        old = result.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = merge_documents(old, value, path)
        elif len(path) == 2 and path[0] == "stages" and isinstance(old, list) and isinstance(value, list):
            result[key] = _merge_stage_steps(old, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def build_document(options, base=None):
    """The final document: ``base`` (a user-supplied document, already parsed) with structured options over it."""
    structured = structured_document(options)
    if base:
        return merge_documents(base, structured)
    return structured


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
