"""A node's advertisement replaces what others route to for it: added, paused, resumed, gone."""

from __future__ import annotations

from mpreg.node.adverts import Advert, apply_advert, load_moved, own_advert
from mpreg.node.routing import RoutingTable
from mpreg.protocol.messages import Endpoint, ErrorInfo


def _ep(eid: str, node: str = "b", fun: str = "f") -> Endpoint:
    return Endpoint(eid, node, "actor", frozenset({fun}), frozenset({"d"}), "A")


def test_a_first_advert_adds_every_endpoint() -> None:
    routes = RoutingTable()
    lost = apply_advert(routes, "b", Advert((_ep("b/1"), _ep("b/2"))))
    assert lost == set()
    assert {e.endpoint_id for e in routes.endpoints()} == {"b/1", "b/2"}


def test_endpoints_missing_from_a_newer_advert_are_removed_and_reported() -> None:
    routes = RoutingTable()
    apply_advert(routes, "b", Advert((_ep("b/1"), _ep("b/2"))))
    lost = apply_advert(routes, "b", Advert((_ep("b/2"),)))
    assert lost == {"b/1"}
    assert routes.get("b/1") is None and routes.get("b/2") is not None


def test_restarting_and_crashed_endpoints_pause_then_resume() -> None:
    routes = RoutingTable()
    error = ErrorInfo(kind="remote", message="boom")
    apply_advert(routes, "b", Advert((_ep("b/1"), _ep("b/2"))))
    lost = apply_advert(
        routes,
        "b",
        Advert((_ep("b/1"), _ep("b/2")), restarting=("b/1",), crashed=(("b/2", error),)),
    )
    assert lost == {"b/1", "b/2"}
    assert routes.is_suspended("b/1") and routes.suspension("b/1") is None
    assert routes.suspension("b/2") == error
    assert routes.choose("f", frozenset()) is None
    # Still paused: nothing newly lost.
    assert apply_advert(routes, "b", Advert((_ep("b/1"),), restarting=("b/1",))) == set()
    lost = apply_advert(routes, "b", Advert((_ep("b/1"),)))
    assert lost == set() and not routes.is_suspended("b/1")
    assert routes.choose("f", frozenset()) == _ep("b/1")


def test_an_advert_speaks_only_for_its_own_node() -> None:
    routes = RoutingTable()
    routes.add(_ep("c/1", node="c"))
    apply_advert(routes, "b", Advert((_ep("c/9", node="c"), _ep("b/1"))))
    assert routes.get("c/9") is None  # b may not advertise c's endpoints
    assert routes.get("c/1") is not None  # nor does its advert remove them
    assert routes.get("b/1") is not None


def test_own_advert_reads_the_local_endpoints_and_their_pauses() -> None:
    routes = RoutingTable()
    error = ErrorInfo(kind="remote", message="boom")
    for endpoint in (_ep("a/1", node="a"), _ep("a/2", node="a"), _ep("b/1")):
        routes.add(endpoint)
    routes.suspend("a/1")
    routes.suspend("a/2", error)
    advert = own_advert(routes, "a")
    assert {e.endpoint_id for e in advert.endpoints} == {"a/1", "a/2"}
    assert advert.restarting == ("a/1",)
    assert advert.crashed == (("a/2", error),)
    other = RoutingTable()
    apply_advert(other, "a", advert)
    assert other.is_suspended("a/1") and other.suspension("a/2") == error


def test_unreachable_nodes_are_skipped_but_stay_known() -> None:
    routes = RoutingTable()
    routes.add(_ep("b/1"))
    routes.add(_ep("c/1", node="c"))
    routes.set_reachable("b", False)
    assert all(routes.choose("f", frozenset()) == _ep("c/1", node="c") for _ in range(20))
    routes.set_reachable("c", False)
    assert routes.choose("f", frozenset()) is None
    assert routes.get("b/1") is not None  # check() still passes: calls wait for them
    routes.set_reachable("b", True)
    assert routes.choose("f", frozenset()) == _ep("b/1")
    routes.remove_node("c")
    assert routes.is_reachable("c")


def test_load_travels_in_the_advert_and_counts_in_the_choice() -> None:
    owner = RoutingTable()
    for endpoint in (_ep("b/1"), _ep("b/2")):
        owner.add(endpoint)
    for _ in range(5):
        owner.begin("b/1")  # the owner's own callers keep b/1 busy
    advert = own_advert(owner, "b")
    assert advert.load == (("b/1", 5),)
    other = RoutingTable()
    apply_advert(other, "b", advert)
    # Our own count says both are idle; the owner's figure says b/1 is not.
    assert all(other.choose("f", frozenset()) == _ep("b/2") for _ in range(20))
    # Our own calls count too: the larger of the two figures is used.
    for _ in range(7):
        other.begin("b/2")
    assert other.choose("f", frozenset()) == _ep("b/1")
    # An advert without a figure clears it.
    apply_advert(other, "b", Advert((_ep("b/1"), _ep("b/2"))))
    for _ in range(7):
        other.end("b/2")
    assert {other.choose("f", frozenset()).endpoint_id for _ in range(50)} == {"b/1", "b/2"}  # type: ignore[union-attr]


def test_load_is_gossiped_only_when_it_moved_enough() -> None:
    eps = (_ep("b/1"),)
    idle = Advert(eps)
    assert not load_moved(idle, Advert(eps, load=(("b/1", 0),)))
    assert load_moved(idle, Advert(eps, load=(("b/1", 1),)))  # idle -> busy
    assert load_moved(Advert(eps, load=(("b/1", 1),)), idle)  # busy -> idle
    assert not load_moved(Advert(eps, load=(("b/1", 40),)), Advert(eps, load=(("b/1", 45),)))
    assert load_moved(Advert(eps, load=(("b/1", 40),)), Advert(eps, load=(("b/1", 60),)))
    assert not load_moved(Advert(eps, load=(("b/1", 3),)), Advert(eps, load=(("b/1", 4),)))


def test_malformed_adverts_are_refused_whole() -> None:
    from mpreg.node.adverts import well_formed

    good = Advert((_ep("b/1"),), ("b/1",), (), (("b/1", 3),))
    assert well_formed(good)
    bad_endpoint = Endpoint("b/2", "b", "actor", frozenset({1}), frozenset(), "A")  # type: ignore[arg-type]
    for bad in (
        None,
        "advert",
        (_ep("b/1"),),
        Advert([_ep("b/1")]),  # type: ignore[arg-type]
        Advert(("not an endpoint",)),  # type: ignore[arg-type]
        Advert((bad_endpoint,)),
        Advert((_ep("b/1"),), restarting=(1,)),  # type: ignore[arg-type]
        Advert((_ep("b/1"),), crashed=(("b/1", "not an error"),)),  # type: ignore[arg-type]
        Advert((_ep("b/1"),), load=(("b/1", "3"),)),  # type: ignore[arg-type]
    ):
        assert not well_formed(bad), bad


def test_cold_endpoints_travel_in_the_advert_and_warm_up_with_the_next() -> None:
    own = RoutingTable()
    own.add(_ep("b/1"))
    own.add(_ep("b/2"))
    own.set_cold("b/1", True)
    advert = own_advert(own, "b")
    assert advert.cold == ("b/1",)
    other = RoutingTable()
    assert apply_advert(other, "b", advert) == set()  # cold is routable: nothing lost
    assert other.is_cold("b/1") and not other.is_cold("b/2")
    own.set_cold("b/1", False)
    apply_advert(other, "b", own_advert(own, "b"))
    assert not other.is_cold("b/1")
