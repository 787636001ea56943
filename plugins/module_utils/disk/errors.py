# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of the disk builds (installer ISO, raw disk image)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import EdgeforgeError


class DiskBuildError(EdgeforgeError):
    """Building an ISO or raw image failed; the message names the step and the last lines of its output."""


class MissingImageError(DiskBuildError):
    """The installer image is not in the Docker engine."""
