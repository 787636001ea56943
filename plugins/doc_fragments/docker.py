# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Docker engine connection options shared by every module that talks to dockerd."""

    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine API address, for example V(unix:///var/run/docker.sock) or V(tcp://build01:2376).
      - When not set, the E(DOCKER_HOST) environment variable, else V(unix:///var/run/docker.sock).
    type: str
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for one engine API response (a long build keeps streaming, so this is not a build limit).
    type: int
    default: 300
  tls:
    description:
      - Connect with TLS without verifying the engine's certificate. Use O(validate_certs) to verify it.
    type: bool
    default: false
  validate_certs:
    description:
      - Connect with TLS and verify the engine's certificate (with O(ca_path) when given).
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate file used to verify the engine's TLS certificate.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate file for TLS client authentication to the engine.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Client key file for TLS client authentication to the engine.
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - Engine API version to use; V(auto) negotiates the newest both sides support.
    type: str
    default: auto
  retries:
    description:
      - How many times a transient failure (connection reset or refused, HTTP 5xx, HTTP 429) is retried, with
        exponential backoff and full jitter, before the task fails naming the registry, the image and the reason.
    type: int
    default: 3
  retry_delay:
    description:
      - The longest wait before the first retry, in seconds; the limit doubles at each further retry (capped at 30
        seconds). Each wait is a random time up to the limit (full jitter), so build hosts that failed together do
        not retry together.
    type: float
    default: 1.0
requirements:
  - docker (the Docker SDK for Python) >= 7.1
notes:
  - The modules talk to the Docker engine of the host they run on (or O(docker_host)); they use the classic builder.
"""
