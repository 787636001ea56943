"""The test bed itself: real registries that behave like ttl.sh and Docker Hub, and the published stand-ins."""

from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest

from tests.testbed.services import TestbedError, push_image
from tests.testbed.session_names import is_session_tag, remove_session_tags
from tests.testbed.standins import BASE_TAGS, PE_VERSIONS, PROVIDER_VERSIONS, package_version, recipes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_image(docker_engine):
    """A one-file scratch image, removed afterwards (unique name: the engine is shared)."""
    client = docker_engine.client
    name = "edgeforge-test-testbed-%s" % uuid.uuid4().hex[:8]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in (("Dockerfile", b"FROM scratch\nCOPY hello /hello\n"), ("hello", name.encode())):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _logs = client.images.build(fileobj=buf, custom_context=True, tag=name + ":1", rm=True)
    yield name + ":1", image
    for tag in list(client.images.get(image.id).tags):
        client.images.remove(tag, noprune=False)


@pytest.fixture(name="own_client")
def fixture_own_client(docker_engine, tmp_path, monkeypatch):
    """A Docker client of this test alone, with an empty credential store.

    The SDK keeps what ``login`` stored (and reads ~/.docker/config.json) for every later call of the same client:
    on the shared session client, an anonymous push would pass or fail depending on which test logged in first.
    """
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    client = docker.DockerClient(base_url=docker_engine.base_url, timeout=120)
    yield client
    client.close()


def _tag(client, local, registry, repo):
    ref = "%s/%s:1" % (registry.host, repo)
    client.images.get(local).tag("%s/%s" % (registry.host, repo), "1")
    return ref


def test_anonymous_registry_accepts_a_push(docker_engine, registry, tiny_image):
    client = docker_engine.client
    repo = _repo("anon")
    ref = _tag(client, tiny_image[0], registry, repo)
    digest = push_image(client, ref)
    assert digest.startswith("sha256:")
    assert registry.tags(repo) == ["1"]
    status, headers, _body = registry.api("/v2/%s/manifests/1" % repo, method="HEAD")
    assert status == 200
    assert headers.get("Docker-Content-Digest") == digest


def test_auth_registry_requires_credentials_on_the_api(auth_registry):
    assert auth_registry.api("/v2/", auth=False)[0] == 401
    assert auth_registry.api("/v2/", auth=(auth_registry.username, "not-" + auth_registry.password))[0] == 401
    assert auth_registry.api("/v2/", auth=("nobody", auth_registry.password))[0] == 401
    assert auth_registry.api("/v2/")[0] == 200


def _repo(purpose):
    """A repository of this test run alone: the registries live for the whole session."""
    return "edgeforge-test/%s-%s" % (purpose, uuid.uuid4().hex[:8])


def test_auth_registry_rejects_anonymous_push(own_client, auth_registry, tiny_image):
    repo = _repo("anon-push")
    ref = _tag(own_client, tiny_image[0], auth_registry, repo)
    with pytest.raises(TestbedError, match="(?i)unauthorized|authentication required|no basic auth"):
        push_image(own_client, ref)
    assert auth_registry.tags(repo) == []


def test_auth_registry_rejects_a_wrong_password(own_client, auth_registry, tiny_image):
    with pytest.raises(docker.errors.APIError, match="(?i)401|unauthorized"):
        own_client.login(username=auth_registry.username, password="wrong-" + auth_registry.password,
                         registry=auth_registry.url, reauth=True)
    repo = _repo("wrong-password")
    ref = _tag(own_client, tiny_image[0], auth_registry, repo)
    with pytest.raises(TestbedError, match="(?i)unauthorized|authentication required"):
        push_image(own_client, ref, auth_config={"username": auth_registry.username, "password": "wrong"})
    assert auth_registry.tags(repo) == []


def test_auth_registry_accepts_the_right_password(own_client, auth_registry, tiny_image):
    answer = own_client.login(username=auth_registry.username, password=auth_registry.password,
                              registry=auth_registry.url, reauth=True)
    assert answer.get("Status") == "Login Succeeded"
    repo = _repo("authed")
    ref = _tag(own_client, tiny_image[0], auth_registry, repo)
    assert push_image(own_client, ref, auth_config=auth_registry.auth_config).startswith("sha256:")
    assert auth_registry.tags(repo) == ["1"]


def test_standin_images_are_published_under_the_default_paths(standin_images, registry):
    pub = "palette-images"
    for repo, tag in BASE_TAGS:
        expected = tag.format(arch="amd64", kairos="v4.0.4")
        assert expected in registry.tags("%s/edge/%s" % (pub, repo))
    for dist, version in PROVIDER_VERSIONS.items():
        assert version in registry.tags("%s/edge/kairos-io/provider-%s" % (pub, dist))
    assert set(PE_VERSIONS) <= set(registry.tags("%s/edge/stylus-framework-linux-amd64" % pub))
    assert "v4.9.21" in PE_VERSIONS and "v4.4.12" in PE_VERSIONS
    assert "k3s-k8s-1.27.2-k3s1" in registry.tags("%s/edge/luet-repo-amd" % pub)
    assert "4.8" in registry.tags("%s/third-party/spectro-third-party" % pub)
    assert "3.20" in registry.tags("%s/edge/canvos/alpine" % pub)
    assert standin_images.config_overrides["spectro_pub_repo"] == "%s/%s" % (registry.host, pub)
    assert standin_images.base_image == ("%s/%s/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4"
                                         % (registry.host, pub))


