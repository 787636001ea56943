# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one build skeleton of both disk artifacts: plan, stage, assemble, checksum, stamp.

1. Plan: the inputs digest (installer image id, options, user data, bundles, builder recipe). If the output, its
   ``.sha256`` and the stamp beside it all agree with that digest, nothing is rebuilt (changed=false).
2. Stage: export the installer image's root filesystem through the Docker engine, find its kernel and initrd, and let
   the artifact (disk.iso.IsoArtifact, disk.raw.RawArtifact) write its trees in a work directory beside the output.
3. Assemble: the artifact's generated scripts run in the disk builder image (or on the host) and write the output
   under a temporary name.
4. Checksum the temporary file, rename it over the final name, then write the ``.sha256`` file and the stamp, and
   check them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile
import time

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import (
    SHA256_HEX_RE, ValidationError, sha256_file)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.builder_image import (
    DEFAULT_BUILDER_BASE, ensure_builder_image)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import DiskBuildError, MissingImageError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.iso import IsoArtifact
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.raw import RawArtifact
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.rootfs import (
    export_rootfs, extract_local_ui, find_boot_files)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.runner import ScriptRunner
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import (
    read_sha256_file, up_to_date, write_stamps)

BUILDERS = ("container", "host", "auroraboot")
ARTIFACTS = {"iso": IsoArtifact, "raw": RawArtifact}


class BuildContext:  # pylint: disable=too-many-instance-attributes
    """What an artifact's stage and assemble steps work with: the work directory (host paths), the same places as
    the scripts see them (``paths``), the root filesystem and its boot files, the runner and its mounts."""

    def __init__(self, work, tmp_output, runner, log_path, progress):
        self.work = work
        self.tmp_output = tmp_output
        self.runner = runner
        self.log_path = log_path
        self.progress = progress
        self.paths, self.mounts = {}, {}
        self.rootfs = self.tree = None
        self.kernel_rel = self.kernel = self.initrd_rel = self.initrd = None
        # the output's checksum when the script hashed it as it wrote it (else it is read back)
        self.written_sha256 = None

    @staticmethod
    def write(path, text):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    @staticmethod
    def copy(source, target):
        """Copy an input file into a tree of the work directory; it may hold secrets (the user data): 0600."""
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)

    def run(self, script_path):
        """Run a script written in the work directory (``script_path`` as the script runner sees it)."""
        self.runner.run(script_path, self.mounts, self.log_path)

    def drop_rootfs(self):
        """Free the exported tree as soon as it is squashed (it is as large as the image)."""
        if self.rootfs == os.path.join(self.work, "rootfs"):
            shutil.rmtree(self.rootfs, ignore_errors=True)


