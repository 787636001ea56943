# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build options, declared once: name, type, default, choices, CanvOS ``.arg`` key, description, secret or not.

Everything else is made from this list: the build_config module's argument spec (at run time, ``argument_spec()``),
and, by ``scripts/gen-vars-doc.py``, the doc fragment ``plugins/doc_fragments/build_config.py``, the role's
``roles/build_config/meta/argument_specs.yml`` and ``tasks/main.yml``, and the variable pages under ``docs/roles/``.

Descriptions use Ansible's doc markup (C(), V(), O(), M()).

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# ---------------------------------------------------------------------------------------------------------------
# Choices and pinned defaults (CanvOS v4.10.0), written once.

OS_DISTRIBUTIONS = ("ubuntu", "opensuse-leap", "rhel", "sles")
K8S_DISTRIBUTIONS = ("k3s", "kubeadm", "kubeadm-fips", "rke2", "nodeadm", "canonical")
ARCHES = ("amd64", "arm64")

DEFAULT_PE_VERSION = "v4.9.21"
DEFAULT_KAIROS_VERSION = "v4.0.4"
DEFAULT_SPECTRO_PUB_REPO = "us-docker.pkg.dev/palette-images"
FIPS_SPECTRO_PUB_REPO = "us-docker.pkg.dev/palette-images-fips"

# How CanvOS reads a boolean that is not exactly "true" or "false" (CONFORMANCE 1.4): it compares with a literal.
CANVOS_BOOL_READING = "as false (only the exact word true turns it on)"


class Option:
    """One build option.

    ``type``/``elements``/``choices``: as in an Ansible argument spec. ``default``: the value when not set; None means
    derived from other options (the description says how). ``arg_key``: the CanvOS ``.arg`` key (the name in upper
    case); ``canvos``: whether CanvOS reads that key. ``secret``: the value may carry a credential (a proxy URL's
    password), masked in every returned value and log line. ``scope``: ``config`` (part of the normalised
    configuration), ``deprecated`` (accepted, merged into another option) or ``module`` (an option of the module
    only). ``role_var``: the role variable's name when it is not the option's. ``derived``: written to a ``.arg``
    only when the user set it. ``keep_empty``: written to a ``.arg`` even when empty. ``canvos_bool``: for a
    boolean, how CanvOS reads a value other than exactly true/false. ``no_log``: an explicit no_log for the
    argument spec (False where a name looks secret but the value is masked instead or is no secret).
    """

    def __init__(self, name, type, description, default=None, **extra):  # pylint: disable=redefined-builtin
        self.name = name
        self.type = type
        self.description = tuple(description)
        self.default = default
        self.elements = extra.pop("elements", None)
        self.choices = extra.pop("choices", None)
        self.canvos = extra.pop("canvos", True)
        self.secret = extra.pop("secret", False)
        self.scope = extra.pop("scope", "config")
        self.role_var = extra.pop("role_var", name)
        self.derived = extra.pop("derived", False)
        self.keep_empty = extra.pop("keep_empty", False)
        self.canvos_bool = extra.pop("canvos_bool", CANVOS_BOOL_READING if type == "bool" else None)
        self.no_log = extra.pop("no_log", None)
        if extra:
            raise TypeError("unknown Option fields: %s" % ", ".join(sorted(extra)))

    @property
    def arg_key(self):
        return self.name.upper()

    @property
    def kind(self):
        """How a given value is normalised: bool, list (comma-separated), versions (the build matrix) or str."""
        return {"bool": "bool", "list": "list", "raw": "versions"}.get(self.type, "str")

    @property
    def documented_default(self):
        """The default the docs show: a fixed, non-empty value (derived and empty defaults are described instead)."""
        return None if self.default in (None, "", []) else self.default

    def spec(self):
        """This option's entry in the module's argument spec (no default: not given means "use the rule")."""
        entry = {"type": self.type}
        if self.elements:
            entry["elements"] = self.elements
        if self.choices:
            entry["choices"] = list(self.choices)
        if self.no_log is not None:
            entry["no_log"] = self.no_log
        return entry


_WHEN_NOT_SET = "When not set, V(%s)."

