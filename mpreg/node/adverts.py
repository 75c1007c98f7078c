"""A node's advertisement: the endpoints it hosts and which of them are restarting.

Each node gossips its whole advertisement, versioned by the membership core
(a newer version replaces an older one; stale gossip is ignored there), so a
receiver never depends on having seen every change in order: it compares the
new advertisement with what its routing table holds for that node and applies
the difference. Pure: routing table in, ids of endpoints that stopped serving
out (the caller moves their calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from mpreg.node.routing import RoutingTable
from mpreg.protocol.messages import Endpoint, ErrorInfo


@dataclass(frozen=True, slots=True)
class Advert:
    """What one node offers: its endpoints, those paused by a restart or a crash
    loop, how busy each is (calls outstanding on it, every caller's), and
    those whose process is not started yet (cold: started by the first call)."""

    endpoints: tuple[Endpoint, ...] = ()
    restarting: tuple[str, ...] = ()
    crashed: tuple[tuple[str, ErrorInfo], ...] = ()
    load: tuple[tuple[str, int], ...] = ()
    cold: tuple[str, ...] = ()


def well_formed(advert: object) -> TypeGuard[Advert]:
    """Whether ``advert`` is an :class:`Advert` whose every field has the shape it claims.

    Gossip comes from authenticated members, but a node survives any bytes a
    peer sends it: a malformed advert is ignored whole, never half applied.
    """
    if type(advert) is not Advert:
        return False
    try:
        return (
            type(advert.endpoints) is tuple
            and all(_endpoint_ok(ep) for ep in advert.endpoints)
            and type(advert.restarting) is tuple
            and all(type(eid) is str for eid in advert.restarting)
            and type(advert.crashed) is tuple
            and all(
                type(pair) is tuple
                and len(pair) == 2
                and type(pair[0]) is str
                and type(pair[1]) is ErrorInfo
                for pair in advert.crashed
            )
            and type(advert.load) is tuple
            and all(
                type(pair) is tuple
                and len(pair) == 2
                and type(pair[0]) is str
                and type(pair[1]) is int
                for pair in advert.load
            )
            and type(advert.cold) is tuple
            and all(type(eid) is str for eid in advert.cold)
        )
    except AttributeError:  # an Advert built without __init__, missing a slot
        return False


def _endpoint_ok(endpoint: object) -> bool:
    return (
        type(endpoint) is Endpoint
        and type(endpoint.endpoint_id) is str
        and type(endpoint.node_id) is str
        and type(endpoint.functions) is frozenset
        and type(endpoint.datasets) is frozenset
        and all(type(name) is str for name in endpoint.functions | endpoint.datasets)
    )


def own_advert(routes: RoutingTable, node_id: str) -> Advert:
    """This node's advertisement, read from its routing table."""
    endpoints = tuple(ep for ep in routes.endpoints() if ep.node_id == node_id)
    restarting: list[str] = []
    crashed: list[tuple[str, ErrorInfo]] = []
    for endpoint_id in routes.suspended(node_id):
        error = routes.suspension(endpoint_id)
        if error is None:
            restarting.append(endpoint_id)
        else:
            crashed.append((endpoint_id, error))
    load = tuple(
        (ep.endpoint_id, n) for ep in endpoints if (n := routes.outstanding(ep.endpoint_id))
    )
    cold = tuple(routes.cold(node_id))
    return Advert(endpoints, tuple(restarting), tuple(crashed), load, cold)


def load_moved(old: Advert, new: Advert) -> bool:
    """Whether ``new``'s load figures differ enough from ``old``'s to be worth gossiping.

    Coarse on purpose: a figure that went from idle to busy or back, or moved by a
    quarter (and at least 2), not every call that starts or ends.
    """
    before, after = dict(old.load), dict(new.load)
    for endpoint_id in before.keys() | after.keys():
        a, b = before.get(endpoint_id, 0), after.get(endpoint_id, 0)
        if (a == 0) != (b == 0) or abs(a - b) >= max(2, max(a, b) // 4):
            return True
    return False


def apply_advert(routes: RoutingTable, node_id: str, advert: Advert) -> set[str]:
    """Make ``routes`` hold exactly ``advert`` for ``node_id``.

    Returns the ids of endpoints that served until now and no longer do
    (removed, restarting or crashed): calls in flight on them must move.
    Endpoints claiming another node id are ignored (a node speaks for itself).
    """
    before = {ep.endpoint_id for ep in routes.endpoints() if ep.node_id == node_id}
    live_before = {eid for eid in before if not routes.is_suspended(eid)}
    paused = dict.fromkeys(advert.restarting, None) | dict(advert.crashed)
    now: set[str] = set()
    for endpoint in advert.endpoints:
        if endpoint.node_id != node_id:
            continue
        now.add(endpoint.endpoint_id)
        known = routes.get(endpoint.endpoint_id)
        if known != endpoint:
            routes.add(endpoint)  # new, or changed: add() replaces it and clears a pause
        endpoint_id = endpoint.endpoint_id
        if endpoint_id in paused:
            routes.suspend(endpoint_id, paused[endpoint_id])
        else:
            routes.resume(endpoint_id)
    for endpoint_id in before - now:
        routes.remove(endpoint_id)
    load, cold = dict(advert.load), set(advert.cold)
    for endpoint_id in now:
        routes.report_load(endpoint_id, load.get(endpoint_id, 0))
        routes.set_cold(endpoint_id, endpoint_id in cold)
    return {eid for eid in live_before if eid not in now or eid in paused}
