# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider images and the installer image, as CanvOS v4.10.0's ``+base-image``, ``+provider-image`` and
``+iso-image`` build them, as plain Dockerfiles for the Docker engine's classic builder.

- ``context``: a generated build context (Dockerfile + files + inputs digest) and the helpers on user inputs.
- ``overlay``: the stock overlay files (our own text with the function of CanvOS's ``overlay/files``).
- ``steps``: the shell steps run inside the builds (packages, kernel, release metadata, cleanup, boot arguments).
- ``images``: the Dockerfiles of the base stage, the provider images and the installer image.
- ``builder``: builds them with an engine (base stage once, then the images concurrently).

Plain Python (no Ansible import): unit-tested without an engine.
"""
