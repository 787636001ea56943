# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plain-Python parts of the Docker engine client (``docker_engine.DockerEngine``), by what they do:

- ``references``: image references and registry names;
- ``streams``: reading the engine's build and push event streams;
- ``errors``: the engine's errors and which failures are worth retrying;
- ``config_file``: registry credentials in a Docker client configuration file.

No Docker SDK import here: these parts are unit-tested without an engine.
"""
