"""Who the client is: the socket peer, unless that peer is a trusted proxy.

``X-Forwarded-For`` is honoured only when the connection comes from an address in
``TTSOPS_TRUSTED_PROXIES`` (IPs or CIDR networks, comma-separated; default: none, so no
header can change the client). Then the list is read from the right, skipping the
trusted proxies; the first address that is not one of them is the client. Every entry
must be an IP address: anything else (``id=ts_forged``, a host name, an empty item) stops
the walk and the last trusted hop is taken instead. The result is always an address the
``ipaddress`` module printed, so nothing a client sends reaches the ``client`` field of a
record, and the rate limiter keys on the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..config import parse_networks

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> IPAddr | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddress:
    """``resolve(peer_host, forwarded_values)`` -> the client address to log and limit."""

    def __init__(self, trusted: str | Iterable[IPNet] = "") -> None:
        self.nets = parse_networks(trusted) if isinstance(trusted, str) else list(trusted)
        # peer host -> (its address, as printed): a keep-alive client sends many requests
        self._peers: dict[str, tuple[IPAddr | None, str]] = {}

    def _peer(self, peer: str) -> tuple[IPAddr | None, str]:
        got = self._peers.get(peer)
        if got is None:
            ip = _ip(peer)
            got = (ip, str(ip) if ip is not None else "unknown")
            if len(self._peers) >= 4096:  # bounded: many clients, forget and start over
                self._peers.clear()
            self._peers[peer] = got
        return got

    def trusts(self, addr: IPAddr | None) -> bool:
        if addr is None:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.nets)

    def resolve(self, peer: str, forwarded: list[bytes]) -> str:
        peer_ip, shown = self._peer(peer)
        if not self.nets or not forwarded or not self.trusts(peer_ip):
            return shown
        items = ",".join(v.decode("latin-1") for v in forwarded).split(",")
        last = shown
        for item in reversed(items):
            ip = _ip(item)
            if ip is None:
                return last  # garbage: nothing left of it can be believed
            if not self.trusts(ip):
                return str(ip)
            last = str(ip)
        return last
