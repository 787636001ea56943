"""provider_image against the real engine and the stand-in upstream images mirrored in the local registry."""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.overlay import STOCK_FILES
from tests.integration.helpers import run_playbook
from tests.integration.registry_checks import unique, write_playbook
from tests.testbed.standins import recipes

pytestmark = pytest.mark.integration

BUILD_TASKS = """
- name: Plan the build
  ansible.builtin.include_role:
    name: edgeforge.artifacts.build_config
- name: Build the images
  edgeforge.artifacts.provider_image:
    config: "{{ build_config_plan.config }}"
    k8s_versions: "{{ test_k8s_versions | default(omit) }}"
    build_dir: "{{ test_build_dir }}"
    installer: "{{ test_installer | default(false) }}"
    parallel: 2
    dockerfile_content: "{{ test_dockerfile_content | default(omit) }}"
  register: built
- name: Show the statuses
  ansible.builtin.debug:
    msg: "statuses={{ built.images | map(attribute='status') | join(',') }}"
- name: Keep the result for the test
  ansible.builtin.copy:
    content: "{{ built | to_json }}"
    dest: "{{ test_build_dir }}/result.json"
    mode: "0644"
"""


@pytest.fixture(scope="module")
def build_playbook(tmp_path_factory):
    return write_playbook(tmp_path_factory.mktemp("provider-play"), "build.yml", BUILD_TASKS)


def _vars(standin_images, build_dir, **extra):
    data = dict(standin_images.config_overrides)
    data.update(image_registry="%s/%s" % (standin_images.registry.host, unique()), custom_tag="it",
                test_build_dir=str(build_dir))
    data.update(extra)
    return data


