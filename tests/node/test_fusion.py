"""Which steps of a request a session fuses into one call, and how it takes the answer apart.

No sockets: a real session and routing table, a recording dispatcher, and
chain answers made as a worker makes them (mpreg.protocol.chains).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from session_support import ARGS, FakeConn

from mpreg.node.fusion import places_in
from mpreg.node.routing import RoutingTable
from mpreg.node.session import Session
from mpreg.protocol.chains import pack_chain_answer, unpack_chain_answer
from mpreg.protocol.codec import Blob, dumps_value, loads_value
from mpreg.protocol.messages import (
    Cancel,
    Endpoint,
    ErrorInfo,
    SubmitBatch,
    TaskSpec,
    TaskTrace,
)


class Handle:
    def __init__(self, calls: Calls, command: str) -> None:
        self.calls, self.command = calls, command
        self.done = False
        self.started = 1.0  # perf_counter when sent, as InFlight has it
        self.retries = 3

    def cancel(self) -> None:
        if not self.done:
            self.calls.answer(self.command, error=ErrorInfo(kind="cancelled", message="x"))


class Calls:
    """Records submits; ``answer`` completes one as its dispatcher would."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.handles: dict[str, Handle] = {}

    def submit(self, **call: Any) -> Handle:
        self.started[call["command"]] = call
        handle = self.handles[call["command"]] = Handle(self, call["command"])
        return handle

    def answer(
        self, command: str, result: Blob | None = None, error: ErrorInfo | None = None
    ) -> None:
        self.handles[command].done = True
        self.started[command]["on_done"](result, error, "n/pipe-1")


def _routes() -> RoutingTable:
    routes = RoutingTable()
    pipe = frozenset({"inc", "dbl", "dec"})
    routes.add(Endpoint("n/pipe-1", "n", "actor", pipe, frozenset({"pipe"})))
    routes.add(Endpoint("n/other-1", "n", "actor", frozenset({"neg"}), frozenset({"other"})))
    return routes


def _spec(
    task_id: int,
    name: str,
    fun: str,
    deps: tuple[int, ...] = (),
    *,
    sink: bool = False,
    datasets: str = "pipe",
    keep: bool = False,
) -> TaskSpec:
    return TaskSpec(task_id, name, fun, frozenset({datasets}), ARGS, deps, sink, keep)


def _session() -> tuple[Session, Calls, FakeConn]:
    routes, calls, conn = _routes(), Calls(), FakeConn()
    session = Session(conn, routes.check, calls.submit, places=places_in(routes))  # type: ignore[arg-type]
    return session, calls, conn


CHAIN = (_spec(1, "h", "inc"), _spec(2, "g", "dbl", (1,)), _spec(3, "f", "dec", (2,), sink=True))


def test_a_chain_on_one_actor_goes_as_one_call_and_only_the_sink_comes_back() -> None:
    session, calls, conn = _session()
    session.on_submit(SubmitBatch(1, CHAIN))
    assert list(calls.started) == ["h"]
    steps = calls.started["h"]["chain"]
    assert [(s.command, s.export, s.args is None) for s in steps] == [
        ("h", False, True),
        ("g", False, False),
        ("f", True, False),
    ]
    assert calls.started["h"]["hold"] is False  # the answer is split here
    calls.answer("h", pack_chain_answer([0.1, 0.1, 0.1], [None, None, dumps_value(7)]))
    assert [(m.task_id, loads_value(m.result)) for m in conn.done().values()] == [(3, 7)]  # type: ignore[arg-type]
    assert session.tasks == {} and session.unfinished == 0


def test_return_all_brings_back_every_step() -> None:
    session, calls, conn = _session()
    tasks = tuple(TaskSpec(**{**_asdict(s), "want_result": True}) for s in CHAIN)
    session.on_submit(SubmitBatch(1, tasks))
    assert [s.export for s in calls.started["h"]["chain"]] == [True, True, True]
    blobs = [dumps_value(v) for v in (2, 4, 1)]
    calls.answer("h", pack_chain_answer([0.0] * 3, blobs))
    assert {t: loads_value(m.result) for t, m in conn.done().items()} == {1: 2, 2: 4, 3: 1}  # type: ignore[arg-type]


