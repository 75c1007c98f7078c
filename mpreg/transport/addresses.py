"""Addresses: parsing what users type, and telling a link that crosses hosts."""

from __future__ import annotations

import ipaddress


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def crosses_hosts(local: str, peer: str) -> bool:
    """True for a link between two hosts: lz4 pays there. A peer at our own address
    (a worker dialling its node's interface address) is this host."""
    return not _is_loopback(peer) and peer != local


def parse_address(address: str, default_port: int = 7773) -> tuple[str, int]:
    """``host:port``, ``tcp://host:port`` or ``mpreg://host:port`` -> (host, port)."""
    text = address.strip()
    for scheme in ("tcp://", "mpreg://", "ws://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    text = text.rstrip("/")
    if text.startswith("["):  # [::1]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not host:
        raise ValueError(f"address {address!r} has no host")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"address {address!r} has a bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"address {address!r} has a port out of range")
    return host, port