def _result(build_dir):
    with open(os.path.join(str(build_dir), "result.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _run_in(client, reference, command):
    return client.containers.run(reference, ["sh", "-c", command], remove=True).decode()


def test_builds_provider_and_installer_images_then_reuses_them(docker_engine, standin_images, build_playbook,
                                                               tmp_path):
    standin_images.ensure_payload("k3s", "1.26.14")
    # the base stage is shared by content digest with the other builds of this configuration (built or reused)
    variables = _vars(standin_images, tmp_path, k8s_version=["1.26.14", "1.27.2"], test_installer=True)
    first = run_playbook(build_playbook, variables)
    assert first.rc == 0, first.stdout + first.stderr
    result = _result(tmp_path)
    assert result["changed"] is True
    refs = [image["reference"] for image in result["images"]]
    assert refs == ["%s/ubuntu:k3s-%s-v4.9.21-it" % (variables["image_registry"], v) for v in ("1.26.14", "1.27.2")]
    assert [image["status"] for image in result["images"]] == ["built", "built"]
    assert result["base_stage"]["status"] in ("built", "reused")
    assert result["installer_image"]["reference"] == "palette-installer-image:v4.9.21-it"
    client = docker_engine.client
    for image in result["images"]:
        labels = client.images.get(image["reference"]).labels
        assert labels["io.edgeforge.inputs-digest"] == image["inputs_digest"]
        assert labels["io.edgeforge.k8s-version"] == image["k8s_version"]
        assert image["size"] > 0 and image["seconds"] > 0 and os.path.isfile(image["log"])
    out = _run_in(client, refs[1], "ls /system/providers; /usr/bin/kubelet; ls /var/cache/luet 2>&1; "
                                   "ls /etc/kairos/branding; wc -c < /etc/machine-id; "
                                   "ls /etc/ssh/ssh_host_* 2>&1; grep KAIROS_NAME /etc/kairos-release; "
                                   "cat /etc/cos/bootargs.cfg")
    assert "agent-provider-k3s" in out
    assert "1.27.2" in out
    assert "No such file" in out  # /var/cache/luet dropped, no ssh host keys
    assert "stylus_config.yaml" in out
    assert 'KAIROS_NAME="kairos-core-ubuntu-22.04"' in out
    assert "systemd.unified_cgroup_hierarchy=1" in out and "nouveau" not in out
    installer = _run_in(client, "palette-installer-image:v4.9.21-it", "ls /opt/spectrocloud/bin")
    assert "palette-agent" in installer
    with open(os.path.join(str(tmp_path), "logs", "provider_images.progress.log"), encoding="utf-8") as handle:
        assert "Step " in handle.read()

    again = run_playbook(build_playbook, variables)
    assert again.rc == 0, again.stdout
    second = _result(tmp_path)
    assert second["changed"] is False
    assert [image["status"] for image in second["images"]] == ["reused", "reused"]
    assert [image["id"] for image in second["images"]] == [image["id"] for image in result["images"]]

    # check mode with a changed input: says what would be built and builds nothing
    changed_input = dict(variables, test_dockerfile_content="RUN touch /etc/changed-%s" % unique())
    checked = run_playbook(build_playbook, changed_input, check=True)
    assert checked.rc == 0, checked.stdout
    assert "statuses=would_build,would_build" in checked.stdout
    assert client.images.get(refs[0]).id == result["images"][0]["id"]


def test_failing_customisation_reports_the_step_and_leaves_no_image(docker_engine, standin_images,
                                                                    build_playbook, tmp_path):
    variables = _vars(standin_images, tmp_path, k8s_version="1.27.2",
                      test_dockerfile_content="RUN echo edgeforge-marker-before && echo edgeforge-bad-step >&2 "
                                              "&& exit 7")
    failed = run_playbook(build_playbook, variables)
    assert failed.rc != 0
    assert "exit code 7" in failed.stdout
    assert "RUN echo edgeforge-marker-before" in failed.stdout  # the failing step
    assert "edgeforge-bad-step" in failed.stdout  # its output
    reference = "%s/ubuntu:k3s-1.27.2-v4.9.21-it" % variables["image_registry"]
    assert docker_engine.client.images.list(name=reference.rsplit(":", 1)[0]) == []
    # Only this run's temporary tags (named in its build logs): other runs on the engine may be building now.
    own = set()
    for name in os.listdir(os.path.join(str(tmp_path), "logs")):
        with open(os.path.join(str(tmp_path), "logs", name), encoding="utf-8") as handle:
            own.update(re.findall(r"^=== build (edgeforge-build-tmp:\S+) ", handle.read(), re.MULTILINE))
    assert own, "the build logs name no temporary tag"
    leftovers = [tag for image in docker_engine.client.images.list() for tag in image.tags if tag in own]
    assert leftovers == []
    assert os.path.isfile(os.path.join(str(tmp_path), "logs", "base-stage-base-stage.log"))


def test_an_empty_share_of_the_matrix_builds_nothing(docker_engine, standin_images, build_playbook, tmp_path):
    # a fleet with more build hosts than versions gives some hosts an empty share
    variables = _vars(standin_images, tmp_path, k8s_version="1.27.2", test_k8s_versions=[])
    done = run_playbook(build_playbook, variables)
    assert done.rc == 0, done.stdout + done.stderr
    result = _result(tmp_path)
    assert result["changed"] is False
    assert result["images"] == [] and result["provider_images"] == []
    assert docker_engine.client.images.list(name="%s/ubuntu" % variables["image_registry"]) == []


# ---------------------------------------------------------------------------------------------------------------
# Conformance with CanvOS v4.10.0: open the built images (docker export) and check files, modes, links, hashes.

CONFORMANCE_TASKS = BUILD_TASKS + """
- name: Push the provider images
  edgeforge.artifacts.image_push:
    references: "{{ built.images | map(attribute='reference') | list }}"
- name: Write the BYOOS pack manifest
  edgeforge.artifacts.byoos_manifest:
    config: "{{ build_config_plan.config }}"
    images: "{{ build_config_plan.provider_images }}"
    dest: "{{ test_build_dir }}/byoos-pack.yaml"
  register: manifest
- name: Keep the manifest for the test
  ansible.builtin.copy:
    content: "{{ manifest | to_json }}"
    dest: "{{ test_build_dir }}/manifest.json"
    mode: "0644"
"""
VERSIONS = ["1.26.14", "1.27.2"]
ENGINE_FILES = {"dockerenv", ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf"}


class ImageTree:
    """The file system of an image, from `docker export` of a created (never started) container."""

    def __init__(self, client, reference, workdir):
        import tarfile  # pylint: disable=import-outside-toplevel

        container = client.containers.create(reference, command=["true"])
        path = os.path.join(str(workdir), "%s.tar" % container.id[:12])
        try:
            with open(path, "wb") as handle:
                for chunk in container.export():
                    handle.write(chunk)
        finally:
            container.remove(force=True)
        self.tar = tarfile.open(path)  # pylint: disable=consider-using-with
        self.members = {member.name.lstrip("./").rstrip("/"): member for member in self.tar.getmembers()}

    def __contains__(self, path):
        return path.lstrip("/") in self.members

    def member(self, path):
        return self.members[path.lstrip("/")]

    def read(self, path):
        return self.tar.extractfile(self.member(path)).read()

    def mode(self, path):
        return self.member(path).mode & 0o7777

    def files(self):
        """Regular files, without the ones the engine adds to every container (hosts, resolv.conf ...)."""
        return {name for name, member in self.members.items()
                if member.isfile() and name not in ENGINE_FILES}

    def glob(self, prefix):
        return sorted(name for name in self.members if name.startswith(prefix.lstrip("/")))


@pytest.fixture(scope="module")
def conformance(docker_engine, standin_images, tmp_path_factory):
    """One k3s build of two versions with the installer image, pushed, with its BYOOS manifest; exported trees."""
    work = tmp_path_factory.mktemp("conformance")
    playbook = write_playbook(work, "conformance.yml", CONFORMANCE_TASKS)
    for version in VERSIONS:
        standin_images.ensure_payload("k3s", version)
    custom = work / "edge-custom-config.yaml"
    custom.write_text("content:\n  signing:\n    publicKey:\n      base64EncodedValue: %s\n" % unique())
    variables = _vars(standin_images, work, k8s_version=VERSIONS, test_installer=True, edge_custom_config=str(custom))
    run = run_playbook(playbook, variables)
    assert run.rc == 0, run.stdout + run.stderr
    result = _result(work)
    with open(os.path.join(str(work), "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    client = docker_engine.client
    standins = standin_images
    trees = {
        "provider": ImageTree(client, result["images"][1]["reference"], work),
        "installer": ImageTree(client, result["installer_image"]["reference"], work),
        "stylus": ImageTree(client, standins.stylus_frameworks[standins.pe_version], work),
        "kairos_provider": ImageTree(client, standins.provider_sources["k3s"], work),
        "third_party": ImageTree(client, standins.third_party, work),
        "payload": ImageTree(client, standins.payloads[("k3s", VERSIONS[1])], work),
    }
    return {"result": result, "manifest": manifest, "trees": trees, "variables": variables,
            "edge_custom_config": custom.read_bytes(), "payload_ref": standins.payloads[("k3s", VERSIONS[1])],
            "provider_ref": standins.provider_sources["k3s"]}


def _stock(path):
    return STOCK_FILES[path.lstrip("/")][0].encode("utf-8")


def _no_machine_identity(tree):
    # 3.8, 4.9, section 8 check 15
    assert tree.read("/etc/machine-id") == b"" and tree.mode("/etc/machine-id") == 0o444
    assert "/var/lib/dbus/machine-id" not in tree
    assert not tree.glob("/etc/ssh/ssh_host_") and "/etc/ssh/moduli" not in tree


def test_provider_image_holds_what_canvos_puts_there(conformance):
    trees = conformance["trees"]
    image, stylus = trees["provider"], trees["stylus"]
    # 3.10 / check 4: Kairos installs and resets without an admin user
    assert image.read("/etc/kairos/.nousers") == b""
    # 4.4: the stock overlay /etc files, logrotate's at 0644
    for path in ("/etc/rsyslog.d/49-stylus.conf", "/etc/logrotate.d/stylus.conf",
                 "/etc/spectrocloud/custom-hardware-specs-lookup.json"):
        assert image.read(path) == _stock(path) and image.mode(path) == 0o644, path
    # only /etc of the overlay (4.1)
    assert "/opt/spectrocloud/bin/check-disk-size.sh" not in image and "/Readme.txt" not in image
    # 4.6 / check 14: the four stylus pieces, stylus_config.yaml moved to the branding directory
    assert image.read("/etc/kairos/branding/stylus_config.yaml") == stylus.read("/oem/stylus_config.yaml")
    assert "/oem/stylus_config.yaml" not in image
    for path in ("/etc/kairos/80_stylus.yaml", "/etc/elemental/config.yaml",
                 "/etc/kairos/branding/interactive_install_text", "/etc/kairos/branding/reset_text"):
        assert image.read(path) == stylus.read(path), path  # stylus branding wins over the overlay's (4.4)
    assert "/opt/spectrocloud/bin/palette-agent" not in image  # the agent is the installer's (5.1)
    # 4.5 / check 3: the whole Kairos provider image
    missing = trees["kairos_provider"].files() - image.files()
    assert not missing and "system/providers/agent-provider-k3s" in image.files()
    # 4.9: etcdctl from the third-party image, packed by the build: an ELF with the UPX marker
    etcdctl = image.read("/usr/bin/etcdctl")
    assert etcdctl[:4] == b"\x7fELF" and b"UPX!" in etcdctl
    # 4.8: the payload, without luet state
    assert image.read("/usr/bin/kubelet") == trees["payload"].read("/usr/bin/kubelet")
    assert not image.glob("/var/cache/luet")
    # 4.7 / check 13: the edge custom config, byte-identical
    assert image.read("/oem/.edge_custom_config.yaml") == conformance["edge_custom_config"]
    _no_machine_identity(image)


def test_etcdctl_is_upx_packed_and_runs(conformance, docker_engine):
    # 4.9 check: /usr/bin/etcdctl starts with an ELF header and carries the UPX! marker; packed by our build, as
    # CanvOS packs it (the third-party image's binary is unpacked), smaller than the program, and it still runs
    unpacked = conformance["trees"]["third_party"].read("/binaries/etcdctl/latest/palette/amd64/etcdctl")
    program = recipes.elf_program(recipes.etcdctl_version_line("palette", "amd64"), recipes.ETCDCTL_PADDING)
    assert unpacked == program and recipes.UPX_MARKER not in unpacked
    etcdctl = conformance["trees"]["provider"].read("/usr/bin/etcdctl")
    assert etcdctl[:4] == b"\x7fELF" and recipes.UPX_MARKER in etcdctl and len(etcdctl) < len(program) // 2
    out = _run_in(docker_engine.client, conformance["result"]["images"][1]["reference"], "etcdctl --version")
    assert out == recipes.etcdctl_version_line("palette", "amd64")
    # packed once for both versions, in the etcdctl stage (or reused from an earlier build), never per version
    with open(os.path.join(conformance["result"]["log_dir"], "provider_images.progress.log"), encoding="utf-8") as log:
        progress = log.read()
    assert progress.count("building etcdctl stage") <= 1
    assert not [line for line in progress.splitlines() if "upx -1" in line and "[edgeforge-etcdctl-stage:" not in line]


def test_base_stage_steps_are_in_the_provider_image(conformance, docker_engine):
    image = conformance["trees"]["provider"]
    # 3.9 / check 9: cgroup v2 exactly once, SELinux off
    bootargs = image.read("/etc/cos/bootargs.cfg").decode()
    assert bootargs.count("systemd.unified_cgroup_hierarchy=1") == 1
    assert "selinux=1" not in bootargs and "security=selinux" not in bootargs and "selinux=0" in bootargs
    assert "nouveau" not in bootargs  # 4.12
    # 3.7: two fields rewritten, the base's others kept
    release = image.read("/etc/kairos-release").decode().splitlines()
    assert [line for line in release if line.startswith(("KAIROS_NAME=", "KAIROS_IMAGE_LABEL="))] == [
        'KAIROS_NAME="kairos-core-ubuntu-22.04"', 'KAIROS_IMAGE_LABEL="22.04-standard-amd64-generic"']
    assert 'KAIROS_VERSION="v4.0.4"' in release
    # 3.3b/d: the tools, from the Debian mirror the stand-in uses; 3.3e: apt lists gone
    status = image.read("/var/lib/dpkg/status").decode()
    for package in ("rsyslog", "logrotate", "cryptsetup-bin", "gdisk", "parted", "rsync"):
        assert "\nPackage: %s\n" % package in "\n" + status, package
    assert image.glob("/var/lib/apt/lists/") in ([], ["var/lib/apt/lists"])
    # 3.3f-h / check 5: the initrd regenerated for the newest kernel, both names resolve to it
    kernels = sorted({name.split("/")[3] for name in image.glob("/usr/lib/modules/") if name.count("/") >= 3})
    newest = kernels[-1]
    initrd = image.member("/boot/initrd")
    assert initrd.issym() and initrd.linkname == "initrd-%s" % newest
    assert image.member("/boot/initrd-%s" % newest).size > 1000000
    assert "/boot/vmlinuz" in image
    # 3.8: /tmp empty, password dictionaries kept when present
    assert image.glob("/tmp/") in ([], ["tmp"])
    labels = docker_engine.client.images.get(conformance["result"]["images"][1]["reference"]).labels
    assert labels["io.edgeforge.third-party-image"].endswith("/third-party/spectro-third-party:4.8")
    assert labels["io.edgeforge.upx-helper-image"] == conformance["variables"]["spectro_pub_repo"] + (
        "/edge/canvos/alpine:3.20")
    # check 2 / 3: the exact payload and Kairos provider image references read, recorded on the image
    assert labels["io.edgeforge.k8s-payload-image"] == conformance["payload_ref"]
    assert labels["io.edgeforge.provider-source-image"] == conformance["provider_ref"]


def test_a_payload_carrying_lib_keeps_the_merged_usr_and_the_image_runs(conformance, docker_engine):
    payload, image = conformance["trees"]["payload"], conformance["trees"]["provider"]
    assert payload.member("/lib/systemd/system/k3s.service").isfile()  # the trap is in the stand-in
    lib = image.member("/lib")
    assert lib.issym() and lib.linkname == "usr/lib"
    assert image.read("/usr/lib/systemd/system/k3s.service") == payload.read("/lib/systemd/system/k3s.service")
    out = _run_in(docker_engine.client, conformance["result"]["images"][1]["reference"],
                  "kubelet && test -f /lib/systemd/system/k3s.service && echo merged-ok")
    assert "Kubernetes v1.27.2" in out and "merged-ok" in out


def test_installer_image_holds_the_whole_framework_and_overlay(conformance):
    trees = conformance["trees"]
    image, stylus = trees["installer"], trees["stylus"]
    overlay_paths = {"etc/logrotate.d/stylus.conf", "etc/kairos/branding/interactive_install_text"}
    for path in stylus.files() - overlay_paths:  # 5.1: the whole framework, at its own paths
        assert image.read(path) == stylus.read(path), path
    for path in overlay_paths:  # the overlay is copied after the framework: it wins
        assert image.read(path) == _stock(path), path
    assert image.mode("/etc/logrotate.d/stylus.conf") == 0o644
    script = "/opt/spectrocloud/bin/check-disk-size.sh"
    assert image.read(script) == _stock(script) and image.mode(script) == 0o755
    assert image.read("/etc/kairos/.nousers") == b""
    assert "/oem/stylus_config.yaml" in image  # at the framework's own path here
    # no payload, no provider, no etcdctl (5.1)
    assert "/usr/bin/kubelet" not in image and "/usr/bin/etcdctl" not in image and not image.glob("/system/providers")
    assert image.member("/lib").issym()
    _no_machine_identity(image)


def test_byoos_system_uri_renders_to_a_pushed_tag_for_every_version(conformance, standin_images):
    import re  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel

    content = yaml.safe_load(conformance["manifest"]["content"])
    options = content["pack"]["options"] if "options" in content["pack"] else content["options"]
    template = options["system.uri"]

    def render(version):
        def value(match):
            key = match.group(1).strip()
            if key == ".spectro.system.kubernetes.version":
                return version
            return str(options[key[len(".spectro.pack.edge-native-byoi.options."):]])
        return re.sub(r"\{\{\s*([^}]+?)\s*\}\}", value, template)

    for version in conformance["variables"]["k8s_version"]:
        reference = render(version)
        registry = standin_images.registry
        name, tag = reference[len(registry.host) + 1:].rsplit(":", 1)
        assert reference.startswith(registry.host + "/") and tag in registry.tags(name), reference


def test_opensuse_package_steps_are_recorded_by_the_zypper_stand_in(docker_engine, standin_images, build_playbook,
                                                                    tmp_path):
    # Stand-in: the openSUSE base is the Debian stand-in plus a `zypper` that records its calls (3.4, 3.5).
    variables = _vars(standin_images, tmp_path, os_distribution="opensuse-leap", os_version="15.6",
                      k8s_version="1.27.2")
    run = run_playbook(build_playbook, variables)
    assert run.rc == 0, run.stdout + run.stderr
    reference = _result(tmp_path)["images"][0]["reference"]
    calls = _run_in(docker_engine.client, reference, "cat /var/log/edgeforge-standin-zypper.log").splitlines()
    assert calls == [
        "zypper --non-interactive addlock kernel-de*",
        "zypper --non-interactive refresh",
        "zypper --non-interactive update -y",
        "zypper --non-interactive install -y zstd vim iputils bridge-utils curl ethtool tcpdump",
        "zypper --non-interactive clean --all",
        "zypper --non-interactive install -y apparmor-parser apparmor-profiles rsyslog logrotate",
        "zypper --non-interactive clean --all",
    ]
    tree = ImageTree(docker_engine.client, reference, tmp_path)
    assert tree.member("/boot/initrd").issym()  # 3.4: dracut runs where the base has it
    assert 'KAIROS_NAME="kairos-core-opensuse-leap-15.6"' in tree.read("/etc/kairos-release").decode()


def test_nodeadm_installs_iam_ra_and_ssm(docker_engine, standin_images, build_playbook, tmp_path):
    # 4.10; nodeadm is a stand-in that records its calls and leaves a tiny real amazon-ssm-agent package
    standin_images.ensure_payload("nodeadm", "1.30.0")
    standin_images.ensure_provider("nodeadm")
    variables = _vars(standin_images, tmp_path, k8s_distribution="nodeadm", k8s_version="1.30.0")
    run = run_playbook(build_playbook, variables)
    assert run.rc == 0, run.stdout + run.stderr
    reference = _result(tmp_path)["images"][0]["reference"]
    out = _run_in(docker_engine.client, reference,
                  "cat /var/log/edgeforge-standin-nodeadm.log; dpkg -s amazon-ssm-agent | grep Status; "
                  "dpkg -s gnupg 2>&1 | grep -c 'install ok installed' || true")
    assert "nodeadm install -p iam-ra 1.30.0\nnodeadm install -p ssm 1.30.0" in out
    assert "Status: install ok installed" in out
    assert out.strip().endswith("0")  # gnupg removed again
    tree = ImageTree(docker_engine.client, reference, tmp_path)
    assert "/usr/bin/aws-iam-authenticator" in tree and "/usr/bin/aws_signing_helper" in tree
    assert "/usr/local/bin/aws-iam-authenticator" not in tree and "/usr/local/bin/aws_signing_helper" not in tree
    assert tree.member("/etc/systemd/system/snap.amazon-ssm-agent.amazon-ssm-agent.service").isfile()


def test_update_kernel_and_cis_hardening_are_refused_before_any_build(standin_images, build_playbook, tmp_path):
    # update_kernel only with fips_enabled (CanvOS's guard, 1.4); cis_hardening is honoured: test_cis_hardening.py
    fips = {"fips_enabled": True, "base_image": standin_images.base_image}
    for option, extra in (("update_kernel", fips),):
        variables = _vars(standin_images, tmp_path, k8s_version="1.27.2", **dict(extra, **{option: True}))
        run = run_playbook(build_playbook, variables)
        assert run.rc != 0 and option in run.stdout, run.stdout
        assert not os.path.isdir(os.path.join(str(tmp_path), "contexts"))  # nothing was built


def test_kubeadm_image_gets_the_headers_of_its_newest_kernel(docker_engine, standin_images, build_playbook,
                                                             tmp_path):
    # 4.2, with the headers package of the stand-in's (Debian) kernel from the Debian mirror
    standin_images.ensure_payload("kubeadm", "1.30.5")
    standin_images.ensure_provider("kubeadm")
    variables = _vars(standin_images, tmp_path, k8s_distribution="kubeadm", k8s_version="1.30.5")
    run = run_playbook(build_playbook, variables)
    assert run.rc == 0, run.stdout + run.stderr
    reference = _result(tmp_path)["images"][0]["reference"]
    out = _run_in(docker_engine.client, reference,
                  'k=$(ls /lib/modules | sort -V | tail -n 1); test -d "/usr/src/linux-headers-$k" && echo headers-ok; '
                  "ls /var/lib/apt/lists | grep -vc '^lock$\\|^partial$' || true; ls /tmp | wc -l; kubeadm")
    assert "headers-ok" in out and "kubeadm version v1.30.5" in out
    assert out.split()[1:3] == ["0", "0"]  # no apt lists, nothing left in /tmp
