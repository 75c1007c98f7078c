"""Backpressure alone: which clients are paused and which targets held, as links and clients lag.

No sockets: fake clients record their pause, a fake holder records what it is told.
"""

from __future__ import annotations

from mpreg.node.pressure import Backpressure, Target


class FakeClient:
    """Records whether its reading is paused, as a transport would be."""

    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class FakeHolder:
    """Records the holds it is told about, in order, and what is held now."""

    def __init__(self) -> None:
        self.told: list[tuple[Target, bool]] = []
        self.held: set[Target] = set()

    def hold(self, target: Target, held: bool) -> None:
        self.told.append((target, held))
        if held:
            self.held.add(target)
        else:
            self.held.discard(target)


WORKER: Target = ("endpoint", "n/a-1")
PEER: Target = ("node", "n2-abc")


def test_a_lagging_link_holds_only_what_it_carries_and_pauses_no_client() -> None:
    holder = FakeHolder()
    pressure = Backpressure(holder)
    client = FakeClient()
    pressure.link_pressure("worker-link", WORKER, True)
    pressure.link_pressure("peer-link", PEER, True)
    assert holder.held == {WORKER, PEER} and not client.paused
    pressure.link_pressure("worker-link", WORKER, False)
    assert holder.held == {PEER}
    pressure.link_closed("peer-link")
    assert holder.held == set() and not pressure.held(PEER)


def test_a_target_stays_held_until_its_last_lagging_link_drains() -> None:
    holder = FakeHolder()
    pressure = Backpressure(holder)
    pressure.link_pressure("dialled", PEER, True)
    pressure.link_pressure("accepted", PEER, True)  # two links to the same node
    pressure.link_pressure("dialled", PEER, True)  # said twice: counted once
    pressure.link_pressure("dialled", PEER, False)
    assert holder.held == {PEER} and pressure.held(PEER)
    pressure.link_closed("accepted")
    assert holder.told == [(PEER, True), (PEER, False)]


def test_a_link_that_drains_or_closes_without_lagging_tells_nothing() -> None:
    holder = FakeHolder()
    pressure = Backpressure(holder)
    pressure.link_pressure("worker-link", WORKER, False)
    pressure.link_closed("worker-link")
    assert holder.told == []


def test_a_slow_client_is_paused_alone() -> None:
    pressure = Backpressure(FakeHolder())
    slow, fine = FakeClient(), FakeClient()
    pressure.client_pressure(slow, True)
    assert slow.paused and not fine.paused
    pressure.link_pressure("worker-link", WORKER, True)
    assert not fine.paused  # a lagging link never pauses a client
    pressure.client_pressure(slow, False)
    assert not slow.paused


def test_a_client_with_too_much_work_queued_is_held_alone_and_both_causes_must_clear() -> None:
    pressure = Backpressure()
    a, b = FakeClient(), FakeClient()
    pressure.client_busy(a, True)
    assert a.paused and not b.paused
    pressure.client_pressure(a, True)
    pressure.client_busy(a, False)
    assert a.paused  # it still does not read its results
    pressure.client_pressure(a, False)
    assert not a.paused


def test_a_dropped_client_forgets_its_causes() -> None:
    pressure = Backpressure()
    gone = FakeClient()
    pressure.client_busy(gone, True)
    pressure.drop_client(gone)
    assert "busy=0" in repr(pressure)
