"""Provider build contexts: Dockerfiles, trust stores, kairos-release/bootargs script, inputs digests."""

import os
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import BuildConfig
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import context, images, steps
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider import overlay


class pb:  # pylint: disable=invalid-name,too-few-public-methods
    """The package's names in one place, as the tests use them."""
    trust_store = staticmethod(images.trust_store)
    read_cert_files = staticmethod(context.read_cert_files)
    user_dockerfile_text = staticmethod(context.user_dockerfile_text)
    base_stage_context = staticmethod(images.base_stage_context)
    provider_context = staticmethod(images.provider_context)
    installer_context = staticmethod(images.installer_context)
    base_stage_tag = staticmethod(images.base_stage_tag)
    proxy_build_args = staticmethod(context.proxy_build_args)
    builds_of_share = staticmethod(context.builds_of_share)
    base_stage_script = staticmethod(steps.base_stage_script)
    LABEL_DIGEST = context.LABEL_DIGEST


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
    assert lines.index("RUN echo custom > /etc/custom") < lines.index("RUN sh /tmp/edgeforge-base.sh")
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
    assert ("COPY --from=%s /oem/stylus_config.yaml /out/etc/kairos/branding/stylus_config.yaml"
            % config["stylus_framework_image"]) in text
    third_party = "mirror.example:5000/pi/third-party/spectro-third-party:4.8"
    stage = images.etcdctl_stage_context(config, {}).dockerfile
    assert "COPY --from=%s /binaries/etcdctl/latest/palette/amd64/etcdctl /WORKDIR/etcdctl" % third_party in stage
    assert "FROM mirror.example:5000/pi/edge/canvos/alpine:3.20\n" in stage
    assert all(ref.startswith("mirror.example:5000/") for ref in (
        config["provider_source_image"], config["stylus_framework_image"], plan["builds"][0]["k8s_payload_image"]))
    final = providers[0].files["edgeforge-final.sh"].decode()
    assert "rm -f /etc/ssh/ssh_host_* /etc/ssh/moduli" in final and "chmod 0444 /etc/machine-id" in final
    # CanvOS's precedence (4.1): overlay etc, provider image, stylus, payload, etcdctl; one COPY onto the base
    order = [text.index(part) for part in ("COPY overlay/ /out/etc/", config["provider_source_image"],
                                           config["stylus_framework_image"], plan["builds"][0]["k8s_payload_image"],
                                           "COPY --from=edgeforge-etcdctl-stage:", "COPY --from=payload /out/ /")]
    assert order == sorted(order)
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
    assert "COPY edge_custom_config.yaml /out/oem/.edge_custom_config.yaml" in with_custom.dockerfile
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
    assert "COPY --from=%s / /out/" % plan["config"]["stylus_framework_image"] in installer.dockerfile
    assert installer.files["overlay/etc/motd"] == b"hello\n"
    assert installer.files["overlay/etc/kairos/.nousers"] == b""
    assert installer.modes["overlay/opt/spectrocloud/bin/check-disk-size.sh"] == 0o755
    assert "COPY overlay/ /out/" in installer.dockerfile
    assert providers[0].files["overlay/motd"] == b"hello\n"
    assert "overlay/spectrocloud/custom-hardware-specs-lookup.json" in providers[0].files
    assert not any("check-disk-size" in name for name in providers[0].files)
    assert "COPY overlay/ /out/etc/" in providers[0].dockerfile


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
    # the release, cleanup and boot-argument steps (package steps need the image's package manager)
    script = "\n".join(steps.HEADER + steps.release_steps(config) + steps.cleanup_steps()
                       + steps.bootargs_steps(config))
    for path in ("/etc/kairos-release", "/etc/cos/bootargs.cfg", "/var/cache", "/etc/machine-id",
                 "/var/lib/dbus", "/var/log/journal"):
        script = script.replace(path, str(root) + path)
    script = script.replace("find /tmp -mindepth 1 -delete", "true").replace("journalctl", "no-journalctl")
    (tmp_path / "s.sh").write_text(script)
    subprocess.run(["sh", str(tmp_path / "s.sh")], check=True)
    return root