OPTIONS = (
    Option("custom_tag", "str", default="demo", keep_empty=True, description=(
        "Suffix of the provider image tags and of the installer image tag (CanvOS C(CUSTOM_TAG)).",
        "Lowercase letters, digits and V(-) (not at either end), for example V(palette-learn).",
        "An empty string gives tags without a suffix (C(k3s-1.27.2-v4.4.12)); a warning then reminds you that the "
        "stock BYOOS pack's C(system.uri) appends C(-<customTag>), so use the C(system.uri) of the returned manifest.",
        "When not set, V(demo) (the CanvOS template value).",
    )),
    Option("image_registry", "str", default="ttl.sh", description=(
        "Registry (and optional namespace) the provider images are named for (CanvOS C(IMAGE_REGISTRY)).",
        "C(host[:port][/namespace...]) following DNS rules, lowercase, without C(http://) or C(https://) and without "
        "underscores, for example V(ttl.sh), V(docker.io/myuser) or V(registry.example.com:5000/edge).",
        "When not set, V(ttl.sh). Images pushed to ttl.sh expire after 24 hours by default.",
    )),
    Option("os_distribution", "str", default="ubuntu", choices=OS_DISTRIBUTIONS, description=(
        "Operating system family of the images (CanvOS C(OS_DISTRIBUTION)).",
        "V(ubuntu) and V(opensuse-leap) have a default base image; V(rhel) and V(sles) need O(base_image).",
        _WHEN_NOT_SET % "ubuntu",
    )),
    Option("image_repo", "str", derived=True, description=(
        "Repository name of the provider images (CanvOS C(IMAGE_REPO)); Docker repository name rules (lowercase).",
        "When not set, the value of O(os_distribution).",
    )),
    Option("os_version", "str", description=(
        "Operating system version (CanvOS C(OS_VERSION)).",
        "V(ubuntu) accepts V(20), V(20.04), V(22), V(22.04) and V(24.04) (V(20) and V(22) become V(20.04) and "
        "V(22.04)); V(opensuse-leap) accepts V(15.6); V(rhel) and V(sles) take the numeric version of the base image "
        "and require it.",
        "When not set, V(22.04) for Ubuntu and V(15.6) for openSUSE Leap.",
    )),
    Option("k8s_distribution", "str", default="k3s", choices=K8S_DISTRIBUTIONS, description=(
        "Kubernetes distribution of the provider images (CanvOS C(K8S_DISTRIBUTION)).",
        "An empty value is refused (CanvOS silently builds nothing).",
        _WHEN_NOT_SET % "k3s",
    )),
    Option("k8s_version", "raw", default=[], keep_empty=True, description=(
        "Kubernetes version(s) to build provider images for (CanvOS C(K8S_VERSION)) - one C(x.y.z) string, a "
        "comma-separated string or a list (the build matrix).",
        "Each version must be listed for O(k8s_distribution) in the versions table (the shipped one, CanvOS "
        "v4.10.0's C(k8s_version.json), or O(k8s_versions_file)).",
        "When not set or empty, every version listed for the distribution (one provider image of about 4-5 GB each).",
    )),
    Option("arch", "str", default="amd64", choices=ARCHES, description=(
        "Target CPU architecture (CanvOS C(ARCH)). When not set, V(amd64).",
    )),
    Option("iso_name", "str", default="palette-edge-installer", description=(
        "File name of the installer ISO without C(.iso) (CanvOS C(ISO_NAME)); lowercase letters, digits, V(-) and "
        "V(_).",
        _WHEN_NOT_SET % "palette-edge-installer",
    )),
    Option("base_image", "str", derived=True, description=(
        "Base OS image (a Kairos core image) to build from (CanvOS C(BASE_IMAGE)), a full reference in a registry.",
        "Required for V(rhel), V(sles) and FIPS builds. Jetson bases (C(nvidia-jetson-agx-orin)) are refused: CanvOS "
        "adds a mount overlay to them that this collection does not build.",
        "When not set for Ubuntu, C(<spectro_pub_repo>/edge/kairos-ubuntu:<os_version>-core-<arch>-generic-"
        "<kairos_version>); for openSUSE Leap C(<spectro_pub_repo>/edge/kairos-opensuse:leap-<os_version>-core-"
        "<arch>-generic-<kairos_version>).",
    )),
    Option("pe_version", "str", default=DEFAULT_PE_VERSION, description=(
        "Palette Edge agent version (CanvOS C(PE_VERSION)), a release tag C(vX.Y.Z); it is part of every provider "
        "image tag and must match what your Palette instance runs (see M(edgeforge.artifacts.palette_agent_version)).",
        "A version without the V(v) prefix (as Palette prints it) gets one.",
        "When not set, V(%s) (the CanvOS v4.10.0 release)." % DEFAULT_PE_VERSION,
    )),
    Option("kairos_version", "str", default=DEFAULT_KAIROS_VERSION, description=(
        "Kairos version of the default base image (CanvOS C(KAIROS_VERSION)). When not set, V(%s)."
        % DEFAULT_KAIROS_VERSION,
    )),
    Option("spectro_pub_repo", "str", default=DEFAULT_SPECTRO_PUB_REPO, derived=True, description=(
        "Registry path the upstream Spectro Cloud images come from (CanvOS C(SPECTRO_PUB_REPO)); point it at a "
        "mirror to build air-gapped.",
        "When not set, V(%s); with O(fips_enabled) V(%s), as in CanvOS (V(kubeadm-fips) alone does not switch)."
        % (DEFAULT_SPECTRO_PUB_REPO, FIPS_SPECTRO_PUB_REPO),
    )),
    Option("spectro_luet_repo", "str", derived=True, description=(
        "Registry path of the luet repository images that hold the Kubernetes packages (CanvOS C(SPECTRO_LUET_REPO)).",
        "When not set, C(<spectro_pub_repo>/edge) with the O(spectro_pub_repo) you set; FIPS builds keep it on "
        "V(%s/edge), as CanvOS does." % DEFAULT_SPECTRO_PUB_REPO,
    )),
    Option("fips_enabled", "bool", default=False, description=(
        "Build FIPS-compliant artifacts (CanvOS C(FIPS_ENABLED)). Requires O(base_image) and excludes "
        "O(update_kernel).",
        _WHEN_NOT_SET % "false",
    )),
    Option("update_kernel", "bool", default=False, canvos_bool=(
        "as true in its base image (anything but the exact word false updates the kernel) and as false in its "
        "provider images (no kernel headers)"), description=(
        "Let the build update the kernel of the base image, as CanvOS C(UPDATE_KERNEL=true) does. On Ubuntu amd64 "
        "the HWE kernel C(linux-image-generic-hwe-<os_version>) is installed and C(apt-get upgrade --with-new-pkgs) "
        "may bring a newer one; on openSUSE Leap amd64 the C(kernel-de*) packages are not locked before C(zypper "
        "update). Every provider image then gets the headers or development package of its newest kernel (Ubuntu "
        "amd64: C(linux-headers-<kernel>); openSUSE Leap and SLES: C(kernel-default-devel); RHEL: "
        "C(kernel-devel)), with fallbacks and a warning, never a failed build.",
        "When V(false), the kernel metapackages are held (Ubuntu amd64) or locked (openSUSE Leap amd64): the base "
        "image's kernel stays. Not with O(fips_enabled).",
        _WHEN_NOT_SET % "false",
    )),
    Option("http_proxy", "str", default="", secret=True, no_log=False, keep_empty=True, description=(
        "HTTP proxy URL for the build (not for the host), for example V(http://proxy.example.com:3128) (CanvOS "
        "C(HTTP_PROXY)).",
        "May carry credentials (V(http://user:password@proxy:3128)); the password is masked in every returned value, "
        "diff and log line, and in the plan other roles read. The real URL reaches the builds by one route only: "
        "the roles pass this variable to the C(no_log) option C(http_proxy) of the modules that build.",
    )),
    Option("https_proxy", "str", default="", secret=True, no_log=False, keep_empty=True, description=(
        "HTTPS proxy URL for the build (CanvOS C(HTTPS_PROXY)); same rules, masking and route as O(http_proxy).",
    )),
    Option("no_proxy", "str", default="", description=(
        "Comma-separated hosts, domains, IP addresses or CIDRs the build reaches without the proxy (CanvOS "
        "C(NO_PROXY)).",
    )),
    Option("proxy_cert_paths", "list", default=[], elements="path", canvos=False, description=(
        "CA certificate files (PEM) of the proxy, trusted during the build (CanvOS C(certs/) directory).",
        "Each file must exist; a missing file is an error (CanvOS would silently skip it).",
    )),
    Option("clusterconfig", "path", default="", description=(
        "Cluster definition (C(spc.tgz)) to embed in the installer ISO (CanvOS C(CLUSTERCONFIG)).",
        "Empty by default; a path you give must exist (CanvOS ignores a missing file silently).",
    )),
    Option("edge_custom_config", "path", default="", description=(
        "Edge custom configuration file, for example the content-signing public key (CanvOS C(EDGE_CUSTOM_CONFIG)).",
        "Empty by default; a path you give must exist.",
    )),
    Option("cis_hardening", "bool", default=False, description=(
        "Apply CIS benchmark hardening to the base stage after the kernel steps, as CanvOS C(CIS_HARDENING) does "
        "with its C(cis-harden/harden.sh): audit, AppArmor, AIDE and password-quality packages; kernel, SSH, sudo, "
        "PAM, login, journald and audit settings; legacy services removed or masked. Ubuntu on amd64 only.",
        "The build stops if a user of the base image has an empty password or a second account has UID 0. The AIDE "
        "database is not initialised in the image (run C(aideinit) on the host).",
        _WHEN_NOT_SET % "false",
    )),
    Option("disable_selinux", "bool", default=True, description=(
        "Disable SELinux on the kernel command line of the images (CanvOS C(DISABLE_SELINUX)). When not set, "
        "V(true).",
    )),
    Option("force_interactive_install", "bool", default=False, description=(
        "Make the interactive installer the default boot entry of the ISO (CanvOS C(FORCE_INTERACTIVE_INSTALL)).",
        _WHEN_NOT_SET % "false",
    )),
    Option("debug", "bool", default=False, description=(
        "Verbose ISO build and kernel debug flags (CanvOS C(DEBUG)). When not set, V(false).",
    )),
    Option("region", "str", default="", description=(
        "AWS region of the S3 bucket and of the AMI (CanvOS C(REGION)), for example V(us-east-1).",
    )),
    Option("s3_bucket", "str", default="", description=(
        "S3 bucket the raw disk image is uploaded to before the AMI import (CanvOS C(S3_BUCKET)); S3 bucket naming "
        "rules.",
    )),
    Option("s3_key", "str", default="", no_log=False, description=(
        "S3 object key of the uploaded raw image (CanvOS C(S3_KEY)); letters, digits and the characters "
        "! - _ . * ' ( ) /, at most 1024 bytes. Empty lets the AWS import choose its default.",
    )),
    Option("ami_name", "str", default="", canvos=False, description=(
        "Name of the registered AMI; 3-128 letters, digits, spaces and the characters ( ) [ ] . / - ' @ _. Empty "
        "lets the AWS import use the S3 key.",
    )),
    Option("k8s_versions_file", "path", default="", canvos=False, description=(
        "JSON file in the shape of CanvOS C(k8s_version.json) (distribution to list of C(x.y.z) versions) that "
        "replaces the versions table shipped with the collection.",
    )),
    Option("provider_source_image", "str", derived=True, canvos=False, description=(
        "Image holding the Kairos agent provider for the distribution.",
        "When not set, C(<spectro_pub_repo>/edge/kairos-io/provider-<dist>:<version>) with the provider versions of "
        "the CanvOS v4.10.0 release (V(kubeadm-fips) uses the kubeadm provider).",
    )),
    Option("stylus_framework_image", "str", derived=True, canvos=False, description=(
        "Image holding the Palette agent (stylus) framework files.",
        "When not set, C(<spectro_pub_repo>/edge/stylus-framework-linux-<arch>:<pe_version>).",
    )),
    Option("k8s_payload_image", "str", derived=True, canvos=False, description=(
        "Template of the image holding the Kubernetes package for one version; must contain C({k8s_version}).",
        "When not set, C(<spectro_luet_repo>/luet-repo-<amd|arm>:<dist>-k8s-{k8s_version}[-k3s1|-rke2r1]), the "
        "tag luet gives the package C(k8s/<dist>) that CanvOS installs.",
    )),
    Option("proxy_cert_path", "path", scope="deprecated", description=(
        "Deprecated single proxy CA file (CanvOS C(PROXY_CERT_PATH)); added to O(proxy_cert_paths) with a "
        "deprecation warning. Use O(proxy_cert_paths).",
    )),
    Option("arg_file", "path", scope="module", role_var="build_config_arg_file", description=(
        "CanvOS C(.arg) file to read first (dotenv with C($VAR) expansion of earlier keys; keys in any case). The "
        "options you set win over its values; relative paths in it are relative to its directory.",
        "Every key CanvOS would read differently is named in a warning - a key in another case (CanvOS matches keys "
        "case-sensitively and ignores C(K8s_VERSION)), a key only one side reads (for example C(IS_UKI)), a boolean "
        "that is not exactly C(true) or C(false).",
        "A boolean key with an empty value (C(UPDATE_KERNEL=), which CanvOS reads as true) takes the default above; "
        "the warning says what CanvOS would have done.",
    )),
    Option("dest", "path", scope="module", role_var="build_config_dest", description=(
        "Write the resulting configuration as a CanvOS C(.arg) file at this path (atomically; mode 0600 when a proxy "
        "URL carries credentials, else 0644). Reported as changed only when the content (or the mode) changes.",
    )),
)

BY_NAME = dict((option.name, option) for option in OPTIONS)
# The normalised configuration's keys, in .arg order; the derived build matrix is added as k8s_versions.
CONFIG_NAMES = tuple(option.name for option in OPTIONS if option.scope == "config")
DEPRECATED_NAMES = tuple(option.name for option in OPTIONS if option.scope == "deprecated")
# Every option a configuration dict may hold (as_dict() output is accepted back).
INPUT_NAMES = CONFIG_NAMES + DEPRECATED_NAMES + ("k8s_versions",)
SECRET_NAMES = tuple(option.name for option in OPTIONS if option.secret)


def argument_spec():
    """The build_config module's argument spec."""
    return dict((option.name, option.spec()) for option in OPTIONS)
