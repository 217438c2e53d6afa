"""Attempt counters in Django's cache (Redis when REDIS_URL is set, so every gunicorn worker and
host counts together; an in-process cache otherwise).

Fixed windows: at most ``limit`` attempts per ``window`` seconds for one scope and identity. The
identity (an email address, an IP) is stored as an HMAC, never as it is.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

KEY_PREFIX = "portal-rl"


def _key(scope: str, identity: str, window: int) -> str:
    digest = salted_hmac("portal.ratelimit", identity.strip().lower()).hexdigest()[:32]
    return f"{KEY_PREFIX}:{scope}:{digest}:{int(time.time()) // window}"


def allow(scope: str, identity: str, *, limit: int, window: int) -> bool:
    """Count one attempt; False once there have been more than ``limit`` in this window."""
    key = _key(scope, identity, window)
    # add() is a no-op when the key exists; incr() is atomic on Redis (and under locmem's lock).
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        count = 1
    return count <= limit


def client_ip(request: HttpRequest) -> str:
    """The address to count attempts against.

    Behind the proxy that SECURE_PROXY_SSL_HEADER says we trust, REMOTE_ADDR is the proxy: every
    visitor would share one counter. There the client is the last address the proxy appended to
    X-Forwarded-For (earlier ones are whatever the client sent, so they are not trusted).
    """
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