def test_base_script_patches_release_and_boot_arguments(tmp_path):
    config = _plan(os_version="22", disable_selinux=True)["config"]
    root = _run_base_script(tmp_path, config, 'set kernel=/boot/vmlinuz\nset baseCmd="console=tty1 '
                                              'security=selinux selinux=1"\nset kernelcmd="$baseCmd root=x"\n')
    release = (root / "etc" / "kairos-release").read_text()
    assert 'KAIROS_NAME="kairos-core-ubuntu-22.04"' in release
    assert 'KAIROS_IMAGE_LABEL="22.04-standard-amd64-generic"' in release
    assert 'KAIROS_VERSION="v4.0.4"' in release
    bootargs = (root / "etc" / "cos" / "bootargs.cfg").read_text()
    assert 'set baseCmd="console=tty1 selinux=0 systemd.unified_cgroup_hierarchy=1"' in bootargs
    assert 'set kernelcmd="$baseCmd root=x"' in bootargs and "nouveau" not in bootargs  # 4.12: no nouveau args
    assert bootargs.count("systemd.unified_cgroup_hierarchy=1") == 1
    assert sorted(os.listdir(root / "var" / "cache")) == ["cracklib"]
    assert (root / "etc" / "machine-id").read_text() == ""
    assert oct((root / "etc" / "machine-id").stat().st_mode & 0o777) == "0o444"
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


def test_base_script_without_bootargs_file_reports_it_and_goes_on(tmp_path):
    config = _plan()["config"]
    script = "\n".join(steps.HEADER + steps.bootargs_steps(config)).replace("/etc/cos", str(tmp_path / "none"))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert "bootargs.cfg is not in the base image" in done.stdout


def test_release_file_is_created_when_the_base_has_none(tmp_path):
    config = _plan(os_version="20")["config"]
    script = "\n".join(steps.HEADER + steps.release_steps(config)).replace("/etc/kairos-release",
                                                                           str(tmp_path / "rel"))
    subprocess.run(["sh", "-c", script], check=True)
    assert (tmp_path / "rel").read_text() == ('KAIROS_NAME="kairos-core-ubuntu-20.04"\n'
                                              'KAIROS_IMAGE_LABEL="20.04-standard-amd64-generic"\n')


def test_update_kernel_is_refused_only_on_a_fips_build():
    config = _plan()["config"]
    for option in ("update_kernel", "cis_hardening"):  # both honoured now (3.3c, 3.3j)
        steps.refuse_unsupported(dict(config, **{option: True}))
    with pytest.raises(ValidationError) as err:
        steps.refuse_unsupported(dict(config, update_kernel=True, fips_enabled=True))
    assert err.value.param == "update_kernel" and "fips_enabled" in str(err.value)


def test_package_steps_follow_the_distribution():
    ubuntu = steps.base_stage_script(_plan()["config"])
    assert "apt-get install -y --no-install-recommends kbd zstd vim" in ubuntu
    assert "apt-mark hold" in ubuntu and 'dracut -f "/boot/initrd-$kver" "$kver"' in ubuntu
    fips = steps.base_stage_script(_plan(fips_enabled=True, base_image="r.example/fips:1")["config"])
    assert "dracut -f" not in fips  # a FIPS base keeps its initrd (3.3g)
    suse = steps.base_stage_script(_plan(os_distribution="opensuse-leap")["config"])
    assert "zypper --non-interactive addlock 'kernel-de*'" in suse and "apt-get" not in suse
    assert "apparmor-parser apparmor-profiles rsyslog logrotate" in suse
    rhel_plan = _plan(os_distribution="rhel", os_version="9.4", base_image="r.example/rhel:9")
    rhel = steps.base_stage_script(rhel_plan["config"])
    assert "yum install -y openssl rsyslog logrotate" in rhel
    arm = steps.base_stage_script(_plan(arch="arm64")["config"])
    assert "apt-get" not in arm  # CanvOS runs no package step on Ubuntu arm64 (3.3)


def test_kubeadm_gets_kernel_headers_and_nodeadm_its_aws_parts():
    kubeadm = _contexts(_plan(k8s_distribution="kubeadm", k8s_version="1.30.5"))[1][0]
    assert "RUN sh /tmp/edgeforge-kernel-headers.sh" in kubeadm.dockerfile
    k3s = _contexts(_plan())[1][0]
    assert "kernel-headers" not in k3s.dockerfile
    nodeadm = _contexts(_plan(k8s_distribution="nodeadm", k8s_version="1.30.0"))[1][0]
    final = nodeadm.files["edgeforge-final.sh"].decode()
    assert "/opt/nodeadmutil/bin/nodeadm install -p iam-ra 1.30.0" in final
    assert "snap.amazon-ssm-agent.amazon-ssm-agent.service" in final


def test_stock_overlay_hashes_of_the_data_files():
    import hashlib
    files = overlay.STOCK_FILES
    assert hashlib.sha256(files["etc/kairos/branding/interactive_install_text"][0].encode()).hexdigest() == (
        "3e7f8708174e5bdc44d8575aa72c4032237e8116562462043fb26b37d0358396")
    assert hashlib.sha256(files["etc/spectrocloud/custom-hardware-specs-lookup.json"][0].encode()).hexdigest() == (
        "37517e5f3dc66819f61f5a7bb8ace1921282415f10551d2defa5c3eb0985b570")


