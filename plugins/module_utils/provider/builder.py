# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builds the base stage once, then the provider images (concurrently) and the installer image.

The engine is injected: ``DockerEngine`` or anything with the same methods.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.context import (
    LABEL_DIGEST, context_dir_name, proxy_build_args, read_cert_files)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.images import (
    base_stage_context, base_stage_tag, etcdctl_stage_context, etcdctl_stage_tag, installer_context,
    provider_context, third_party_image, upx_helper_image)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.provider.steps import refuse_unsupported


def _image_summary(found):
    return {"id": found.get("Id"), "size": found.get("Size")}


class ProviderImageBuilder:
    """Builds the base stage once, then the provider images (concurrently) and the installer image.

    ``engine_factory()`` returns a Docker engine client; one is made per worker thread.
    """

    def __init__(self, engine_factory, plan, build_dir, user_dockerfile="", overlay_dir=None, parallel=2,
                 force=False, installer=False, pull=False, check_mode=False, progress=None, auth_configs=None):
        self.engine_factory = engine_factory
        self.engine = engine_factory()
        self.plan = plan
        self.config = dict(plan["config"])
        self.config.setdefault("base_image", plan.get("base_image"))
        for key, value in (plan.get("sources") or {}).items():
            self.config.setdefault(key, value)
        self.build_dir = os.path.abspath(build_dir)
        self.user_dockerfile = user_dockerfile or ""
        self.overlay_dir = overlay_dir
        self.parallel = max(1, int(parallel))
        self.force = bool(force)
        self.installer = bool(installer)
        self.pull = bool(pull)
        self.check_mode = bool(check_mode)
        self.progress = progress or (lambda message: None)
        self.auth_configs = auth_configs
        self.log_dir = os.path.join(self.build_dir, "logs")
        refuse_unsupported(self.config)

    # -- sources
    def _source_ids(self):
        refs = [("base_image", self.config["base_image"]),
                ("provider_source_image", self.config["provider_source_image"]),
                ("stylus_framework_image", self.config["stylus_framework_image"])]
        if self.plan["builds"]:
            refs += [("third_party_image", third_party_image(self.config)),
                     ("upx_helper_image", upx_helper_image(self.config))]
        refs += [(build["k8s_payload_image"], build["k8s_payload_image"]) for build in self.plan["builds"]]
        ids = {}
        missing = []
        for key, ref in refs:
            if self.check_mode:
                found = self.engine.image(ref)
                if not found:
                    missing.append(ref)
                ids[key] = found["Id"] if found else "missing:" + ref
            else:
                found = self.engine.ensure_image(ref, pull=self.pull, auth_config=None, progress=self.progress)
                ids[key] = found["Id"]
        return ids, missing

    def contexts(self, source_ids):
        cert_files = read_cert_files(self.config.get("proxy_cert_paths") or [])
        base = base_stage_context(self.config, source_ids["base_image"], self.user_dockerfile, cert_files)
        providers = [provider_context(self.config, build, base, source_ids, self.overlay_dir,
                                      self.config.get("edge_custom_config") or None)
                     for build in self.plan["builds"]]
        installer = None
        if self.installer:
            installer = installer_context(self.config, self.plan["installer_image"], base, source_ids,
                                          self.overlay_dir)
        return base, providers, installer

    def _up_to_date(self, reference, context):
        found = self.engine.image(reference)
        if not found:
            return None
        labels = (found.get("Config") or {}).get("Labels") or {}
        return found if labels.get(LABEL_DIGEST) == context.digest else None

    # -- building
    def _build(self, engine, context, reference, kind_label):
        import time  # local: keeps module import light
        import uuid
        directory = context.write(os.path.join(self.build_dir, "contexts", context_dir_name(context)))
        log_path = os.path.join(self.log_dir, "%s.log" % context_dir_name(context))
        temp_tag = "edgeforge-build-tmp:%s-%s" % (context.short_digest[:12], uuid.uuid4().hex[:8])
        started = time.monotonic()
        self.progress("building %s %s (log: %s)" % (kind_label, reference, log_path))
        try:
            image_id = engine.build(directory, temp_tag, buildargs=proxy_build_args(self.config),
                                    labels=context.build_labels, log_path=log_path, progress=self.progress,
                                    label=reference.rsplit("/", 1)[-1], auth_configs=self.auth_configs)
            engine.tag(image_id, reference)
        finally:
            engine.untag(temp_tag)
        found = engine.image(reference) or {}
        seconds = round(time.monotonic() - started, 1)
        self.progress("built %s %s in %.1fs" % (kind_label, reference, seconds))
        return {"reference": reference, "id": found.get("Id", image_id), "size": found.get("Size"),
                "status": "built", "seconds": seconds, "inputs_digest": context.digest, "log": log_path}

    def run(self):
        source_ids, missing = self._source_ids()
        base, providers, installer = self.contexts(source_ids)
        targets = [(ctx, build["image"], build["k8s_version"]) for ctx, build in zip(providers, self.plan["builds"])]
        if installer is not None:
            targets.append((installer, self.plan["installer_image"], None))
        results = {}
        todo = []
        for ctx, reference, version in targets:
            found = None if self.force else self._up_to_date(reference, ctx)
            if found:
                item = {"reference": reference, "status": "reused", "seconds": 0.0, "inputs_digest": ctx.digest}
                item.update(_image_summary(found))
                results[reference] = item
            else:
                todo.append((ctx, reference))
                results[reference] = {"reference": reference, "status": "would_build" if self.check_mode else None,
                                      "id": None, "size": None, "seconds": 0.0, "inputs_digest": ctx.digest}
            if version:
                results[reference]["k8s_version"] = version
            results[reference]["kind"] = ctx.kind
        base_tag = base_stage_tag(base)
        base_result = {"reference": base_tag, "inputs_digest": base.digest, "status": "not_needed"}
        if todo and not self.check_mode:
            base_found = None if self.force else self._up_to_date(base_tag, base)
            if base_found:
                base_result.update(status="reused", **_image_summary(base_found))
            else:
                base_result = self._build(self.engine, base, base_tag, "base stage")
            if any(ctx.kind == "provider" for ctx, _ref in todo):
                self._etcdctl_stage(source_ids)
            self._build_all(todo, results)
        elif todo:
            base_result["status"] = "would_build" if not self._up_to_date(base_tag, base) else "reused"
        images = [results[ref] for _ctx, ref, version in targets if version is not None]
        out = {
            "images": images,
            "base_stage": base_result,
            "changed": bool(todo),
            "missing_sources": missing,
            "log_dir": self.log_dir,
        }
        if installer is not None:
            out["installer_image"] = results[self.plan["installer_image"]]
        return out

    def _etcdctl_stage(self, source_ids):
        """Packs etcdctl once for every provider image of the run (4.9), or reuses the packed one."""
        stage = etcdctl_stage_context(self.config, source_ids)
        tag = etcdctl_stage_tag(stage)
        if self.force or not self._up_to_date(tag, stage):
            self._build(self.engine, stage, tag, "etcdctl stage")

    def _build_all(self, todo, results):
        from concurrent.futures import ThreadPoolExecutor, wait, FIRST_EXCEPTION
        import threading
        local = threading.local()

        def engine():
            if not hasattr(local, "engine"):
                local.engine = self.engine_factory()
            return local.engine

        def job(ctx, reference):
            return self._build(engine(), ctx, reference, ctx.kind + " image")

        errors = []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(todo))) as pool:
            futures = {pool.submit(job, ctx, ref): ref for ctx, ref in todo}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending and any(f.exception() for f in done):
                for future in pending:
                    future.cancel()
                done, _pending = wait(futures)
            for future, ref in futures.items():
                if future.cancelled():
                    results[ref]["status"] = "cancelled"
                    continue
                exc = future.exception()
                if exc is not None:
                    errors.append(exc)
                    results[ref]["status"] = "failed"
                else:
                    results[ref].update(future.result())
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise EdgeforgeError("%d image builds failed:\n%s" % (len(errors), "\n\n".join(str(e) for e in errors)))
