"""Which address a node advertises: the bind address, or for a wildcard bind an interface's."""

from __future__ import annotations

import ipaddress
import socket

from mpreg.host.addresses import advertise_host, default_route_interfaces, interface_address

ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_a_given_advertise_host_wins_and_a_specific_bind_advertises_itself() -> None:
    assert advertise_host("0.0.0.0", "10.0.0.5") == "10.0.0.5"
    assert advertise_host("10.0.0.7", "node7.example") == "node7.example"
    # "": the node advertises the address it binds (loopback or a real interface)
    assert advertise_host("127.0.0.1") == ""
    assert advertise_host("10.0.0.7") == ""


def test_a_wildcard_bind_advertises_an_interface_address_never_the_wildcard() -> None:
    for wildcard in ("0.0.0.0", "::"):
        chosen = advertise_host(wildcard)
        assert chosen not in ("", "0.0.0.0", "::")
        assert chosen in (interface_address(), socket.gethostname())


def test_the_interface_address_is_up_non_loopback_ipv4_or_nothing() -> None:
    address = interface_address()  # read from this host's interfaces; nothing is sent
    if address:
        parsed = ipaddress.ip_address(address)
        assert parsed.version == 4
        assert not parsed.is_loopback and not parsed.is_unspecified


def test_the_default_route_interface_is_read_from_the_route_table() -> None:
    assert default_route_interfaces(ROUTES) == ["eth0"]
    assert default_route_interfaces(ROUTES.splitlines()[0]) == []
    assert default_route_interfaces("") == []
