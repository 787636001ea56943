"""Unit tests of the user-data model: rendering, merging, the schema rules and secret masking."""

import pytest
import yaml

from ansible_collections.edgeforge.artifacts.plugins.module_utils.user_data import (
    MASK,
    UserDataError,
    build_document,
    collect_secrets,
    dump_document,
    mask_any_text,
    mask_document,
    mask_text,
    merge_documents,
    parse_document,
    render,
    secrets_of_text,
    validate_document,
    validate_text,
    vmxnet3_stage,
)

TOKEN = "tok-8f2b1c9a-unit-secret"
REG_PASSWORD = "reg-pw-unit-secret-77"


def _body(text):
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

def test_basic_flow_document_matches_the_guide():
    """The guide's user-data: token, poweroff, and the kairos user in an initramfs stage."""
    text, doc, report = render({
        "edge_host_token": TOKEN,
        "install": {"poweroff": True},
        "users": [{"name": "kairos", "groups": ["admin"], "passwd": "kairos"}],
    })
    assert text.splitlines()[0] == "#cloud-config"
    assert _body(text) == {
        "stylus": {"site": {"edgeHostToken": TOKEN}},
        "install": {"poweroff": True},
        "stages": {"initramfs": [{"name": "Core system setup",
                                  "users": {"kairos": {"groups": ["admin"], "passwd": "kairos"}}}]},
    }
    assert _body(text) == doc
    # Token without a project: accepted, with the documented warning.
    assert report.errors == []
    assert any("projectName" in w and "projectUid" in w for w in report.warnings)


def test_every_structured_option_lands_on_its_documented_key():
    text, dummy, report = render({
        "edge_host_token": TOKEN,
        "palette_endpoint": "api.spectrocloud.com",
        "project_uid": "5f1c0c2f7a9b",
        "tags": {"city": "chicago", "zip": "60601"},
        "name": "edge-store-12",
        "registration_url": "https://edge-registration-app.vercel.app/",
        "ca_certs": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"],
        "network": {"http_proxy": "http://proxy:3128", "https_proxy": "http://proxy:3128", "no_proxy": "10.0.0.0/8",
                    "nameserver": "1.1.1.1",
                    "interfaces": {"enp0s3": {"type": "static", "ip_address": "10.0.10.25/24",
                                              "gateway": "10.0.10.1", "nameserver": "10.0.10.1"},
                                   "enp0s4": {"type": "dhcp"}}},
        "registry_credentials": {"domain": "docker.io", "username": "me", "password": REG_PASSWORD,
                                 "insecure": False, "encoded_password": None},
        "install": {"reboot": True, "device": "/dev/sda", "grub_options": {"extra_cmdline": "fips=1"},
                    "poweroff": None},
    })
    body = _body(text)
    site = body["stylus"]["site"]
    assert site["paletteEndpoint"] == "api.spectrocloud.com"
    assert site["projectUid"] == "5f1c0c2f7a9b"
    assert site["tags"] == {"city": "chicago", "zip": "60601"}
    assert site["name"] == "edge-store-12"
    assert site["registrationURL"] == "https://edge-registration-app.vercel.app/"
    assert site["caCerts"] == ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"]
    assert site["network"] == {
        "httpProxy": "http://proxy:3128", "httpsProxy": "http://proxy:3128", "noProxy": "10.0.0.0/8",
        "nameserver": "1.1.1.1",
        "interfaces": {"enp0s3": {"type": "static", "ipAddress": "10.0.10.25/24", "gateway": "10.0.10.1",
                                  "nameserver": "10.0.10.1"},
                       "enp0s4": {"type": "dhcp"}}}
    assert body["stylus"]["registryCredentials"] == {"domain": "docker.io", "username": "me",
                                                     "password": REG_PASSWORD, "insecure": False}
    assert body["install"] == {"reboot": True, "device": "/dev/sda", "grub_options": {"extra_cmdline": "fips=1"}}
    assert report.errors == [] and report.warnings == []
    # A PEM certificate is written as a readable literal block.
    assert "    caCerts:\n      - |\n        -----BEGIN CERTIFICATE-----\n" in text


def test_strings_that_look_like_numbers_or_booleans_stay_strings():
    text = render({"edge_host_token": "12345", "project_name": "true", "tags": {"zip": "060601"}})[0]
    site = _body(text)["stylus"]["site"]
    assert site == {"edgeHostToken": "12345", "projectName": "true", "tags": {"zip": "060601"}}