def test_merged_usr_steps_move_lib_into_usr(tmp_path):
    out = tmp_path / "out"
    (out / "lib" / "systemd" / "system").mkdir(parents=True)
    (out / "lib" / "systemd" / "system" / "k3s.service").write_text("x")
    (out / "usr" / "bin").mkdir(parents=True)
    # the image's own root: /lib a link (merged /usr), stood in by a directory with the same links
    root = tmp_path / "root"
    root.mkdir()
    (root / "lib").symlink_to("usr/lib")
    script = "\n".join(steps.HEADER + steps.merged_usr_steps(str(out)))
    script = script.replace('"/$d"', '"%s/$d"' % root)
    subprocess.run(["sh", "-c", script], check=True)
    assert not (out / "lib").exists()
    assert (out / "usr" / "lib" / "systemd" / "system" / "k3s.service").read_text() == "x"


def test_third_party_image_stays_on_palette_images_and_fips_takes_vertex_binaries():
    fips = _plan(fips_enabled=True, base_image="r.example/fips:1")["config"]
    assert images.third_party_image(fips) == "us-docker.pkg.dev/palette-images/third-party/spectro-third-party:4.8"
    assert images.etcdctl_path(fips) == "/binaries/etcdctl/latest/vertex/amd64/etcdctl"
    mirror = _plan(spectro_pub_repo="mirror.example:5000/pi")["config"]
    assert images.third_party_image(mirror) == "mirror.example:5000/pi/third-party/spectro-third-party:4.8"
    assert images.etcdctl_path(mirror) == "/binaries/etcdctl/latest/palette/amd64/etcdctl"


def test_etcdctl_is_packed_with_upx_in_canvos_alpine_helper_once_for_every_version():
    # 4.9: as CanvOS's +third-party target: FROM ALPINE_IMG, the third-party binary copied in, `upx -1` on it
    plan = _plan()
    ids = {"provider_source_image": "sha256:prov", "stylus_framework_image": "sha256:sty",
           "third_party_image": "sha256:tp", "upx_helper_image": "sha256:alpine"}
    _base, providers = _contexts(plan, ids=dict(ids))
    helper = "us-docker.pkg.dev/palette-images/edge/canvos/alpine:3.20"
    third_party = "us-docker.pkg.dev/palette-images/third-party/spectro-third-party:4.8"
    stage = images.etcdctl_stage_context(plan["config"], ids)
    assert stage.dockerfile.splitlines()[1:4] == [
        "FROM %s" % helper,
        "COPY --from=%s /binaries/etcdctl/latest/palette/amd64/etcdctl /WORKDIR/etcdctl" % third_party,
        "RUN upx -1 /WORKDIR/etcdctl"]
    assert "k8s" not in stage.dockerfile and stage.labels["io.edgeforge.upx-helper-image"] == helper
    for ctx in providers:  # one packed etcdctl, taken by every version; never the unpacked file
        assert ("COPY --from=%s /WORKDIR/etcdctl /out/usr/bin/etcdctl" % images.etcdctl_stage_tag(stage)
                in ctx.dockerfile.splitlines())
        assert third_party not in ctx.dockerfile.replace('third-party-image="%s"' % third_party, "")
        assert ctx.labels["io.edgeforge.upx-helper-image"] == helper


def test_upx_helper_image_follows_the_fips_registry_and_a_mirror():
    # 2.1: ALPINE_IMG moves to palette-images-fips with SPECTRO_PUB_REPO; the third-party image does not
    fips = _plan(fips_enabled=True, base_image="r.example/fips:1")["config"]
    assert images.upx_helper_image(fips) == "us-docker.pkg.dev/palette-images-fips/edge/canvos/alpine:3.20"
    mirror = _plan(spectro_pub_repo="mirror.example:5000/pi")["config"]
    assert images.upx_helper_image(mirror) == "mirror.example:5000/pi/edge/canvos/alpine:3.20"


def test_a_changed_upx_helper_image_rebuilds_the_provider_images():
    plan = _plan()
    ids = {"provider_source_image": "sha256:prov", "stylus_framework_image": "sha256:sty"}
    _b, first = _contexts(plan, ids=dict(ids, upx_helper_image="sha256:a"))
    _b, second = _contexts(plan, ids=dict(ids, upx_helper_image="sha256:b"))
    assert first[0].digest != second[0].digest
    assert (images.etcdctl_stage_context(plan["config"], {"upx_helper_image": "sha256:a"}).digest
            != images.etcdctl_stage_context(plan["config"], {"upx_helper_image": "sha256:b"}).digest)
