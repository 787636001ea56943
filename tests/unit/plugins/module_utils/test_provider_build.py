"""Provider build contexts: Dockerfiles, trust stores, kairos-release/bootargs script, inputs digests."""

import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils import provider_build as pb

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _plan(**options):
    options.setdefault("k8s_version", ["1.27.2", "1.28.5"])
    return BuildConfig.from_options(options).plan()


def _contexts(plan, base_id="sha256:base", user="", certs=None, ids=None, **kwargs):
    config = plan["config"]
    base = pb.base_stage_context(config, base_id, user, certs)
    ids = ids or {"provider_source_image": "sha256:prov", "stylus_framework_image": "sha256:sty"}
    for build in plan["builds"]:
        ids.setdefault(build["k8s_payload_image"], "sha256:k8s-" + build["k8s_version"])
    providers = [pb.provider_context(config, build, base, ids, **kwargs) for build in plan["builds"]]
    return base, providers


@pytest.mark.parametrize("dist,path,command", [
    ("ubuntu", "/usr/local/share/ca-certificates", "update-ca-certificates"),
    ("opensuse-leap", "/usr/share/pki/trust/anchors", "update-ca-certificates"),
    ("rhel", "/etc/pki/ca-trust/source/anchors", "update-ca-trust extract"),
    ("sles", "/usr/share/pki/trust/anchors", "update-ca-certificates"),
])
def test_trust_store_per_distribution(dist, path, command):
    assert pb.trust_store(dist) == (path, command)


def test_certificates_go_to_the_distributions_trust_store(tmp_path):
    cert = tmp_path / "corp proxy.pem"
    cert.write_bytes(PEM)
    plan = _plan(os_distribution="opensuse-leap")
    certs = pb.read_cert_files([str(cert)])
    assert list(certs) == ["certs/00-corp-proxy.crt"]
    base = _contexts(plan, certs=certs)[0]
    assert "COPY certs/ /usr/share/pki/trust/anchors/" in base.dockerfile
    assert base.files["certs/00-corp-proxy.crt"] == PEM


