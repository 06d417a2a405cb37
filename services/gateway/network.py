"""The client address of a request, honouring only trusted proxies."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from .settings import Network

TRUSTED_PROXIES = web.AppKey("trusted_proxies", list[Network])


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def client_ip(request: web.Request) -> str | None:
    """Return the address of the client, read through trusted proxies only.

    X-Forwarded-For is read from the right: each hop added by a trusted
    proxy is skipped, and the first untrusted address is the client. A
    client can prepend any value, so left-hand entries are never believed.
    """
    trusted = request.app.get(TRUSTED_PROXIES, [])
    peer = _parse(request.remote or "")
    if peer is None or not any(peer in network for network in trusted):
        return str(peer) if peer else request.remote
    hops = [
        hop
        for value in request.headers.getall("X-Forwarded-For", [])
        for hop in value.split(",")
    ]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(peer)
        if not any(address in network for network in trusted):
            return str(address)
    return str(peer)


def header_text(value: str, limit: int = 512) -> str:
    """Return a header value as valid text: undecodable bytes become U+FFFD.

    aiohttp keeps bytes that are not UTF-8 as lone surrogates, which no
    JSON encoder or database accepts.
    """
    return value[:limit].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
