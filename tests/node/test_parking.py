"""The dispatcher and restarting replicas: calls wait for a suspended endpoint, or fail fast.

Pure: a routing table and a fake send, no sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.messages import Call, Endpoint, ErrorInfo

ARGS = dumps_value(((1,), {}))
CRASH = ErrorInfo(
    kind="user",
    message="dataset file missing",
    exc_type="RuntimeError",
    traceback="Traceback ...\n  in __init__\nRuntimeError: dataset file missing",
    command="start A",
    where="n/a",
)


class Harness:
    def __init__(self, *names: str) -> None:
        self.routes = RoutingTable()
        for name in names:
            self.routes.add(
                Endpoint(f"n/{name}", "n", "actor", frozenset({"f"}), frozenset(), name)
            )
        self.sent: list[tuple[str, Call]] = []
        self.done: list[tuple[Any, ErrorInfo | None, str]] = []
        self.dispatcher = CallDispatcher(self.routes, self._send)

    def _send(self, endpoint: Endpoint, call: Call, hold: bool = False) -> bool:
        self.sent.append((endpoint.endpoint_id, call))
        return True

    def submit(self) -> None:
        self.dispatcher.submit(
            fun="f",
            datasets=frozenset(),
            args=ARGS,
            deps=(),
            command="c",
            retries=3,
            on_done=lambda r, e, w: self.done.append((r, e, w)),
        )


async def test_a_new_call_waits_while_every_replica_restarts() -> None:
    h = Harness("a", "b")
    h.routes.suspend("n/a")
    h.routes.suspend("n/b")
    h.submit()
    assert h.done == [] and h.sent == [] and len(h.dispatcher.parked) == 1
    h.routes.resume("n/b")
    h.dispatcher.endpoints_added()
    assert [eid for eid, _ in h.sent] == ["n/b"] and not h.dispatcher.parked


async def test_a_call_for_a_crash_looping_pair_fails_fast_with_the_start_up_error() -> None:
    h = Harness("a")
    h.routes.suspend("n/a")
    h.submit()
    assert len(h.dispatcher.parked) == 1
    h.routes.suspend("n/a", CRASH)  # its restart's __init__ raised
    h.dispatcher.endpoints_added()
    ((_, error, where),) = h.done
    assert error is not None and error.kind == "user" and error.command == "c"
    assert "in __init__" in error.traceback and where == "n/a"
    h.submit()  # and the next one at once
    assert len(h.done) == 2 and not h.dispatcher.parked


async def test_a_waiting_call_fails_when_its_endpoints_are_removed_for_good() -> None:
    h = Harness("a")
    h.routes.suspend("n/a")
    h.submit()
    h.routes.remove("n/a")
    h.dispatcher.endpoints_added()
    ((_, error, _),) = h.done
    assert error is not None and error.kind == "no-route"


async def test_a_waiting_call_ends_at_its_own_deadline() -> None:
    h = Harness("a")
    h.routes.suspend("n/a")
    h.dispatcher.submit(
        fun="f",
        datasets=frozenset(),
        args=ARGS,
        deps=(),
        command="c",
        retries=3,
        on_done=lambda r, e, w: h.done.append((r, e, w)),
    )
    record, _timer = next(iter(h.dispatcher.parked.values()))
    record.call = Call(record.call.call_id, "f", ARGS, (), "c", deadline=time.time() + 0.1)
    record.park_deadline = 0.0
    h.dispatcher.endpoints_added()  # parks again, now bounded by the call's deadline
    async with asyncio.timeout(2):
        while not h.done:  # noqa: ASYNC110 - the park timer fires on this loop
            await asyncio.sleep(0.01)  # ok-sleep: polling, bounded by the timeout
    ((_, error, _),) = h.done
    assert error is not None and error.kind == "deadline"