def test_certificate_files_are_checked(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(ValidationError, match="proxy_cert_paths"):
        pb.read_cert_files([str(bad)])
    with pytest.raises(ValidationError, match="proxy_cert_paths"):
        pb.read_cert_files([str(tmp_path / "missing.pem")])


def test_user_dockerfile_is_inserted_and_from_is_refused(tmp_path):
    fragment = tmp_path / "Dockerfile.custom"
    fragment.write_text("RUN echo custom > /etc/custom\n")
    text = pb.user_dockerfile_text(str(fragment), "ENV A=1")
    assert text == "RUN echo custom > /etc/custom\nENV A=1"
    base = _contexts(_plan(), user=text)[0]
    lines = base.dockerfile.splitlines()
    assert lines[1].startswith("FROM ")
    assert lines.index("RUN echo custom > /etc/custom") < lines.index("RUN sh /tmp/edgeforge-base.sh && rm -f "
                                                                      "/tmp/edgeforge-base.sh")
    with pytest.raises(ValidationError, match="without FROM"):
        pb.user_dockerfile_text(None, "FROM alpine\nRUN true")
    with pytest.raises(ValidationError, match="dockerfile"):
        pb.user_dockerfile_text(str(tmp_path / "nope"), None)


def test_provider_dockerfile_reads_every_upstream_image_from_the_configuration():
    plan = _plan(spectro_pub_repo="mirror.example:5000/pi")
    base, providers = _contexts(plan)
    text = providers[0].dockerfile
    config = plan["config"]
    assert "FROM %s AS payload" % pb.base_stage_tag(base) in text
    assert "COPY --from=%s / /out/" % config["provider_source_image"] in text
    assert "COPY --from=%s / /out/" % plan["builds"][0]["k8s_payload_image"] in text
    assert "COPY --from=%s /oem/stylus_config.yaml" % config["stylus_framework_image"] in text
    assert all(ref.startswith("mirror.example:5000/") for ref in (
        config["provider_source_image"], config["stylus_framework_image"], plan["builds"][0]["k8s_payload_image"]))
    assert "rm -f /etc/ssh/ssh_host_*" in text and "touch /etc/machine-id" in text
    assert providers[0].labels["io.edgeforge.k8s-version"] == "1.27.2"
    assert providers[0].labels[pb.LABEL_DIGEST] == providers[0].digest


def test_base_stage_is_shared_and_provider_digests_differ_per_version():
    base, providers = _contexts(_plan())
    assert providers[0].digest != providers[1].digest
    assert all(pb.base_stage_tag(base) in p.dockerfile for p in providers)


def test_inputs_digest_tracks_every_input(tmp_path):
    plan = _plan()
    base, providers = _contexts(plan)
    same_base, same = _contexts(plan)
    assert (base.digest, providers[0].digest) == (same_base.digest, same[0].digest)
    # base image id
    other_base, other = _contexts(plan, base_id="sha256:newbase")
    assert other_base.digest != base.digest and other[0].digest != providers[0].digest
    # user Dockerfile text
    assert _contexts(plan, user="RUN true")[1][0].digest != providers[0].digest
    # a file copied in (edge custom config)
    custom = tmp_path / "custom.yaml"
    custom.write_text("a: 1\n")
    with_custom = _contexts(plan, edge_custom_config=str(custom))[1][0]
    custom.write_text("a: 2\n")
    assert _contexts(plan, edge_custom_config=str(custom))[1][0].digest != with_custom.digest
    assert "COPY edge_custom_config.yaml /oem/.edge_custom_config.yaml" in with_custom.dockerfile
    # an upstream image id
    ids = {"provider_source_image": "sha256:prov2", "stylus_framework_image": "sha256:sty"}
    assert _contexts(plan, ids=ids)[1][0].digest != providers[0].digest
    # configuration that changes the image
    assert _contexts(_plan(disable_selinux=False))[0].digest != base.digest


def test_proxies_are_build_args_not_inputs():
    plan = _plan(http_proxy="http://proxy.example:3128", no_proxy="localhost,.corp")
    base, providers = _contexts(plan)
    plain_base, plain = _contexts(_plan())
    assert (base.digest, providers[0].digest) == (plain_base.digest, plain[0].digest)
    assert pb.proxy_build_args(plan["config"]) == {
        "HTTP_PROXY": "http://proxy.example:3128", "http_proxy": "http://proxy.example:3128",
        "NO_PROXY": "localhost,.corp", "no_proxy": "localhost,.corp"}
    assert "proxy.example" not in base.dockerfile + providers[0].dockerfile


def test_installer_context_copies_the_whole_stylus_framework_and_overlay(tmp_path):
    overlay = tmp_path / "overlay"
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc" / "motd").write_text("hello\n")
    plan = _plan()
    base, providers = _contexts(plan, overlay_dir=str(overlay))
    installer = pb.installer_context(plan["config"], plan["installer_image"], base,
                                     {"stylus_framework_image": "sha256:sty"}, str(overlay))
    assert "COPY --from=%s / /" % plan["config"]["stylus_framework_image"] in installer.dockerfile
    assert installer.files["overlay/etc/motd"] == b"hello\n"
    assert "COPY overlay/ /" in installer.dockerfile
    assert providers[0].files["overlay-etc/motd"] == b"hello\n"
    assert "COPY overlay-etc/ /etc/" in providers[0].dockerfile


def test_context_write_replaces_stale_files(tmp_path):
    base = _contexts(_plan())[0]
    target = tmp_path / "ctx"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    base.write(str(target))
    assert sorted(os.listdir(target)) == ["Dockerfile", "edgeforge-base.sh"]
    assert (target / "Dockerfile").read_text() == base.dockerfile


def _run_base_script(tmp_path, config, bootargs):
    root = tmp_path / "root"
    (root / "etc" / "cos").mkdir(parents=True)
    (root / "var" / "cache" / "apt").mkdir(parents=True)
    (root / "var" / "cache" / "cracklib").mkdir(parents=True)
    (root / "etc" / "kairos-release").write_text('KAIROS_NAME="kairos-core-x"\nKAIROS_VERSION="v4.0.4"\n')
    (root / "etc" / "cos" / "bootargs.cfg").write_text(bootargs)
    (root / "etc" / "machine-id").write_text("1234\n")
    script = pb.base_stage_script(config)
    for path in ("/etc/kairos-release", "/etc/cos/bootargs.cfg", "/var/cache", "/etc/machine-id"):
        script = script.replace(path, str(root) + path)
    script = script.replace("rm -rf /tmp/* /var/log/journal/*", "true")
    (tmp_path / "s.sh").write_text(script)
    subprocess.run(["sh", str(tmp_path / "s.sh")], check=True)
    return root


def test_base_script_patches_release_and_boot_arguments(tmp_path):
    config = _plan(os_version="22", disable_selinux=True)["config"]
    root = _run_base_script(tmp_path, config, 'set kernel=/boot/vmlinuz\nset kernelcmd="console=tty1 selinux=1"\n')
    release = (root / "etc" / "kairos-release").read_text()
    assert 'KAIROS_NAME="kairos-core-ubuntu-22.04"' in release
    assert 'KAIROS_IMAGE_LABEL="22.04-standard-amd64-generic"' in release
    assert 'KAIROS_VERSION="v4.0.4"' in release
    bootargs = (root / "etc" / "cos" / "bootargs.cfg").read_text()
    assert ('set kernelcmd="console=tty1 selinux=0 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau '
            'modprobe.blacklist=nouveau nouveau.modeset=0"') in bootargs
    assert sorted(os.listdir(root / "var" / "cache")) == ["cracklib"]
    assert (root / "etc" / "machine-id").read_text() == ""
    # idempotent: running again adds nothing
    again = _run_base_script(tmp_path / "again", config, bootargs)
    assert (again / "etc" / "cos" / "bootargs.cfg").read_text() == bootargs


def test_base_script_keeps_selinux_when_not_disabled(tmp_path):
    config = _plan(os_distribution="opensuse-leap", disable_selinux=False)["config"]
    root = _run_base_script(tmp_path, config, 'set kernelcmd="selinux=1"\n')
    assert "selinux=1 systemd.unified_cgroup_hierarchy=1" in (root / "etc" / "cos" / "bootargs.cfg").read_text()
    assert 'KAIROS_NAME="kairos-core-opensuse-leap-15.6"' in (root / "etc" / "kairos-release").read_text()


def test_a_share_keeps_its_versions_of_the_matrix_and_an_empty_share_builds_nothing():
    builds = [{"k8s_version": v, "image": "r/ubuntu:k3s-%s" % v} for v in ("1.27.2", "1.28.5", "1.29.0")]
    assert [b["k8s_version"] for b in pb.builds_of_share(builds, ["1.29.0", "1.27.2"])] == ["1.27.2", "1.29.0"]
    assert pb.builds_of_share(builds, []) == []
    with pytest.raises(ValidationError) as err:
        pb.builds_of_share(builds, ["1.30.1"])
    assert err.value.param == "k8s_versions" and "1.27.2, 1.28.5, 1.29.0" in str(err.value)
