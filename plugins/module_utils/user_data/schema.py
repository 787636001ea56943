# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documented fields of the Edge installer user data, and their offline validation.

The schema is the documented field set of the Palette Edge installer configuration (CanvOS `user-data.template` and
the Installer Configuration Reference). Validation mirrors what `palette-edge-cli validate` (CanvOS
`+validate-user-data`) checks - types and required combinations - with one message per bad value that names the
field; values of secret fields never appear in a message.
"""

from __future__ import annotations

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError

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