def test_vmxnet3_stage_has_the_two_documented_ethtool_commands():
    text = render({"vmxnet3_interface": "ens192"})[0]
    assert _body(text)["stages"]["initramfs"] == [{
        "name": "Disable UDP segmentation",
        "commands": ["ethtool --offload ens192 tx-udp_tnl-segmentation off",
                     "ethtool --offload ens192 tx-udp_tnl-csum-segmentation off"],
    }]


@pytest.mark.parametrize("bad", ["", "ens 192", "eth0;reboot", "a" * 16, 5])
def test_vmxnet3_interface_must_be_an_interface_name(bad):
    with pytest.raises(UserDataError) as err:
        vmxnet3_stage(bad)
    assert "vmxnet3_interface" in str(err.value)


def test_rendering_is_deterministic():
    options = {"edge_host_token": TOKEN, "project_name": "Default", "tags": {"b": "2", "a": "1"},
               "vmxnet3_interface": "ens192", "users": [{"name": "kairos", "passwd": "kairos"}]}
    assert render(options)[0] == render(dict(options))[0]


def test_empty_options_give_a_bare_header():
    assert render({})[0] == "#cloud-config\n"


# ---------------------------------------------------------------------------------------------------------------
# User-supplied documents and merging
# ---------------------------------------------------------------------------------------------------------------

USER_DOC = """#cloud-config
stylus:
  site:
    paletteEndpoint: palette.example.com
    projectName: stores
    tags:
      region: east
  debug: true
install:
  poweroff: true
stages:
  initramfs:
    - name: "Core system setup"
      users:
        kairos:
          passwd: kairos
    - name: "Disable UDP segmentation"
      commands:
        - ethtool --offload eth0 tx-udp_tnl-segmentation off
        - ethtool --offload eth0 tx-udp_tnl-csum-segmentation off
  boot.after:
    - files:
        - path: /etc/motd
          content: hello
"""


def test_structured_options_merge_over_a_user_document():
    text, dummy, report = render({"edge_host_token": TOKEN, "tags": {"zone": "b"}, "vmxnet3_interface": "ens192"},
                                 USER_DOC)
    body = _body(text)
    site = body["stylus"]["site"]
    assert site["paletteEndpoint"] == "palette.example.com"          # kept from the document
    assert site["projectName"] == "stores"
    assert site["edgeHostToken"] == TOKEN                            # added
    assert site["tags"] == {"region": "east", "zone": "b"}           # mappings merge
    assert body["stylus"]["debug"] is True
    initramfs = body["stages"]["initramfs"]
    # The step with the same name is replaced (not duplicated), the other one kept, order kept.
    assert [step["name"] for step in initramfs] == ["Core system setup", "Disable UDP segmentation"]
    assert initramfs[1]["commands"][0] == "ethtool --offload ens192 tx-udp_tnl-segmentation off"
    assert body["stages"]["boot.after"] == [{"files": [{"path": "/etc/motd", "content": "hello"}]}]
    assert report.errors == [] and report.warnings == []


def test_merge_replaces_lists_and_keeps_inputs_untouched():
    base = {"stylus": {"site": {"caCerts": ["a"], "tags": {"x": "1"}}}}
    overlay = {"stylus": {"site": {"caCerts": ["b"]}}}
    merged = merge_documents(base, overlay)
    assert merged == {"stylus": {"site": {"caCerts": ["b"], "tags": {"x": "1"}}}}
    assert base == {"stylus": {"site": {"caCerts": ["a"], "tags": {"x": "1"}}}}
    assert overlay == {"stylus": {"site": {"caCerts": ["b"]}}}


def test_extra_merges_any_documented_field():
    doc = build_document({"project_name": "Default", "extra": {"stylus": {"managementMode": "local",
                                                                          "site": {"prefix": "store"}}}})
    assert doc == {"stylus": {"site": {"projectName": "Default", "prefix": "store"}, "managementMode": "local"}}
    assert validate_document(doc).valid


def test_structured_project_uid_over_a_document_with_project_name_is_refused():
    with pytest.raises(UserDataError) as err:
        render({"project_uid": "abc"}, USER_DOC)
    assert "projectName" in str(err.value) and "projectUid" in str(err.value)


# ---------------------------------------------------------------------------------------------------------------
# Header and YAML
# ---------------------------------------------------------------------------------------------------------------

def test_header_is_required():
    with pytest.raises(UserDataError) as err:
        parse_document("stylus:\n  site:\n    edgeHostToken: %s\n" % TOKEN, "files/user-data")
    message = str(err.value)
    assert "files/user-data" in message and "#cloud-config" in message
    assert TOKEN not in message


