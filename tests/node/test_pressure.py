"""Backpressure alone: which clients are paused, as links congest and clients lag (no sockets)."""

from __future__ import annotations

from mpreg.node.pressure import Backpressure


class FakeClient:
    """Records whether its reading is paused, as a transport would be."""

    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def test_a_congested_link_pauses_every_client_until_all_links_drain() -> None:
    pressure = Backpressure()
    a, b = FakeClient(), FakeClient()
    pressure.add_client(a)
    pressure.add_client(b)
    pressure.link_pressure("worker-1", True)
    pressure.link_pressure("peer-2", True)
    assert a.paused and b.paused and pressure.congested
    pressure.link_pressure("worker-1", False)
    assert a.paused and b.paused  # peer-2 still lags
    pressure.link_closed("peer-2")
    assert not a.paused and not b.paused and not pressure.congested


def test_a_client_arriving_during_congestion_starts_paused() -> None:
    pressure = Backpressure()
    pressure.link_pressure("worker-1", True)
    late = FakeClient()
    pressure.add_client(late)
    assert late.paused


def test_a_slow_client_stays_paused_past_the_node_wide_pause_and_vice_versa() -> None:
    pressure = Backpressure()
    slow, fine = FakeClient(), FakeClient()
    pressure.add_client(slow)
    pressure.add_client(fine)
    pressure.client_pressure(slow, True)
    assert slow.paused and not fine.paused
    pressure.link_pressure("worker-1", True)
    pressure.link_pressure("worker-1", False)
    assert slow.paused and not fine.paused  # its own pause still holds
    pressure.link_pressure("worker-1", True)
    pressure.client_pressure(slow, False)
    assert slow.paused  # the node-wide pause outlasts its own
    pressure.link_pressure("worker-1", False)
    assert not slow.paused


def test_a_dropped_client_is_not_resumed() -> None:
    pressure = Backpressure()
    gone = FakeClient()
    pressure.add_client(gone)
    pressure.link_pressure("w", True)
    pressure.drop_client(gone)
    pressure.link_pressure("w", False)
    assert gone.paused


def test_a_client_with_too_much_work_queued_is_held_alone_and_outlasts_a_node_wide_pause() -> None:
    pressure = Backpressure()
    a, b = FakeClient(), FakeClient()
    pressure.add_client(a)
    pressure.add_client(b)
    pressure.client_busy(a, True)
    assert a.paused and not b.paused
    pressure.link_pressure("worker-1", True)
    pressure.link_pressure("worker-1", False)
    assert a.paused and not b.paused  # still too busy
    pressure.client_busy(a, False)
    assert not a.paused
