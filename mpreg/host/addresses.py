"""Which address a node advertises: the one its peers and clients dial.

``--host`` is where a node listens, ``--advertise-host`` what it tells
others. Without the latter a node advertises its bind address, except for
a wildcard bind (``0.0.0.0``, ``::``), which nobody can dial: then it
advertises this host's interface address, chosen as

1. the IPv4 address of the interface carrying the default route (the
   network other hosts most likely share with this one), else
2. the first other non-loopback interface that is up and has an IPv4 address
   (a host on a private network only, like a network namespace or an HPC
   fabric without a default route), else
3. this host's name, if nothing above exists (it is dialable where DNS or
   ``/etc/hosts`` knows it).

An address rather than the host name first because a name often does not
resolve on other hosts (no DNS entry), or resolves to ``127.0.1.1`` on
Debian-family hosts. Everything is read locally (``/proc/net/route`` and an
interface ioctl): no packet is sent to find it.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")

_SIOCGIFADDR = 0x8915  # Linux ioctls: an interface's IPv4 address, its flags
_SIOCGIFFLAGS = 0x8913
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
ROUTES = Path("/proc/net/route")


def advertise_host(host: str, advertise: str = "") -> str:
    """The host others dial: ``advertise`` if given, an interface address for a
    wildcard bind, else empty (the node advertises its bind address)."""
    if advertise:
        return advertise
    if host in WILDCARD:
        return interface_address() or socket.gethostname()
    return ""


def is_wildcard(host: str) -> bool:
    return host in WILDCARD


def interface_address() -> str:
    """This host's IPv4 address on its default-route interface, else on its first other
    non-loopback interface that is up; "" if there is none (or not on Linux)."""
    names = [name for _, name in _interfaces()]
    for name in [*default_route_interfaces(), *names]:
        if name not in names:
            continue
        address = _ipv4_of(name)
        if address:
            return address
    return ""


def default_route_interfaces(routes: str | None = None) -> list[str]:
    """Interfaces with a default route, from ``/proc/net/route`` (or the text given)."""
    if routes is None:
        try:
            routes = ROUTES.read_text()
        except OSError:
            return []
    found: list[str] = []
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            found.append(fields[0])
    return found


def _interfaces() -> list[tuple[int, str]]:
    try:
        return socket.if_nameindex()
    except OSError:
        return []


def _ipv4_of(name: str) -> str:
    """The IPv4 address of interface ``name`` if it is up and not loopback, else ""."""
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        flags = struct.unpack("H", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)[16:18])[0]
        if flags & _IFF_UP and not flags & _IFF_LOOPBACK:
            return socket.inet_ntoa(fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)[20:24])
    return ""
