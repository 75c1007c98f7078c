"""A client's DAG on its node, without sockets: start order, result release, failure spread."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from session_support import ARGS, FakeConn

from mpreg.node.routing import RoutingTable
from mpreg.node.session import Session
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.messages import (
    BatchRejected,
    Cancel,
    Endpoint,
    ErrorInfo,
    Release,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)


class FakeHandle:
    """A started call as the session sees it: answered yet, and cancel()."""

    def __init__(self, calls: FakeCalls, command: str) -> None:
        self.calls, self.command = calls, command
        self.done = False

    def cancel(self) -> None:
        self.calls.cancelled.append(self.command)
        self.calls.finish(self.command, error=ErrorInfo(kind="cancelled", message="cancelled"))


class FakeCalls:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.handles: dict[str, FakeHandle] = {}
        self.cancelled: list[str] = []

    def submit(self, **call: Any) -> FakeHandle:
        self.started[call["command"]] = call
        handle = self.handles[call["command"]] = FakeHandle(self, call["command"])
        return handle

    def finish(self, command: str, value: object = None, error: ErrorInfo | None = None) -> None:
        result = None if error else dumps_value(value)
        self.handles[command].done = True
        self.started[command]["on_done"](result, error, f"n/{command}-worker")


class FakeNode:
    """What a session uses of its node: a real routing table and a recording dispatcher."""

    def __init__(self) -> None:
        self.routes = RoutingTable()
        self.routes.add(Endpoint("n/w", "n", "worker", frozenset({"f"}), frozenset()))
        self.calls = FakeCalls()


def _spec(
    task_id: int, name: str, deps: tuple[int, ...] = (), *, sink: bool = False, keep: bool = False
) -> TaskSpec:
    return TaskSpec(task_id, name, "f", frozenset(), ARGS, deps, sink, keep)


def _session() -> tuple[Session, FakeNode, FakeConn]:
    node, conn = FakeNode(), FakeConn()
    return Session(conn, node.routes.check, node.calls.submit), node, conn  # type: ignore[arg-type]


def test_a_chain_runs_in_order_and_only_the_sink_comes_back() -> None:
    session, node, conn = _session()
    session.on_submit(
        SubmitBatch(1, (_spec(1, "a"), _spec(2, "b", (1,)), _spec(3, "c", (2,), sink=True)))
    )
    assert list(node.calls.started) == ["a"]
    node.calls.finish("a", 10)
    assert list(node.calls.started) == ["a", "b"]
    ((dep_id, dep_blob),) = node.calls.started["b"]["deps"]
    assert dep_id == 1 and loads_value(dep_blob) == 10
    assert 1 not in session.tasks  # a's result was handed on and let go
    node.calls.finish("b", 20)
    node.calls.finish("c", 30)
    assert [(m.task_id, loads_value(m.result)) for m in conn.sent] == [(3, 30)]  # type: ignore[attr-defined]
    assert session.tasks == {}


def test_branches_start_together_and_a_join_waits_for_both() -> None:
    session, node, _ = _session()
    session.on_submit(
        SubmitBatch(
            1,
            (
                _spec(1, "a"),
                _spec(2, "b", (1,)),
                _spec(3, "c", (1,)),
                _spec(4, "d", (2, 3), sink=True),
            ),
        )
    )
    node.calls.finish("a", 1)
    assert set(node.calls.started) == {"a", "b", "c"}
    node.calls.finish("b", 2)
    assert "d" not in node.calls.started
    node.calls.finish("c", 3)
    assert "d" in node.calls.started


def test_a_failure_reports_the_command_and_fails_sinks_downstream_without_running_them() -> None:
    session, node, conn = _session()
    session.on_submit(
        SubmitBatch(1, (_spec(1, "a"), _spec(2, "b", (1,)), _spec(3, "c", (2,), sink=True)))
    )
    boom = ErrorInfo(kind="user", message="boom", exc_type="ValueError")
    node.calls.finish("a", error=boom)
    assert list(node.calls.started) == ["a"]
    done = [m for m in conn.sent if isinstance(m, TaskDone)]
    assert [(m.task_id, m.error.command, m.error.message) for m in done] == [  # type: ignore[union-attr]
        (1, "a", "boom"),
        (3, "a", "boom"),
    ]
    assert session.tasks == {}


def test_a_kept_result_feeds_a_later_request_until_released() -> None:
    session, node, _ = _session()
    session.on_submit(SubmitBatch(1, (_spec(1, "f1", sink=True, keep=True),)))
    node.calls.finish("f1", 5)
    assert 1 in session.tasks
    session.on_submit(SubmitBatch(2, (_spec(2, "g", (1,), sink=True),)))
    assert loads_value(node.calls.started["g"]["deps"][0][1]) == 5
    session.on_release(Release((1,)))
    assert 1 not in session.tasks


def test_a_dependency_on_a_released_result_is_rejected_and_nothing_runs() -> None:
    session, node, conn = _session()
    session.on_submit(SubmitBatch(5, (_spec(5, "late", (99,), sink=True),)))
    assert node.calls.started == {}
    (rejected,) = conn.sent
    assert isinstance(rejected, BatchRejected) and rejected.error.kind == "plan"


def test_an_unroutable_batch_is_rejected_whole() -> None:
    session, node, conn = _session()
    bad = TaskSpec(2, "x", "nope", frozenset(), ARGS, (), True)
    session.on_submit(SubmitBatch(1, (_spec(1, "ok", sink=True), bad)))
    assert node.calls.started == {}
    (rejected,) = conn.sent
    assert isinstance(rejected, BatchRejected) and rejected.error.kind == "unknown-function"
    assert rejected.error.command == "x"


def test_a_cancelled_task_is_stopped_its_dependents_fail_and_only_they_are_reported() -> None:
    session, node, conn = _session()
    session.on_submit(SubmitBatch(1, (_spec(1, "a"), _spec(2, "b", (1,), sink=True))))
    session.on_cancel(Cancel((1, 99)))  # 99: unknown, ignored
    assert node.calls.cancelled == ["a"]
    assert [(m.task_id, m.error.kind) for m in conn.sent] == [(2, "cancelled")]  # type: ignore[attr-defined]
    assert session.tasks == {} and session.unfinished == 0


def test_a_task_past_its_deadline_never_starts() -> None:
    session, node, conn = _session()
    expired = replace(_spec(1, "a", sink=True), deadline=time.time() - 1)
    session.on_submit(SubmitBatch(1, (expired,)))
    assert node.calls.started == {}
    assert [(m.task_id, m.error.kind) for m in conn.sent] == [(1, "deadline")]  # type: ignore[attr-defined]


def test_too_much_unfinished_work_holds_the_client_until_half_of_it_is_done() -> None:
    node, conn = FakeNode(), FakeConn()
    held: list[bool] = []
    session = Session(conn, node.routes.check, node.calls.submit, on_busy=held.append, max_queued=4)  # type: ignore[arg-type]
    session.on_submit(SubmitBatch(1, tuple(_spec(i, f"t{i}", sink=True) for i in range(1, 5))))
    assert held == [True]
    node.calls.finish("t1")
    assert held == [True]
    node.calls.finish("t2")
    assert held == [True, False]


def test_a_few_large_arguments_hold_the_client_like_many_small_tasks() -> None:
    node, conn = FakeNode(), FakeConn()
    held: list[bool] = []
    mib = dumps_value(((b"x" * (1 << 20),), {}))
    session = Session(
        conn,  # type: ignore[arg-type]
        node.routes.check,
        node.calls.submit,  # type: ignore[arg-type]
        on_busy=held.append,
        max_queued_bytes=3 << 20,
    )
    specs = tuple(replace(_spec(i, f"t{i}", sink=True), args=mib) for i in range(1, 4))
    session.on_submit(SubmitBatch(1, specs))  # 3 tasks, far below 2,048, but 3 MiB
    assert held == [True]
    node.calls.finish("t1")
    assert held == [True]  # 2 MiB still held: more than half the bound
    node.calls.finish("t2")
    assert held == [True, False]


def test_a_client_that_goes_away_cancels_what_it_had_running() -> None:
    session, node, _ = _session()
    session.on_submit(SubmitBatch(1, (_spec(1, "a", sink=True), _spec(2, "b", sink=True))))
    node.calls.finish("b", 1)
    session.close()
    assert node.calls.cancelled == ["a"]