class DiskBuilder:
    """Builds ISO and raw images. ``engine``: a docker_engine.DockerEngine (needed for the export and the builder)."""

    def __init__(self, engine, builder="container", builder_base_image=DEFAULT_BUILDER_BASE, proxies=None,
                 progress=None, keep_work=False):
        if builder not in BUILDERS:
            raise ValidationError("builder", builder, "one of %s" % ", ".join(BUILDERS))
        if builder == "auroraboot":
            raise ValidationError("builder", builder, "auroraboot runs the upstream AuroraBoot image and is only "
                                  "available through the role's documented command (it cannot be tested offline); "
                                  "use container (default) or host")
        self.engine = engine
        self.builder = builder
        self.builder_base_image = builder_base_image or DEFAULT_BUILDER_BASE
        self.proxies = proxies or {}
        self.progress = progress or (lambda message: None)
        self.keep_work = keep_work

    def image_id(self, reference):
        found = self.engine.image(reference)
        if not found:
            raise MissingImageError("the installer image %s is not in the Docker engine; build it first "
                                    "(edgeforge.artifacts.provider_image builds palette-installer-image:<tag>)"
                                    % reference)
        return found["Id"]

    def plan(self, request):
        """(inputs digest, up to date?) of ``request``."""
        digest = request.digest(self.image_id(request.installer_image), self.builder)
        return digest, up_to_date(request.output, digest)

    def build(self, request, check_mode=False, force=False, rootfs=None):
        """Build ``request`` (a disk.request.DiskRequest). ``rootfs``: an already exported tree of the installer
        image to use as it is (kept)."""
        artifact = ARTIFACTS[request.kind](request)
        digest, current = self.plan(request)
        result = dict(artifact.result(), inputs_digest=digest)
        if current and not force:
            result.update(changed=self._fix_mode(request, check_mode),
                          sha256=read_sha256_file(request.output + ".sha256"), size=os.path.getsize(request.output),
                          **artifact.extras(request.output))
            return result
        result["changed"] = True
        if check_mode:
            return result
        os.makedirs(request.build_dir, exist_ok=True)
        log_path = os.path.join(request.build_dir, "logs", "%s%s.build.log" % (
            request.name, os.path.splitext(request.output)[1]))
        # beside the output (same filesystem: the exported root filesystem is large), hidden, removed afterwards
        work = tempfile.mkdtemp(prefix=".edgeforge-work-%s-" % request.name, dir=request.build_dir)
        tmp_output = os.path.join(request.build_dir, ".%s.%s.partial" % (
            os.path.basename(request.output), os.path.basename(work).rsplit("-", 1)[-1]))
        started = time.time()
        ctx = BuildContext(work, tmp_output, None, log_path, self.progress)
        try:
            ctx.runner = self._runner(log_path)
            self._stage(request, artifact, ctx, rootfs)
            try:
                built = artifact.assemble(ctx)
                checksum = self._finish(tmp_output, request.output, request.artifact_mode, ctx.written_sha256)
            finally:
                if os.path.exists(tmp_output):
                    os.unlink(tmp_output)
            write_stamps(request.output, checksum, digest)
            # the checksum comes from the one pass over the file's bytes; reading it again (GBs) would only repeat it
            if read_sha256_file(request.output + ".sha256") != checksum:
                raise DiskBuildError("%s.sha256 does not hold the checksum just written" % request.output)
        finally:
            if not self.keep_work:
                shutil.rmtree(work, ignore_errors=True)
            if ctx.runner:
                ctx.runner.join()
        result.update(sha256=checksum, size=os.path.getsize(request.output), seconds=round(time.time() - started, 1),
                      kernel=ctx.kernel_rel, initrd=ctx.initrd_rel, log_path=log_path,
                      **dict(artifact.extras(request.output), **built))
        self.progress("%s: sha256 %s" % (request.output, checksum))
        return result

    def _runner(self, log_path):
        if self.builder == "host":
            return ScriptRunner("host", progress=self.progress)
        image, _built = ensure_builder_image(self.engine, self.builder_base_image, self.proxies, log_path,
                                             self.progress)
        return ScriptRunner("container", engine=self.engine, image=image, progress=self.progress)

    def _stage(self, request, artifact, ctx, rootfs):
        extra_dirs = list(artifact.mount_dirs())
        if rootfs:
            ctx.rootfs = os.path.abspath(rootfs)
            extra_dirs.append(ctx.rootfs)
        else:
            ctx.rootfs = os.path.join(ctx.work, "rootfs")
            self.progress("exporting the filesystem of %s" % request.installer_image)
            export_rootfs(self.engine, request.installer_image, ctx.rootfs, self.progress)
        if request.local_ui:
            if rootfs:
                raise DiskBuildError("local_ui is extracted into the exported root filesystem; a given tree is "
                                     "used as it is")
            self.progress("extracting %s into /opt/spectrocloud" % os.path.basename(request.local_ui))
            extract_local_ui(request.local_ui, ctx.rootfs)
        (ctx.kernel_rel, ctx.kernel), (ctx.initrd_rel, ctx.initrd) = find_boot_files(
            ctx.rootfs, request.kernel_path, request.initrd_path)
        ctx.paths, ctx.mounts = self._paths(ctx.work, ctx.tmp_output, extra_dirs)
        ctx.tree = ctx.paths["content"][ctx.rootfs] if rootfs else ctx.paths["work"] + "/rootfs"
        artifact.stage(ctx)

    def _paths(self, work, output_tmp, extra_dirs):
        """Script paths and bind mounts. Container: /work, /out, /content/N; host: the real paths."""
        if self.builder == "host":
            return {"work": work, "out": os.path.dirname(output_tmp), "output": output_tmp,
                    "content": {d: d for d in extra_dirs}}, {}
        mounts = {work: ("/work", "rw"), os.path.dirname(output_tmp): ("/out", "rw")}
        content = {}
        for index, directory in enumerate(extra_dirs):
            content[directory] = "/content/%d" % index
            mounts[directory] = (content[directory], "ro")
        return {"work": "/work", "out": "/out", "output": "/out/" + os.path.basename(output_tmp),
                "content": content}, mounts

    @staticmethod
    def _finish(tmp_output, output, mode, written_sha256=None):
        """Checksum the file (``written_sha256`` when the script hashed it as it wrote it, else read back once), give
        it its mode and put it under its final name."""
        if not os.path.isfile(tmp_output) or os.path.getsize(tmp_output) == 0:
            raise DiskBuildError("the build of %s produced no file" % os.path.basename(output))
        if written_sha256 is not None and not SHA256_HEX_RE.match(written_sha256):
            raise DiskBuildError("the build of %s wrote no SHA-256 checksum (%r)"
                                 % (os.path.basename(output), written_sha256))
        checksum = written_sha256 or sha256_file(tmp_output)
        os.chmod(tmp_output, mode)
        os.replace(tmp_output, output)
        return checksum

    @staticmethod
    def _fix_mode(request, check_mode):
        """An up-to-date artifact with another mode than asked gets the asked one (changed)."""
        if os.stat(request.output).st_mode & 0o7777 == request.artifact_mode:
            return False
        if not check_mode:
            os.chmod(request.output, request.artifact_mode)
        return True