def test_header_with_a_space_after_the_hash_is_refused():
    with pytest.raises(UserDataError):
        parse_document("# cloud-config\nstylus: {}\n")


def test_yaml_syntax_error_names_the_position_but_not_the_line():
    text = "#cloud-config\nstylus:\n  site:\n    edgeHostToken: %s\n   bad: [\n" % TOKEN
    with pytest.raises(UserDataError) as err:
        parse_document(text)
    message = str(err.value)
    assert "not valid YAML" in message and "line" in message
    assert TOKEN not in message


def test_a_document_that_is_not_a_mapping_is_refused():
    with pytest.raises(UserDataError) as err:
        parse_document("#cloud-config\n- a\n- b\n")
    assert "mapping" in str(err.value)


def test_validate_text_reports_header_problems_as_errors():
    report = validate_text("stylus: {}\n", "user-data")
    assert len(report.errors) == 1 and "#cloud-config" in report.errors[0]


def test_header_only_document_is_valid():
    report = validate_text("#cloud-config\n")
    assert report.valid and report.warnings == []


# ---------------------------------------------------------------------------------------------------------------
# Schema rules: one clear message per bad value, naming the field
# ---------------------------------------------------------------------------------------------------------------

BAD_DOCUMENTS = [
    # (document, field named in the one error, words the message must hold)
    ({"stylus": {"site": {"edgeHostToken": 12345}}}, "stylus.site.edgeHostToken", "expected a string"),
    ({"stylus": {"site": {"paletteEndpoint": ["a"]}}}, "stylus.site.paletteEndpoint", "expected a string"),
    ({"stylus": {"site": {"projectName": 7}}}, "stylus.site.projectName", "expected a string"),
    ({"stylus": {"site": {"projectName": "a", "projectUid": "b"}}}, "stylus.site.projectName", "only one"),
    ({"stylus": {"site": {"tags": ["a", "b"]}}}, "stylus.site.tags", "expected a mapping"),
    ({"stylus": {"site": {"tags": {"zip": 60601}}}}, "stylus.site.tags.zip", "expected a string"),
    ({"stylus": {"site": {"name": True}}}, "stylus.site.name", "expected a string"),
    ({"stylus": {"site": {"caCerts": "-----BEGIN CERTIFICATE-----"}}}, "stylus.site.caCerts", "expected a list"),
    ({"stylus": {"site": {"caCerts": [1]}}}, "stylus.site.caCerts[0]", "expected a string"),
    ({"stylus": {"site": {"network": {"httpProxy": 3128}}}}, "stylus.site.network.httpProxy", "expected a string"),
    ({"stylus": {"site": {"network": {"interfaces": {"enp0s3": {"type": "manual"}}}}}},
     "stylus.site.network.interfaces.enp0s3.type", "allowed: static, dhcp"),
    ({"stylus": {"site": {"network": {"interfaces": {"enp0s3": {"type": "static"}}}}}},
     "stylus.site.network.interfaces.enp0s3.ipAddress", "required"),
    ({"stylus": {"site": {"network": {"interfaces": ["enp0s3"]}}}}, "stylus.site.network.interfaces",
     "expected a mapping"),
    ({"stylus": {"site": {"insecureSkipVerify": "yes please"}}}, "stylus.site.insecureSkipVerify",
     "expected a boolean"),
    ({"stylus": {"site": {"tagsFromScript": {"timeout": "60"}}}}, "stylus.site.tagsFromScript.timeout",
     "expected an integer"),
    ({"stylus": {"registryCredentials": {"domain": "docker.io", "username": "me", "password": None}}},
     "stylus.registryCredentials.password", "expected a string, got null"),
    ({"stylus": {"registryCredentials": {"domain": "docker.io", "username": "me", "password": 1234}}},
     "stylus.registryCredentials.password", "expected a string, got integer"),
    ({"stylus": {"registryCredentials": {"domain": "docker.io", "username": "me", "password": "x",
                                         "insecure": "false"}}},
     "stylus.registryCredentials.insecure", "expected a boolean"),
    ({"stylus": {"registryCredentials": {"username": "me", "password": "x"}}},
     "stylus.registryCredentials.domain", "required"),
    ({"stylus": {"registryCredentials": {"domain": "docker.io", "username": "me"}}},
     "stylus.registryCredentials.password", "required"),
    ({"stylus": {"managementMode": "remote"}}, "stylus.managementMode", "allowed: central, local"),
    ({"stylus": {"installationMode": "offline"}}, "stylus.installationMode", "allowed: connected, airgap"),
    ({"stylus": {"localUI": {"port": "5080"}}}, "stylus.localUI.port", "expected an integer"),
    ({"stylus": {"debug": "true"}}, "stylus.debug", "expected a boolean"),
    ({"stylus": {"externalRegistries": {"registries": [{"domain": "r", "password": 5}]}}},
     "stylus.externalRegistries.registries[0].password", "expected a string"),
    ({"stylus": "yes"}, "stylus", "expected a mapping"),
    ({"install": {"poweroff": True, "reboot": True}}, "install.poweroff", "both true"),
    ({"install": {"poweroff": "true"}}, "install.poweroff", "expected a boolean"),
    ({"install": {"device": 0}}, "install.device", "expected a string"),
    ({"install": {"grub_options": {"extra_cmdline": ["fips=1"]}}}, "install.grub_options.extra_cmdline",
     "expected a string"),
    ({"install": {"partitions": {"persistent": {"size": "10G"}}}}, "install.partitions.persistent.size",
     "expected an integer"),
    ({"stages": {"initramfs": {"name": "x"}}}, "stages.initramfs", "expected a list"),
    ({"stages": {"initramfs": [{"commands": "ethtool"}]}}, "stages.initramfs[0].commands", "expected a list"),
    ({"stages": {"initramfs": [{"users": {"kairos": {"passwd": 1234}}}]}},
     "stages.initramfs[0].users.kairos.passwd", "expected a string"),
    ({"users": [{"name": "kairos", "groups": "admin"}]}, "users[0].groups", "expected a list"),
]


