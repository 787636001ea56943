# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build configuration, as the other modules use it: ``BuildConfig``, ``with_real_proxies`` and the ``.arg`` files.

The code lives in the ``config`` package beside this file:

- ``config/schema.py``: every build option declared once (type, default, choices, CanvOS key, description, secret);
- ``config/rules.py``: the value rules; ``config/proxies.py``: proxy URLs and their masked passwords;
- ``config/normalise.py``: options to the normalised configuration, step by step;
- ``config/derive.py``: tags, the default base image and the upstream image sources;
- ``config/plan.py``: ``BuildConfig`` and its build plan; ``config/arg_options.py``: CanvOS ``.arg`` files;
- ``config/k8s_version.json`` and its generated Python form ``config/k8s_version_table.py``: the versions table.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Re-exported names: this module is the stable import point for the rest of the collection.
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.arg_options import (  # noqa: F401
    read_arg_file,
    write_arg_file,
)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.plan import BuildConfig  # noqa: F401
from ansible_collections.edgeforge.artifacts.plugins.module_utils.config.proxies import (  # noqa: F401
    mask_url,
    with_real_proxies,
)

__all__ = ["BuildConfig", "mask_url", "read_arg_file", "with_real_proxies", "write_arg_file"]
