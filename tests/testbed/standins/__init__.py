"""Stand-ins for the upstream images a build pulls, built offline and published to the test bed's registry.

An air-gapped user mirrors upstream images into a local registry under the same repository paths and points
`spectro_pub_repo` at the mirror. The test bed does the same with images built here, from Debian packages only:

- base images (kairos-ubuntu 20.04/22.04/24.04, kairos-opensuse leap-15.6): one Debian bookworm rootfs from
  `debootstrap --variant=minbase` (imported with `docker import`) + kernel + systemd + a dracut live initrd
  (recipe: base/Dockerfile), merged-/usr like a Kairos Ubuntu core image. Same rootfs under every Ubuntu tag: they
  are stand-ins, not the real distributions. The openSUSE tag adds a `zypper` that records its calls (3.4, 3.5).
- the small images (recipes.py, each recipe citing the CONFORMANCE items it mirrors): Kairos provider images
  (`edge/kairos-io/provider-<name>:<version>`), the stylus framework (`edge/stylus-framework-linux-amd64:<pe>`),
  the third-party image with etcdctl unpacked as in the real one (`third-party/spectro-third-party:4.8`), the
  offline stand-in of CanvOS's Alpine helper (`edge/canvos/alpine:3.20`, where the build packs etcdctl with
  `upx -1`: Debian's upx from bookworm-backports and /bin/sh, not Alpine) and the Kubernetes payloads under
  luet's real tags (`edge/luet-repo-amd:<dist>-k8s-<package_version>`, with lib/ and usr/ parts), one per version;
  `StandIns.ensure_payload()` makes any version on demand.
- on demand, `StandIns.ensure_package_recorder()`: the base with recording apt-get/apt-mark/dpkg-query/zypper/yum/
  dracut (recipes.package_recorders), where the steps written for another distribution's packages can run.

Slow images (minbase ~30 s, base ~2 min) stay in the local engine under a content-versioned tag
(`edgeforge-testbed/<name>:<hash of the recipe>`), so later runs only tag and push.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

from tests.testbed.services import STATE_DIR, TestbedError, push_image
from tests.testbed.standins import recipes

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE_VERSION = "1"  # bump to rebuild every cached stand-in
LOCAL_PREFIX = "edgeforge-testbed"
LABEL = "io.edgeforge.testbed.recipe"

# Pinned defaults the stand-ins mirror (CanvOS v4.10.0; see the team brief's "Pinned defaults").
DEFAULT_PUB_REPO = "us-docker.pkg.dev/palette-images"
PE_VERSION = "v4.9.21"
KAIROS_VERSION = "v4.0.4"
PE_VERSIONS = (PE_VERSION, "v4.4.12")
ARCH = "amd64"
ARCHSHORT = {"amd64": "amd", "arm64": "arm"}
PROVIDER_VERSIONS = {"k3s": "v4.9.4", "kubeadm": "v4.9.8", "rke2": "v4.9.3", "nodeadm": "v4.9.3",
                     "canonical": "v4.9.3"}
BASE_TAGS = (
    ("kairos-ubuntu", "20.04-core-{arch}-generic-{kairos}"),
    ("kairos-ubuntu", "22.04-core-{arch}-generic-{kairos}"),
    ("kairos-ubuntu", "24.04-core-{arch}-generic-{kairos}"),
    ("kairos-opensuse", "leap-15.6-core-{arch}-generic-{kairos}"),
)
# Payloads published up front: the seed guide's k3s 1.27.2 and the newest version of the common distributions.
DEFAULT_PAYLOADS = (("k3s", "1.27.2"),)
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("EDGEFORGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def package_version(dist, version):
    """The luet package version CanvOS installs for a Kubernetes version: ``k8s/<dist>@<this>`` (CONFORMANCE 4.8).

    k3s and rke2 carry their flavour joined with a hyphen (``1.27.2-k3s1``, ``1.30.4-rke2r1``); kubeadm,
    kubeadm-fips, nodeadm and canonical the plain version.
    """
    version = version.lstrip("v")
    if dist == "k3s":
        return version + "-k3s1"
    if dist == "rke2":
        return version + "-rke2r1"
    return version


def payload_tag(dist, version):
    """The tag luet gives the package image: ``<name>-<category>-<version>`` with ``+`` as ``-`` (CONFORMANCE 4.8)."""
    return ("%s-k8s-%s" % (dist, package_version(dist, version))).replace("+", "-")


def _digest(*parts):
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else str(part).encode("utf-8"))
        sha.update(b"\0")
    return sha.hexdigest()[:16]


def _recipe_hash(directory, *extra):
    parts = [RECIPE_VERSION] + list(extra)
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            parts += [name, handle.read()]
    return _digest(*parts)


def _image_exists(client, reference):
    import docker  # pylint: disable=import-outside-toplevel

    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False


class _BuildLock:
    """Serialises stand-in builds between concurrent test sessions on one machine (flock on a state file)."""

    def __init__(self, state_dir):
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, "standins.lock")
        self._handle = None

    def __enter__(self):
        self._handle = open(self.path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _build(client, tag, *, path=None, fileobj=None, buildargs=None, progress=None, labels=None):
    """Classic-builder build through the SDK's low-level API; raises with the build's own error text."""
    kwargs = {"tag": tag, "rm": True, "forcerm": True, "decode": True, "buildargs": buildargs or {},
              "labels": labels or {}}
    if fileobj is not None:
        kwargs.update(fileobj=fileobj, custom_context=True)
    else:
        kwargs["path"] = path
    last = []
    for event in client.api.build(**kwargs):
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail", {}).get("message") or event.get("error")
            raise TestbedError("build of %s failed: %s\n%s" % (tag, detail, "".join(last[-30:])))
        text = event.get("stream")
        if text:
            last.append(text)
            if progress and text.startswith("Step "):
                progress("%s: %s" % (tag, text.strip()))
    if not _image_exists(client, tag):
        raise TestbedError("build of %s finished without an image:\n%s" % (tag, "".join(last[-30:])))


UPX_DOCKERFILE = """# edgeforge test bed: Debian's upx, to pack the etcdctl stand-in as CanvOS packs etcdctl (upx -1)
FROM %(minbase)s
RUN echo 'deb %(mirror)s %(suite)s-backports main' > /etc/apt/sources.list.d/backports.list \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends -t %(suite)s-backports upx-ucl \\
 && rm -rf /var/lib/apt/lists/*
"""


def _dockerfile_context(dockerfile):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode("utf-8")
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _scratch_context(files, labels_comment, base="scratch"):
    """An in-memory build context: `FROM <base>` + the given files ({path: (bytes, mode)}) copied to /."""
    buf = io.BytesIO()
    dockerfile = "# %s\nFROM %s\nCOPY rootfs/ /\n" % (labels_comment, base)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entries = {"Dockerfile": (dockerfile.encode("utf-8"), 0o644)}
        entries.update({"rootfs/" + path.lstrip("/"): value for path, value in files.items()})
        for name, (data, mode) in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class Builder:
    """Builds the stand-ins into the local engine (cached) and publishes them to a registry."""

    def __init__(self, client, state_dir=STATE_DIR, progress=None):
        self.client = client
        self.state_dir = state_dir
        self.progress = progress or (lambda message: None)
        self.lock = _BuildLock(state_dir)

    # -- minbase: debootstrap + docker import ---------------------------------------------------------------
    def minbase(self):
        """`debootstrap --variant=minbase bookworm` imported as an image; also tagged debian:bookworm-slim."""
        tag = "%s/minbase:%s" % (LOCAL_PREFIX, _digest(RECIPE_VERSION, "debootstrap", "minbase", DEBIAN_SUITE))
        with self.lock:
            if not _image_exists(self.client, tag):
                self._debootstrap_import(tag)
        self._tag_bookworm_slim(tag)
        return tag

    def _debootstrap_import(self, tag):
        if not shutil.which("debootstrap"):
            raise TestbedError("debootstrap is missing: run scripts/install-deps.sh")
        if os.geteuid() != 0:
            raise TestbedError("building the minbase stand-in needs root (debootstrap); run as root or sudo")
        started = time.monotonic()
        os.makedirs(self.state_dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="minbase.", dir=self.state_dir)
        rootfs = os.path.join(workdir, "rootfs")
        tarball = os.path.join(workdir, "rootfs.tar")
        try:
            self.progress("debootstrap --variant=minbase %s from %s" % (DEBIAN_SUITE, DEBIAN_MIRROR))
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", DEBIAN_SUITE, rootfs, DEBIAN_MIRROR],
                capture_output=True, text=True, check=False)
            if result.returncode != 0:
                output = (result.stdout + result.stderr)[-3000:]
                raise TestbedError("debootstrap failed (rc %d):\n%s" % (result.returncode, output))
            subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-cf", tarball, "."], check=True)
            self.progress("docker import %s (%d MB)" % (tag, os.path.getsize(tarball) // 2 ** 20))
            repository, _sep, version = tag.rpartition(":")
            # A path (not a stream): the SDK then sends the file with a length, which dockerd 20.10 needs.
            self.client.api.import_image(
                src=tarball, repository=repository, tag=version,
                changes=['LABEL %s="%s"' % (LABEL, version), 'CMD ["/bin/bash"]'])
            if not _image_exists(self.client, tag):
                raise TestbedError("docker import did not create %s" % tag)
            self.progress("minbase ready in %.0f s" % (time.monotonic() - started))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _tag_bookworm_slim(self, minbase_tag):
        """Make `FROM debian:bookworm-slim` build offline; a real debian:bookworm-slim already there is kept."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            current = self.client.images.get("debian:bookworm-slim")
            if not (current.labels or {}).get(LABEL):
                return
        except docker.errors.ImageNotFound:
            pass
        self.client.images.get(minbase_tag).tag("debian", "bookworm-slim")

    # -- base: kernel + systemd + live initrd --------------------------------------------------------------------
    def base(self):
        minbase = self.minbase()
        recipe = os.path.join(HERE, "base")
        version = _recipe_hash(recipe, minbase)
        tag = "%s/base:%s" % (LOCAL_PREFIX, version)
        with self.lock:
            if not _image_exists(self.client, tag):
                started = time.monotonic()
                self.progress("building %s (kernel, systemd, dracut live initrd; about 2 minutes)" % tag)
                _build(self.client, tag, path=recipe, buildargs={"MINBASE": minbase}, progress=self.progress,
                       labels={LABEL: version})
                self.progress("base ready in %.0f s" % (time.monotonic() - started))
        return tag

    # -- scratch images ----------------------------------------------------------------------------------------
    def _scratch(self, name, files, comment, base="scratch"):
        version = _digest(RECIPE_VERSION, comment, base, *[p + repr(v) for p, v in sorted(files.items())])
        tag = "%s/%s:%s" % (LOCAL_PREFIX, name, version)
        if not _image_exists(self.client, tag):
            _build(self.client, tag, fileobj=_scratch_context(files, comment, base), labels={LABEL: version})
        return tag

    def opensuse(self, base_tag):
        """The base stand-in with a recording zypper: where the openSUSE steps can run (labelled stand-in)."""
        return self._scratch("base-opensuse", recipes.zypper_recorder(), "base + recording zypper", base=base_tag)

    def provider_source(self, dist, version):
        return self._scratch("provider-%s" % dist, recipes.provider(dist, version), "provider-%s %s" % (dist, version))

    def package_recorder(self, base_tag):
        """The base stand-in with recording apt-get/apt-mark/dpkg-query/zypper/yum/dracut (labelled stand-in)."""
        return self._scratch("base-package-recorder", recipes.package_recorders(),
                             "base + recording package managers", base=base_tag)

    def third_party(self):
        return self._scratch("third-party", recipes.third_party(), "spectro-third-party 4.8")

    # -- CanvOS's Alpine helper, where the build packs etcdctl with upx -1 (4.9) -------------------------------
    def alpine_helper(self):
        """Offline stand-in of ``edge/canvos/alpine:3.20``: Debian's upx image (upx on PATH, /bin/sh), labelled."""
        return self._scratch("canvos-alpine", recipes.alpine_helper(),
                             "offline stand-in of CanvOS's Alpine helper edge/canvos/alpine:3.20", base=self.upx_tool())

    def upx_tool(self):
        """Debian's upx (bookworm-backports, from the Debian mirror): the base of the Alpine helper's stand-in."""
        minbase = self.minbase()
        dockerfile = UPX_DOCKERFILE % {"minbase": minbase, "mirror": DEBIAN_MIRROR, "suite": DEBIAN_SUITE}
        version = _digest(RECIPE_VERSION, dockerfile)
        tag = "%s/upx:%s" % (LOCAL_PREFIX, version)
        with self.lock:
            if not _image_exists(self.client, tag):
                self.progress("building %s (upx-ucl from %s-backports)" % (tag, DEBIAN_SUITE))
                _build(self.client, tag, fileobj=_dockerfile_context(dockerfile), progress=self.progress,
                       labels={LABEL: version})
        return tag

    def stylus_framework(self, pe_version):
        return self._scratch("stylus-framework", recipes.stylus_framework(pe_version),
                             "stylus-framework %s" % pe_version)

    def payload(self, dist, version):
        pkg = package_version(dist, version)
        return self._scratch("payload-%s" % dist, recipes.payload(dist, version, pkg),
                             "k8s payload %s %s" % (dist, pkg))

    # -- publishing ----------------------------------------------------------------------------------------------
    def publish(self, local_tag, reference, auth_config=None):
        repository, _sep, tag = reference.rpartition(":")
        self.client.images.get(local_tag).tag(repository, tag)
        return push_image(self.client, reference, auth_config=auth_config)


class _RegistrySeed:
    """The base stand-in's blobs as a registry stored them, kept between sessions.

    Pushing the ~750 MB base makes dockerd compress every layer again (minutes on two busy cores). A registry
    that already holds the blobs answers dockerd's "blob exists?" question with yes, so the push only sends the
    manifests: exactly what happens when a user re-pushes to a mirror that has the layers. The seed is a copy of
    the registry's own files (blobs + the base repositories' links) taken right after the first real push, keyed
    by the local base image id; a new base image makes a new seed and the old ones are removed.
    """

    def __init__(self, builder, registry, base_tag):
        self.registry = registry
        self.progress = builder.progress
        self.lock = builder.lock
        image_id = builder.client.images.get(base_tag).id.split(":")[-1][:16]
        self.root = os.path.join(builder.state_dir, "registry-seed")
        self.path = os.path.join(self.root, image_id)
        self.v2 = os.path.join("docker", "registry", "v2")

    def restore(self):
        storage = getattr(self.registry, "storage", None)
        if not storage or not os.path.isdir(os.path.join(self.path, self.v2)):
            return False
        subprocess.run(["cp", "-a", os.path.join(self.path, "docker"), storage + "/"], check=True)
        self.progress("registry %s seeded with the base stand-in's layers from %s" % (self.registry.host, self.path))
        return True

    def save(self):
        storage = getattr(self.registry, "storage", None)
        source = os.path.join(storage or "", self.v2)
        if not os.path.isdir(source):
            return
        with self.lock:
            if not os.path.isdir(self.path):
                self._save(source)

    def _save(self, source):
        os.makedirs(self.root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".seed.", dir=self.root)
        try:
            target = os.path.join(tmp, self.v2)
            os.makedirs(os.path.join(target, "repositories", "palette-images"))
            subprocess.run(["cp", "-a", os.path.join(source, "blobs"), target + "/"], check=True)
            edge = os.path.join(source, "repositories", "palette-images", "edge")
            os.makedirs(os.path.join(target, "repositories", "palette-images", "edge"))
            for repo in sorted({repo for repo, _tag in BASE_TAGS}):
                subprocess.run(["cp", "-a", os.path.join(edge, repo),
                                os.path.join(target, "repositories", "palette-images", "edge") + "/"], check=True)
            for old in os.listdir(self.root):
                if not old.startswith("."):
                    shutil.rmtree(os.path.join(self.root, old), ignore_errors=True)
            os.rename(tmp, self.path)
        except (OSError, subprocess.CalledProcessError):
            shutil.rmtree(tmp, ignore_errors=True)
            raise


class StandIns:
    """What the `standin_images` fixture returns.

    - ``config_overrides``: build_config options that point every upstream image at the mirror (plus
      ``image_registry`` = the anonymous registry, where tests push their provider images).
    - ``pub_repo`` / ``luet_repo``: the mirror's spectro_pub_repo / spectro_luet_repo.
    - ``base_image_tag``: the local engine tag of the base stand-in; ``minbase_tag`` the debootstrap rootfs.
    - ``base_images``: {(os_distribution, os_version): reference in the registry}; ``base_image``: ubuntu 22.04.
    - ``provider_sources``: {dist: reference}; ``stylus_frameworks``: {pe_version: reference};
      ``payloads``: {(dist, k8s_version): reference}; ``third_party``: the etcdctl image's reference;
      ``alpine_helper``: the reference of CanvOS's Alpine helper (its stand-in: upx and /bin/sh).
    - ``ensure_payload(dist, version)``, ``ensure_stylus(pe_version)``, ``ensure_provider(dist, version)``: build
      and publish one more image on demand (a second or so) and return its reference.
    """

    def __init__(self, builder, registry):
        self.builder = builder
        self.registry = registry
        self.pub_repo = "%s/palette-images" % registry.host
        self.luet_repo = "%s/edge" % self.pub_repo
        self.pe_version = PE_VERSION
        self.kairos_version = KAIROS_VERSION
        self.arch = ARCH
        self.minbase_tag = None
        self.base_image_tag = None
        self.base_images = {}
        self.base_image = None
        self.provider_sources = {}
        self.stylus_frameworks = {}
        self.payloads = {}
        self.third_party = None
        self.alpine_helper = None
        self.digests = {}
        self.config_overrides = {
            "spectro_pub_repo": self.pub_repo,
            "spectro_luet_repo": self.luet_repo,
            "pe_version": PE_VERSION,
            "kairos_version": KAIROS_VERSION,
            "arch": ARCH,
            "image_registry": registry.host,
        }

    def _publish(self, local_tag, reference):
        self.digests[reference] = self.builder.publish(local_tag, reference, auth_config=self.registry.auth_config)
        return reference

    def publish_all(self):
        started = time.monotonic()
        self.minbase_tag = self.builder.minbase()
        self.base_image_tag = self.builder.base()
        seed = _RegistrySeed(self.builder, self.registry, self.base_image_tag)
        seeded = seed.restore()
        for repo, tag in BASE_TAGS:
            ref = "%s/edge/%s:%s" % (self.pub_repo, repo, tag.format(arch=ARCH, kairos=KAIROS_VERSION))
            os_dist = "ubuntu" if repo == "kairos-ubuntu" else "opensuse-leap"
            self._publish(self.base_image_tag if os_dist == "ubuntu" else self.builder.opensuse(self.base_image_tag),
                          ref)
            os_version = tag.split("-core-", maxsplit=1)[0].replace("leap-", "")
            self.base_images[(os_dist, os_version)] = ref
        if not seeded:
            seed.save()
        self.base_image = self.base_images[("ubuntu", "22.04")]
        for dist, version in PROVIDER_VERSIONS.items():
            self.ensure_provider(dist, version)
        for pe_version in PE_VERSIONS:
            self.ensure_stylus(pe_version)
        for dist, version in DEFAULT_PAYLOADS:
            self.ensure_payload(dist, version)
        self.third_party = self._publish(self.builder.third_party(), self.third_party_ref())
        self.alpine_helper = self._publish(self.builder.alpine_helper(), self.alpine_helper_ref())
        self.builder.progress("stand-ins published to %s in %.0f s" % (self.pub_repo, time.monotonic() - started))
        return self

    def provider_source_ref(self, dist, version=None):
        provider = "kubeadm" if dist == "kubeadm-fips" else dist
        return "%s/edge/kairos-io/provider-%s:%s" % (self.pub_repo, provider, version or PROVIDER_VERSIONS[provider])

    def ensure_provider(self, dist, version=None):
        provider = "kubeadm" if dist == "kubeadm-fips" else dist
        version = version or PROVIDER_VERSIONS[provider]
        ref = self.provider_source_ref(provider, version)
        if ref not in self.digests:
            self._publish(self.builder.provider_source(provider, version), ref)
        self.provider_sources.setdefault(provider, ref)
        return ref

    def ensure_package_recorder(self):
        """The base stand-in with recording package managers, as a base image of the mirror (labelled stand-in).

        For the steps written for another distribution's packages (Ubuntu kernels, zypper, yum): a build with this
        base image records what it asks of them in ``recipes.PACKAGES_LOG``.
        """
        ref = "%s/edge/edgeforge-standin/package-recorder:%s" % (self.pub_repo, KAIROS_VERSION)
        if ref not in self.digests:
            self._publish(self.builder.package_recorder(self.base_image_tag), ref)
        return ref

    def third_party_ref(self):
        """Where the build looks for the third-party image on this mirror (CanvOS: palette-images, 4.9)."""
        return "%s/third-party/spectro-third-party:4.8" % self.pub_repo

    def alpine_helper_ref(self):
        """CanvOS's ALPINE_IMG on this mirror: ``$SPECTRO_PUB_REPO/edge/canvos/alpine:3.20`` (2.1, 4.9)."""
        return "%s/edge/canvos/alpine:3.20" % self.pub_repo

    def stylus_ref(self, pe_version):
        return "%s/edge/stylus-framework-linux-%s:%s" % (self.pub_repo, ARCH, pe_version)

    def ensure_stylus(self, pe_version):
        ref = self.stylus_ref(pe_version)
        if ref not in self.digests:
            self._publish(self.builder.stylus_framework(pe_version), ref)
        self.stylus_frameworks[pe_version] = ref
        return ref

    def payload_ref(self, dist, version):
        return "%s/luet-repo-%s:%s" % (self.luet_repo, ARCHSHORT[ARCH], payload_tag(dist, version))

    def ensure_payload(self, dist, version):
        version = version.lstrip("v")
        ref = self.payload_ref(dist, version)
        if ref not in self.digests:
            self._publish(self.builder.payload(dist, version), ref)
        self.payloads[(dist, version)] = ref
        return ref

    def as_vars(self):
        """The stand-ins as plain data (for `python -m tests.testbed up` and debugging)."""
        return {
            "config_overrides": dict(self.config_overrides),
            "base_image_tag": self.base_image_tag,
            "minbase_tag": self.minbase_tag,
            "base_images": {"%s-%s" % key: ref for key, ref in self.base_images.items()},
            "provider_sources": dict(self.provider_sources),
            "stylus_frameworks": dict(self.stylus_frameworks),
            "payloads": {"%s-%s" % key: ref for key, ref in self.payloads.items()},
            "third_party": self.third_party,
            "alpine_helper": self.alpine_helper,
        }