BAD_IDS = ["%s-%d" % (case[1], index) for index, case in enumerate(BAD_DOCUMENTS)]


@pytest.mark.parametrize("doc,field,words", BAD_DOCUMENTS, ids=BAD_IDS)
def test_each_bad_value_gives_one_message_naming_the_field(doc, field, words):
    report = validate_document(doc)
    assert len(report.errors) == 1, report.errors
    message = report.errors[0]
    assert message.startswith(field), message
    assert words in message, message


@pytest.mark.parametrize("doc,field,words", BAD_DOCUMENTS[:3])
def test_render_refuses_the_same_documents(doc, field, words):
    with pytest.raises(UserDataError) as err:
        render({}, dump_document(doc))
    assert field in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("doc", [
    {"stylus": {"site": {"edgeHostToken": 987654321}}},
    {"stylus": {"registryCredentials": {"domain": "d", "username": "u", "password": 987654321}}},
    {"stages": {"initramfs": [{"users": {"kairos": {"passwd": 987654321}}}]}},
])
def test_a_bad_secret_value_is_never_shown(doc):
    report = validate_document(doc)
    assert len(report.errors) == 1
    assert "987654321" not in report.errors[0]
    assert "hidden integer" in report.errors[0]


def test_several_bad_values_give_one_message_each():
    report = validate_document({"stylus": {"site": {"projectName": 1, "tags": []}}, "install": {"reboot": "no"}})
    assert len(report.errors) == 3
    with pytest.raises(UserDataError) as err:
        report.raise_for_errors()
    assert err.value.problems == report.errors


def test_token_without_project_is_a_warning_not_an_error():
    report = validate_document({"stylus": {"site": {"edgeHostToken": TOKEN}}})
    assert report.errors == []
    assert len(report.warnings) == 1
    assert "projectName" in report.warnings[0] and TOKEN not in report.warnings[0]


@pytest.mark.parametrize("site", [{"edgeHostToken": TOKEN, "projectName": "Default"},
                                  {"edgeHostToken": TOKEN, "projectUid": "abc"}])
def test_token_with_a_project_is_silent(site):
    report = validate_document({"stylus": {"site": site}})
    assert report.errors == [] and report.warnings == []


def test_endpoint_with_a_scheme_is_a_warning():
    report = validate_document({"stylus": {"site": {"paletteEndpoint": "https://api.spectrocloud.com"}}})
    assert report.errors == []
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("stylus.site.paletteEndpoint:") and "host name" in report.warnings[0]


def test_unknown_keys_are_warned_about_once_by_name():
    report = validate_document({"hostname": "x", "stylus": {"site": {"colour": "blue"}, "sitee": {}}})
    assert report.errors == []
    assert len(report.warnings) == 3
    assert any(w.startswith("hostname ") for w in report.warnings)
    assert any(w.startswith("stylus.site.colour ") for w in report.warnings)
    assert any(w.startswith("stylus.sitee ") for w in report.warnings)


