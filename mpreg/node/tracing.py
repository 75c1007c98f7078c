"""The timing of one task of a traced request (``SubmitBatch.trace``), kept by its session.

Only traced batches get a :class:`TaskClock`: an untraced request pays one
``is None`` test per task. Times are ``time.perf_counter()`` seconds made
relative to the moment the session took the batch, so the driver can line up
the tasks of one request on one clock (the clock of the node that ran the
session, whichever nodes ran the calls).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Held, TaskSpec, TaskTrace


@dataclass(eq=False, slots=True)
class TaskClock:
    origin: float  # perf_counter() when the session took the batch
    ready: float = 0.0
    bytes_in: int = 0
    call: object = None  # the dispatcher's record of the call (``InFlight``), once started
    # A fused chain's step: when it ran inside its call (perf_counter; mpreg.node.fusion).
    span: tuple[float, float] | None = None

    def started(self, spec: TaskSpec, deps: list[tuple[int, Blob | Held]]) -> None:
        """Its dependencies are done and the call goes to the dispatcher now."""
        self.ready = time.perf_counter()
        self.bytes_in = spec.args.nbytes + sum(blob.nbytes for _, blob in deps)

    def record(self, spec: TaskSpec, where: str, result: Blob | Held | None, ok: bool) -> TaskTrace:
        """The task's trace, now that its answer came."""
        now = time.perf_counter()
        # The dispatcher's record says when the last attempt went to its process
        # and how many retries are left (it counts them down).
        sent = float(getattr(self.call, "started", 0.0) or 0.0)
        if self.span is not None:
            sent, now = self.span
        left = int(getattr(self.call, "retries", spec.retries))
        origin = self.origin
        return TaskTrace(
            task_id=spec.task_id,
            where=where,
            ready=self.ready - origin if self.ready else 0.0,
            sent=sent - origin if sent else 0.0,
            finished=now - origin,
            bytes_in=self.bytes_in,
            bytes_out=result.nbytes if result is not None else 0,
            retries=max(0, spec.retries - left),
            ok=ok,
        )
