"""The watchdog's core, without a cluster: when a silent node is probed, and when suspected.

The link feeds :class:`Silence` the time, the connection's count of chunks
received and whether the client waits; the cluster tests (test_hung_node.py)
run the whole thing against stopped node processes.
"""

from __future__ import annotations

from mpreg.driver.watchdog import HEARTBEAT, SILENCE, TICK, Silence, Verdict


def _run(silence: Silence, start: float, end: float, received: int, busy: bool) -> list[Verdict]:
    """Tick once per TICK from ``start`` to ``end`` with a fixed count: what was decided."""
    verdicts = []
    now = start
    while now <= end:
        verdicts.append(silence.tick(now, received, busy))
        now += TICK
    return verdicts


def test_a_silent_node_is_probed_once_then_suspected() -> None:
    silence = Silence()
    silence.heard(100.0, 7)
    verdicts = _run(silence, 101.0, 100.0 + SILENCE, received=7, busy=True)
    assert verdicts.count(Verdict.PROBE) == 1
    assert verdicts[int(HEARTBEAT) - 1] is Verdict.PROBE  # at HEARTBEAT, not before
    assert verdicts[-1] is Verdict.CONFIRM and Verdict.CONFIRM not in verdicts[:-1]


def test_anything_received_starts_the_silence_over() -> None:
    silence = Silence()
    silence.heard(0.0, 0)
    assert silence.tick(HEARTBEAT, 0, busy=True) is Verdict.PROBE
    assert silence.tick(HEARTBEAT + 1, 1, busy=True) is Verdict.WAIT  # the probe's answer
    # A new silence: probed again, and suspected only SILENCE after the answer.
    assert silence.tick(2 * HEARTBEAT + 1, 1, busy=True) is Verdict.PROBE
    assert silence.tick(HEARTBEAT + 1 + SILENCE - 0.1, 1, busy=True) is Verdict.WAIT
    assert silence.tick(HEARTBEAT + 1 + SILENCE, 1, busy=True) is Verdict.CONFIRM


def test_an_idle_client_never_probes_and_its_first_wait_starts_the_clock() -> None:
    silence = Silence()
    silence.heard(0.0, 3)
    # An hour of silence with nothing asked: nothing to send, nothing suspected.
    assert set(_run(silence, 1.0, 3600.0, received=3, busy=False)) == {Verdict.WAIT}
    # The first request after it: the silence counts from the last idle look.
    assert silence.tick(3601.0, 3, busy=True) is Verdict.WAIT
    assert silence.tick(3600.0 + HEARTBEAT, 3, busy=True) is Verdict.PROBE
    assert silence.tick(3600.0 + SILENCE, 3, busy=True) is Verdict.CONFIRM


def test_a_node_that_took_a_new_connection_gets_another_full_silence() -> None:
    silence = Silence()
    silence.heard(0.0, 5)
    assert silence.tick(SILENCE, 5, busy=True) is Verdict.CONFIRM
    silence.heard(SILENCE + 1, 5)  # it answered the check: alive, reading us later
    assert silence.quiet(SILENCE + 1) == 0
    assert silence.tick(SILENCE + 2, 5, busy=True) is Verdict.WAIT
    assert silence.tick(SILENCE + 1 + HEARTBEAT, 5, busy=True) is Verdict.PROBE
    assert silence.tick(2 * SILENCE + 1, 5, busy=True) is Verdict.CONFIRM


def test_the_probe_comes_before_suspicion_with_room_for_gc_pauses() -> None:
    # A node's loop pauses for GC (~0.7 s measured with 50,000 queued calls): the probe
    # must have time to be answered after one, with a tick's lateness to spare.
    assert HEARTBEAT + TICK + 0.7 < SILENCE
