"""The peer table alone: one record per link through JOINING, ALIVE and GONE (no sockets)."""

from __future__ import annotations

from mpreg.node.peers import PeerState, PeerTable
from mpreg.protocol.messages import NodeInfo

ME = "me-000001"


def _table() -> PeerTable[str]:
    table: PeerTable[str] = PeerTable(ME)
    table.own_address = "127.0.0.1:7000"
    return table


def _info(name: str, port: int) -> NodeInfo:
    return NodeInfo(f"{name}-1", name, f"127.0.0.1:{port}")


def test_a_dialled_peer_goes_joining_alive_gone_and_shows_it() -> None:
    table = _table()
    peer = table.dialling("localhost:7001")
    assert peer.state is PeerState.JOINING and "JOINING" in repr(peer)
    assert table.knows("localhost:7001")  # a second gossip of it does not dial twice
    table.connected(peer, "link-b", None)
    assert table.link_for("b-1") is None  # no route before its hello
    assert table.hello("link-b", _info("b", 7001)) is peer
    assert peer.state is PeerState.ALIVE and "ALIVE" in repr(peer)
    assert table.link_for("b-1") == "link-b"
    assert table.alive_addresses() == ("127.0.0.1:7001",)
    assert table.knows("localhost:7001") and table.knows("127.0.0.1:7001")
    assert table.closed("link-b") is peer
    assert peer.state is PeerState.GONE and "GONE" in repr(peer)
    assert table.link_for("b-1") is None and len(table) == 0
    assert table.known_addresses() == {"127.0.0.1:7000"}


def test_an_accepted_peer_is_known_by_its_hello() -> None:
    table = _table()
    peer = table.accepted("link-c")
    assert not peer.dialled and table.known_addresses() == {"127.0.0.1:7000"}
    table.hello("link-c", _info("c", 7002))
    assert [p.node_id for p in table.alive()] == ["c-1"]
    assert table.knows("127.0.0.1:7002")


def test_only_the_current_link_of_a_node_takes_its_endpoints_away() -> None:
    table = _table()
    table.accepted("old")
    table.hello("old", _info("b", 7001))
    table.connected(table.dialling("127.0.0.1:7001"), "new", None)
    table.hello("new", _info("b", 7001))  # both dialled each other: the newer link wins
    assert table.link_for("b-1") == "new"
    assert table.closed("old") is None  # a stale duplicate: routing stays
    assert table.link_for("b-1") == "new"
    gone = table.closed("new")
    assert gone is not None and gone.node_id == "b-1"
    assert table.closed("new") is None  # a second close is nothing


def test_our_own_hello_is_refused_and_its_address_never_dialled_again() -> None:
    table = _table()
    peer = table.dialling("0.0.0.0:7000")
    table.connected(peer, "loop", None)
    assert table.hello("loop", NodeInfo(ME, "me", "127.0.0.1:7000")) is None
    assert table.closed("loop") is None
    assert table.knows("0.0.0.0:7000")
    assert len(table) == 0


def test_a_failed_dial_is_forgotten() -> None:
    table = _table()
    peer = table.dialling("127.0.0.1:7009")
    table.forget(peer)
    assert peer.state is PeerState.GONE
    assert not table.knows("127.0.0.1:7009")
    assert table.links() == []
