"""Which links compress: those that cross hosts, never one that stays on this host."""

from __future__ import annotations

from mpreg.transport.connection import crosses_hosts


def test_only_a_link_to_another_host_compresses() -> None:
    assert crosses_hosts("10.231.0.1", "10.231.0.2")
    assert crosses_hosts("::", "fd00::2")
    assert not crosses_hosts("127.0.0.1", "127.0.0.1")
    assert not crosses_hosts("::1", "::1")
    # A worker dialling its node's interface address: both ends are this host.
    assert not crosses_hosts("10.231.0.1", "10.231.0.1")
