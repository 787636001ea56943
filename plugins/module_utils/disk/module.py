# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the installer_iso and raw_disk_image modules share: their common options and the run around one build.

Plain Python: ``module`` is anything with ``params``, ``check_mode`` and ``log`` (an AnsibleModule in practice).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.edgeforge.artifacts.plugins.module_utils.build_config import with_real_proxies
from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import ProgressLog, ValidationError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.build import DiskBuilder
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.errors import MissingImageError
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DEFAULT_ISO_NAME, DiskRequest
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.stamps import read_sha256_file
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import (
    DOCKER_ARGUMENT_SPEC, engine_factory)

# The options documented by the edgeforge.artifacts.disk_image doc fragment.
DISK_ARGUMENT_SPEC = dict(
    config=dict(type="dict", default={}),
    installer_image=dict(type="str", required=True),
    build_dir=dict(type="path", default="build"),
    user_data=dict(type="path"),
    content_dir=dict(type="list", elements="path", default=[]),
    clusterconfig=dict(type="path"),
    edge_custom_config=dict(type="path"),
    local_ui=dict(type="path"),
    debug=dict(type="bool"),
    grub_timeout=dict(type="int", default=5),
    extra_cmdline=dict(type="str", default=""),
    kernel_path=dict(type="str"),
    initrd_path=dict(type="str"),
    squashfs_compression_level=dict(type="int", default=3),
    artifact_mode=dict(type="str", default="0600"),
    builder=dict(type="str", default="container", choices=["container", "host", "auroraboot"]),
    builder_base_image=dict(type="str", default="debian:bookworm-slim"),
    force=dict(type="bool", default=False),
    http_proxy=dict(type="str", no_log=True),
    https_proxy=dict(type="str", no_log=True),
)
DISK_ARGUMENT_SPEC.update(DOCKER_ARGUMENT_SPEC)


def pick(params, config, key):
    """The module option when given, else the configuration's value."""
    if params.get(key) is not None:
        return params[key]
    return config.get(key)


def common_request_options(params, config):
    """The keyword arguments every DiskRequest takes, from the options and the build configuration."""
    level = params["squashfs_compression_level"]
    if level < 1 or level > 22:
        raise ValidationError("squashfs_compression_level", level, "a zstd level from 1 to 22")
    return dict(
        user_data=params["user_data"], content_dirs=params["content_dir"],
        clusterconfig=pick(params, config, "clusterconfig"),
        edge_custom_config=pick(params, config, "edge_custom_config"), local_ui=params["local_ui"],
        debug=bool(pick(params, config, "debug")), grub_timeout=params["grub_timeout"],
        extra_cmdline=params["extra_cmdline"], kernel_path=params["kernel_path"],
        initrd_path=params["initrd_path"], squashfs_level=level, artifact_mode=params["artifact_mode"])


def artifact_name(params, name_option):
    """The artifact's name: the module's own option, else the configuration's ``iso_name``, else the default."""
    return params[name_option] or (params["config"] or {}).get("iso_name") or DEFAULT_ISO_NAME


def request_from_params(kind, params, name_option, **kind_options):
    """The DiskRequest of a module run (validates every input)."""
    options = dict(common_request_options(params, params["config"] or {}), **kind_options)
    return DiskRequest(kind, params["installer_image"], os.path.abspath(params["build_dir"]),
                       name=artifact_name(params, name_option), **options)


def build_proxies(params, config):
    """Proxies for the builder image's package downloads: the real URLs (the plan masks proxy passwords)."""
    config = with_real_proxies(config, params)
    return {key: config.get(key) for key in ("http_proxy", "https_proxy", "no_proxy") if config.get(key)}


def run_disk_build(module, request, progress_path):
    """Build ``request`` with DiskBuilder.build; return the module result.

    Raises EdgeforgeError on bad input or a failed build. The result has a diff (old and new checksum) when the
    image was (or, in check mode, would be) built.
    """
    params = module.params
    proxies = build_proxies(params, params["config"] or {})
    old_sha = read_sha256_file(request.output + ".sha256") if os.path.isfile(request.output) else None
    with ProgressLog(None if module.check_mode else progress_path, callback=module.log) as progress:
        builder = DiskBuilder(engine_factory(params)(), builder=params["builder"],
                              builder_base_image=params["builder_base_image"], proxies=proxies, progress=progress)
        result = builder.build(request, check_mode=module.check_mode, force=params["force"])
    result["progress_log"] = progress_path
    if result["changed"]:
        result["diff"] = {"before": {"path": request.output, "sha256": old_sha},
                          "after": {"path": request.output, "sha256": result.get("sha256", "(to be built)")}}
    return result


def made_by_an_earlier_step(err):
    """True when ``err`` is about an input an earlier step of the play makes: the user data (role user_data) or the
    installer image (role provider_images). A check-mode run writes and builds neither, so in check mode their
    absence means "the image would be built", not a mistake."""
    return (isinstance(err, ValidationError) and err.param == "user_data") or isinstance(err, MissingImageError)


def fail_or_predict(module, err, predicted):
    """Fail the task with ``err``; in check mode, when an earlier step would have made the missing input, exit with
    ``predicted`` (the paths the build would write) and changed=true instead."""
    if module.check_mode and made_by_an_earlier_step(err):
        module.warn("check mode: %s - reported as to be built" % err)
        module.exit_json(changed=True, **predicted)
    module.fail_json(msg=str(err))
