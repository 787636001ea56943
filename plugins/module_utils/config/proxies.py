# -*- coding: utf-8 -*-
# Copyright: edgeforge.artifacts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxy URLs, the only build options that may carry a secret (a password).

The one route of a real proxy URL: the build plan that roles share (``build_config_plan``) holds the proxy URLs with
their password masked; the modules that build take the real URLs as their own ``no_log`` options ``http_proxy`` /
``https_proxy`` (the roles pass the flat variables), and ``with_real_proxies`` puts them back into the configuration.

Plain Python: unit tests import this without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import urlsplit, urlunsplit

from ansible_collections.edgeforge.artifacts.plugins.module_utils.common import MASK, ValidationError, mask_secrets

ALLOWED_PROXY = "an http:// or https:// URL with a host and optional port, e.g. http://proxy.example.com:3128"
PROXY_NAMES = ("http_proxy", "https_proxy")


def mask_url(url):
    """Replace the password of ``scheme://user:password@host`` with ********."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc
    userinfo, hostport = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, "%s:%s@%s" % (user, MASK, hostport), parts.path, parts.query, parts.fragment))


def url_password(url):
    """The password part of a proxy URL, or None."""
    if not url or "@" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def validate_proxy(param, value):
    allowed = ALLOWED_PROXY
    if any(c.isspace() for c in value):
        raise ValidationError(param, mask_url(value), allowed)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError(param, mask_url(value), allowed + " (port must be 1-65535)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(param, mask_url(value), allowed)
    if port is not None and not 0 < port < 65536:
        raise ValidationError(param, mask_url(value), allowed + " (port must be 1-65535)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError(param, mask_url(value), allowed + " (no path, query or fragment)")
    if parts.password == MASK:
        raise ValidationError(param, mask_url(value),
                              allowed + "; the password is masked (a value copied from returned output): pass the "
                              "real proxy URL")


def with_real_proxies(config, proxies):
    """``config`` (a plan's masked configuration) with the real proxy URLs of ``proxies`` put back.

    A proxy whose password the plan masked and that ``proxies`` does not give cannot be used: the build would
    send ******** to the proxy, so that is an error naming the option to set.
    """
    out = dict(config)
    for name in PROXY_NAMES:
        real = proxies.get(name)
        if real:
            validate_proxy(name, real)
            out[name] = real
        elif url_password(out.get(name)) == MASK:
            raise ValidationError(name, out[name], "the real proxy URL: the build plan masks the proxy password, so "
                                  "pass %s to this step as well" % name)
    return out


def mask_text(text):
    """Mask the password of every user:password@ URL in ``text`` (the collection's one masker)."""
    return mask_secrets(text or "")