def test_payload_on_demand(standin_images, registry):
    ref = standin_images.ensure_payload("rke2", "1.30.4")
    assert ref.endswith("/palette-images/edge/luet-repo-amd:rke2-k8s-%s" % package_version("rke2", "1.30.4"))
    assert "rke2-k8s-1.30.4-rke2r1" in registry.tags("palette-images/edge/luet-repo-amd")


def test_base_standin_content(docker_engine, standin_images):
    """The base holds what the ISO and disk builders rely on: kernel, live initrd, Kairos metadata, boot unit."""
    script = ("test -s /boot/vmlinuz && test -s /boot/initrd && grep -q KAIROS_VERSION /etc/kairos-release"
              " && grep -q live:CDLABEL /etc/cos/bootargs.cfg"
              " && test -L /etc/systemd/system/multi-user.target.wants/edgeforge-boot-ok.service"
              " && zcat /boot/initrd | cpio -t 2>/dev/null > /tmp/initrd.list"
              " && grep -q dmsquash-live /tmp/initrd.list && grep -q /sr_mod.ko /tmp/initrd.list"
              " && grep -q /isofs.ko /tmp/initrd.list && grep -q /virtio_scsi.ko /tmp/initrd.list"
              " && echo content-ok")
    out = docker_engine.client.containers.run(standin_images.base_image_tag, ["sh", "-c", script], remove=True,
                                              network_disabled=True)
    assert b"content-ok" in out


def test_package_recorder_records_and_answers_for_ubuntu_kernel_packages(docker_engine, standin_images):
    """The recording stand-in (labelled): calls logged and successful, Ubuntu metapackages "installed", dpkg real."""
    script = ("apt-get install -y linux-image-generic-hwe-22.04 && apt-mark hold linux-generic && zypper refresh"
              " && dpkg-query -W -f='${Status}\\n' linux-image-generic-hwe-24.04"
              " && dpkg-query -W -f='${Version}\\n' linux-generic-hwe-24.04 dpkg | grep -c ."
              " && cat %s" % recipes.PACKAGES_LOG)
    out = docker_engine.client.containers.run(standin_images.ensure_package_recorder(), ["sh", "-c", script],
                                              remove=True, network_disabled=True).decode().splitlines()
    assert out[0] == "install ok installed"  # an Ubuntu kernel metapackage, answered by the stand-in
    assert out[1] == "1"  # anything else is asked of the real dpkg database: dpkg's version only
    assert out[2:5] == ["apt-get install -y linux-image-generic-hwe-22.04", "apt-mark hold linux-generic",
                        "zypper refresh"]


def test_third_party_etcdctl_is_unpacked_as_in_the_real_image(docker_engine, standin_images):
    """4.9: the real image ships etcdctl unpacked (CanvOS packs it, and upx refuses a packed file)."""
    container = docker_engine.client.containers.create(standin_images.third_party, command=["true"])
    try:
        stream, _stat = container.get_archive("/binaries/etcdctl/latest/palette/amd64/etcdctl")
        data = b"".join(stream)
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        etcdctl = tar.extractfile("etcdctl").read()
    assert etcdctl == recipes.elf_program(recipes.etcdctl_version_line("palette", "amd64"), recipes.ETCDCTL_PADDING)
    assert recipes.UPX_MARKER not in etcdctl


def test_alpine_helper_standin_has_upx_and_a_shell(docker_engine, standin_images):
    """CanvOS's Alpine helper (2.1, 4.9), where the build runs `upx -1`: upx on PATH, /bin/sh, labelled stand-in."""
    ref = standin_images.alpine_helper
    assert ref == "%s/edge/canvos/alpine:3.20" % standin_images.pub_repo
    out = docker_engine.client.containers.run(
        ref, ["/bin/sh", "-c", "command -v upx && upx --version | head -n 1 && cat /etc/edgeforge-standin"],
        remove=True, network_disabled=True).decode()
    assert out.splitlines()[0].endswith("/upx") and out.splitlines()[1].startswith("upx ")
    assert "stand-in of CanvOS's Alpine helper edge/canvos/alpine:3.20" in out


def test_the_sessions_own_tags_are_removed_and_the_layers_kept(docker_engine, tiny_image):
    """What the docker_engine fixture does when the session ends, on names of this test alone."""
    client = docker_engine.client
    tag, image = tiny_image
    marker = "edgeforge-test-names-%s" % uuid.uuid4().hex[:8]
    prefix = "127.0.0.1:1/"  # no registry listens there: a name only this test uses
    for repository, new_tag in ((marker, "a"), ("other-repo", "%s-b" % marker), (prefix + marker, "c")):
        client.api.tag(image.id, repository, new_tag)
    removed = remove_session_tags(client, markers={marker}, prefixes={prefix})
    assert sorted(removed) == sorted(["%s:a" % marker, "other-repo:%s-b" % marker, "%s%s:c" % (prefix, marker)])
    left = client.images.get(image.id).tags  # the image (its layers) stays, with the tags of other names
    assert tag in left and not [name for name in left if marker in name]
    assert not is_session_tag(tag, markers={marker}, prefixes={prefix})