def test_open_sections_accept_undocumented_keys():
    report = validate_document({"install": {"grub_options": {"saved_entry": "x"}, "auto": True},
                                "stages": {"boot": [{"name": "x", "dns": {"nameservers": ["1.1.1.1"]}}]}})
    assert report.errors == [] and report.warnings == []


def test_the_documented_template_is_valid():
    template = """#cloud-config
stylus:
  site:
    paletteEndpoint: api.spectrocloud.com
    edgeHostToken: yourhosttoken
    projectName: stores
    tags:
      key1: value1
    name: edge-randomid
    registrationURL: https://edge-registration-app.vercel.app/
    network:
      httpProxy: http://proxy.example.com
      httpsProxy: https://proxy.example.com
      noProxy: 10.10.128.10,10.0.0.0/8
      nameserver: 1.1.1.1
      interfaces:
        enp0s3:
          type: static
          ipAddress: 10.0.10.25/24
          gateway: 10.0.10.1
          nameserver: 10.10.128.8
        enp0s4:
          type: dhcp
    caCerts:
      - |
        ------BEGIN CERTIFICATE------
        *****************************
        ------END CERTIFICATE------
  registryCredentials:
    domain: registry.example.com
    username: bob
    password: '#B0bs2strongPassword!'
    insecure: false
install:
  poweroff: true
  grub_options:
    extra_cmdline: "fips=1"
stages:
  initramfs:
    - users:
        kairos:
          groups:
            - sudo
          passwd: kairos
"""
    report = validate_text(template)
    assert report.errors == [] and report.warnings == []


# ---------------------------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------------------------

def _secret_options():
    return {"edge_host_token": TOKEN, "project_name": "Default",
            "registry_credentials": {"domain": "docker.io", "username": "me", "password": REG_PASSWORD},
            "users": [{"name": "kairos", "groups": ["admin"], "passwd": "s3cret-user-pw"}]}


def test_mask_text_hides_token_and_passwords_and_keeps_the_rest():
    text, doc = render(_secret_options())[:2]
    masked = mask_text(text, [TOKEN, REG_PASSWORD])
    for secret in (TOKEN, REG_PASSWORD, "s3cret-user-pw"):
        assert secret not in masked
    assert "edgeHostToken: %s" % MASK in masked
    assert "password: %s" % MASK in masked
    assert "passwd: %s" % MASK in masked
    assert "projectName: Default" in masked and "username: me" in masked and "kairos:" in masked
    assert len(masked.splitlines()) == len(text.splitlines())
    assert mask_document(doc)["stylus"]["registryCredentials"]["password"] == MASK


@pytest.mark.parametrize("text", [
    "#cloud-config\nstylus: {site: {edgeHostToken: %s, name: x}}\n" % TOKEN,
    "#cloud-config\nstylus:\n  site:\n    \"edgeHostToken\": '%s'\n" % TOKEN,
    "#cloud-config\nstylus:\n  site:\n    edgeHostToken: >-\n      %s\n" % TOKEN,
    "#cloud-config\nstylus:\n  registryCredentials: {password: \"%s\", domain: d}\n" % TOKEN,
    "#cloud-config\nusers:\n  - passwd: %s\n" % TOKEN,
])
def test_mask_any_text_handles_every_yaml_style(text):
    masked = mask_any_text(text)
    assert TOKEN not in masked
    assert MASK in masked


def test_mask_any_text_never_fails_on_a_broken_file():
    text = "not: [valid\nedgeHostToken: %s\n" % TOKEN
    masked = mask_any_text(text)
    assert TOKEN not in masked
    assert secrets_of_text(text) == []


def test_user_passwords_are_not_collected_as_leakable_substrings():
    # "kairos" as a password must not blank out the user name "kairos" everywhere.
    assert secrets_of_text("#cloud-config\nusers: [{name: kairos, passwd: kairos}]\n") == []
    assert sorted(secrets_of_text("#cloud-config\nstylus: {site: {edgeHostToken: abc},"
                                  " registryCredentials: {password: def}}\n")) == ["abc", "def"]


def test_mask_text_hides_the_password_of_a_proxy_url():
    text, doc, _report = render({"network": {"http_proxy": "http://builder:proxy-pass-77@proxy.example.com:3128"}})
    masked = mask_text(text, collect_secrets(doc))
    assert "proxy-pass-77" not in masked
    assert "http://builder:%s@proxy.example.com:3128" % MASK in masked