def test_an_error_in_step_two_names_it_and_its_dependents_fail_unrun() -> None:
    session, calls, conn = _session()
    session.on_submit(SubmitBatch(1, CHAIN))
    boom = ErrorInfo(kind="user", message="boom", exc_type="ValueError", command="g")
    calls.answer("h", pack_chain_answer([0.1], [None]), error=boom)
    done = conn.done()
    assert done[2].error == boom  # the failed step itself is reported
    assert done[3].error == boom  # and the sink that never ran
    assert 1 not in done  # step 1 ran fine and nobody wanted it
    assert session.tasks == {} and session.unfinished == 0


def test_a_node_side_failure_names_the_first_step_and_says_what_was_fused() -> None:
    session, calls, conn = _session()
    session.on_submit(SubmitBatch(1, CHAIN))
    calls.answer("h", error=ErrorInfo(kind="actor-died", message="process died"))
    error = conn.done()[1].error
    assert error is not None and error.command == "h"
    assert "'g', 'f' fused into its call" in error.message


def test_cancelling_any_step_cancels_the_one_call() -> None:
    session, calls, _ = _session()
    session.on_submit(SubmitBatch(1, CHAIN))
    session.on_cancel(Cancel((3,)))
    assert calls.handles["h"].done
    assert session.tasks == {} and session.unfinished == 0


@pytest.mark.parametrize(
    "tasks",
    [
        # The middle step needs another actor: nothing fuses.
        (
            _spec(1, "h", "inc"),
            _spec(2, "g", "neg", (1,), datasets="other"),
            _spec(3, "f", "dec", (2,), sink=True),
        ),
        # Futures are fetched and cancelled one by one: never fused.
        (_spec(1, "h", "inc", keep=True), _spec(2, "g", "dbl", (1,), sink=True, keep=True)),
        # Two dependents: the head's result is needed by both.
        (
            _spec(1, "h", "inc"),
            _spec(2, "g", "dbl", (1,), sink=True),
            _spec(3, "f", "dec", (1,), sink=True),
        ),
    ],
    ids=["another-actor", "futures", "fan-out"],
)
def test_steps_that_cannot_share_one_call_run_alone(tasks: tuple[TaskSpec, ...]) -> None:
    session, calls, _ = _session()
    session.on_submit(SubmitBatch(1, tasks))
    assert calls.started["h"]["chain"] == ()


def test_a_chain_stops_before_a_step_bound_elsewhere_and_that_step_starts_after_it() -> None:
    session, calls, conn = _session()
    tasks = (
        _spec(1, "h", "inc"),
        _spec(2, "g", "dbl", (1,)),
        _spec(3, "n", "neg", (2,), sink=True, datasets="other"),
    )
    session.on_submit(SubmitBatch(1, tasks))
    assert [s.command for s in calls.started["h"]["chain"]] == ["h", "g"]
    calls.answer("h", pack_chain_answer([0.0, 0.0], [None, dumps_value(4)]))
    ((dep_id, blob),) = calls.started["n"]["deps"]
    assert dep_id == 2 and loads_value(blob) == 4
    calls.answer("n", dumps_value(-4))
    assert loads_value(conn.done()[3].result) == -4  # type: ignore[arg-type]


def test_a_traced_chain_reports_each_step_in_turn() -> None:
    session, calls, conn = _session()
    session.on_submit(SubmitBatch(1, CHAIN, trace=True))
    calls.handles["h"].started = time.perf_counter()
    calls.answer("h", pack_chain_answer([0.001, 0.002, 0.003], [None, None, dumps_value(1)]))
    traces = [m for m in conn.sent if isinstance(m, TaskTrace)]
    assert [t.task_id for t in traces] == [1, 2, 3]
    assert all(t.ok and t.where == "n/pipe-1" for t in traces)
    for before, after in itertools.pairwise(traces):
        assert before.finished <= after.sent + 1e-9  # in turn, not all at once
    assert [round(t.finished - t.sent, 4) for t in traces] == [0.001, 0.002, 0.003]


def test_a_chain_answer_round_trips_and_refuses_garbage() -> None:
    blob = pack_chain_answer([0.5, 0.25], [None, dumps_value("x")])
    took, results = unpack_chain_answer(Blob([bytes(p) for p in blob.parts]))
    assert took == (0.5, 0.25) and results[0] is None
    assert loads_value(results[1]) == "x"  # type: ignore[arg-type]
    for bad in (Blob([b"nope"]), Blob([b'{"took": [1], "results": [3]}']), Blob([b"{}"])):
        with pytest.raises(ValueError):
            unpack_chain_answer(bad)


def _asdict(spec: TaskSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in TaskSpec.__dataclass_fields__}
