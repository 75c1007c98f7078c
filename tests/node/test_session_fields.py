"""Fields of results on the node, without sockets: bundles split, consumers handed their fields."""

from __future__ import annotations

from typing import Any

from session_support import ARGS
from session_support import FakeConn as Conn

from mpreg.errors import FieldError
from mpreg.node.session import Session
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import ErrorInfo, SubmitBatch, TaskDone, TaskSpec
from mpreg.protocol.refs import FieldMiss, pack_bundle


class Handle:
    done = False

    def cancel(self) -> None:
        pass


class Calls:
    """Records the calls a session starts; a test answers them."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}

    def submit(self, **call: Any) -> Handle:
        self.started[call["command"]] = call
        return Handle()

    def answer(self, command: str, result: Blob) -> None:
        self.started[command]["on_done"](result, None, f"n/{command}")


def _session() -> tuple[Session, Calls, Conn]:
    calls, conn = Calls(), Conn()
    return Session(conn, lambda tasks: None, calls.submit), calls, conn  # type: ignore[arg-type]


def _spec(
    task_id: int, name: str, deps: tuple[int, ...] = (), *, want_result: bool = False, **extra: Any
) -> TaskSpec:
    return TaskSpec(task_id, name, "f", frozenset(), ARGS, deps, want_result, **extra)


def test_consumers_get_only_the_fields_they_use_and_the_whole_where_used() -> None:
    session, calls, conn = _session()
    session.on_submit(
        SubmitBatch(
            1,
            (
                _spec(1, "src", fields=2),
                _spec(2, "a", (1,), want_result=True, uses=((1, 1),)),
                _spec(3, "b", (1,), want_result=True, uses=((1, 0), (1, 1))),
            ),
        )
    )
    calls.answer("src", pack_bundle(None, [dumps_value("zero"), dumps_value("one")]))
    ((key, blob),) = calls.started["a"]["deps"]
    assert key == -1 and loads_value(blob) == "one"
    deps = calls.started["b"]["deps"]
    assert [(k, loads_value(b)) for k, b in deps] == [(-1, "zero"), (-2, "one")]
    assert 1 not in session.tasks  # handed on to both, then let go
    assert conn.sent == []


def test_a_sink_with_used_fields_is_reported_whole() -> None:
    session, calls, conn = _session()
    session.on_submit(
        SubmitBatch(
            1,
            (
                _spec(1, "src", want_result=True, fields=1),
                _spec(2, "a", (1,), uses=((1, 0), (1, -1))),
            ),
        )
    )
    calls.answer("src", pack_bundle(dumps_value({"x": 1}), [dumps_value(1)]))
    (done,) = conn.sent
    assert isinstance(done, TaskDone) and loads_value(done.result) == {"x": 1}  # type: ignore[arg-type]
    deps = calls.started["a"]["deps"]
    assert [(k, loads_value(b)) for k, b in deps] == [(-1, 1), (1, {"x": 1})]


def test_a_missing_field_fails_its_consumer_with_a_field_error_and_it_never_runs() -> None:
    session, calls, conn = _session()
    session.on_submit(
        SubmitBatch(
            1,
            (
                _spec(1, "src", fields=1),
                _spec(2, "use", (1,), uses=((1, 0),)),
                _spec(3, "after", (2,), want_result=True),
            ),
        )
    )
    miss = FieldMiss("src.x", "'src' result has no field 'x' (stopped at dict with keys ['a'])")
    calls.answer("src", pack_bundle(None, [miss]))
    assert "use" not in calls.started and "after" not in calls.started
    reported = {m.task_id: m.error for m in conn.sent}
    assert set(reported) == {2, 3}
    error = from_info(reported[2])
    assert isinstance(error, FieldError)
    assert error.command == "use" and error.reference == "src.x"
    assert str(error) == (
        "command 'use': argument 'src.x': 'src' result has no field 'x' "
        "(stopped at dict with keys ['a'])"
    )
    assert session.tasks == {}


def test_a_malformed_bundle_fails_the_producer() -> None:
    session, calls, conn = _session()
    session.on_submit(
        SubmitBatch(1, (_spec(1, "src", fields=1), _spec(2, "use", (1,), uses=((1, 0),))))
    )
    calls.answer("src", dumps_value("not a bundle"))
    errors = [m.error for m in conn.sent]
    assert errors and isinstance(errors[0], ErrorInfo) and errors[0].kind == "protocol"
    assert "use" not in calls.started


def test_a_batch_using_fields_nobody_asked_for_is_refused_before_anything_runs() -> None:
    for uses in (((1, 1),), ((7, 0),), ((1, 0), (2, -1))):
        session, calls, conn = _session()
        session.on_submit(
            SubmitBatch(1, (_spec(1, "src", fields=1), _spec(2, "use", (1,), uses=uses)))
        )
        (rejected,) = conn.sent
        assert rejected.error.kind == "plan" and "'use'" in rejected.error.message
        assert calls.started == {} and session.tasks == {}
