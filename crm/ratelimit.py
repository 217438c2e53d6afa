"""Attempt counters in Django's cache (Redis when REDIS_URL is set, so every gunicorn worker and
host counts together; an in-process cache otherwise).

Fixed windows: at most ``limit`` attempts per ``window`` seconds for one scope and identity. The
identity (an email address, an IP) is stored as an HMAC, never as it is. Used by the staff side
(sign-in's client address, password resets) and the portal (link requests, questions, uploads).
"""

from __future__ import annotations

import ipaddress
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


def _address(text: str) -> str | None:
    """An IP address as one spelling (IPv4-mapped IPv6 as IPv4); an IPv6 client as its /64, which
    one household or server holds whole — counted one by one, a single network would have 2^64
    fresh addresses to guess from. None for anything that is not an address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)


def client_ip(request: HttpRequest) -> str | None:
    """The address attempts are counted against (staff sign-in, password resets, the portal's
    link requests and uploads).

    REMOTE_ADDR, unless settings.TRUSTED_PROXY_COUNT proxies stand in front: each appends the
    address it received the request from to CLIENT_IP_HEADER, so the client is that many entries
    from the right (entries further left are whatever the client wrote). A header with fewer
    entries did not come through them all: REMOTE_ADDR then (the proxy's, shared by everyone —
    throttling too much rather than trusting a spoofable entry). None when there is no address
    (axes counts those together).
    """
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        header = "HTTP_" + settings.CLIENT_IP_HEADER.upper().replace("-", "_")
        entries = [entry.strip() for entry in request.META.get(header, "").split(",") if entry.strip()]
        if len(entries) >= hops and (forwarded := _address(entries[-hops])):
            return forwarded
    return _address(request.META.get("REMOTE_ADDR", ""))
