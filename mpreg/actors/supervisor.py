"""Starts, watches and restarts a node's worker processes.

Each worker slot is one OS process serving one spec (an actor replica or a
plain-function worker). The restart policy:

- A process killed from outside (a signal), or one that dies after it had
  served, is restarted with exponential backoff and jitter, capped at
  ``RESTART_CAP``, and never given up on: a kill storm must not make a
  dataset vanish. The backoff starts over once a process serves again.
- A replica that served before and whose own start-up now fails (its
  ``__init__`` or import raises, or its process exits by itself before
  serving) is *crash-looping*: retried with a longer backoff capped at
  ``CRASH_CAP`` (so it costs little CPU), its error kept for status and for
  calls, which fail fast with it.
- A spec that never served and whose start-up raises is reported to whoever
  asked for it (node start, deploy) and dropped; one whose process exits by
  itself ``START_ATTEMPTS`` times before ever serving is given up on.
- An exception in the supervisor's own task (say the interpreter it spawns
  has vanished) is logged and turns the slot ``failed`` with the reason.

A *lazy* slot (a plain-function worker started on first use) is added
``idle``: no process until :meth:`Supervisor.start`. Where an eager slot that
never served would be dropped, a lazy one goes back to ``idle`` with its
start-up error in ``crash`` (for the calls that waited), to be tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from mpreg.actors.environment import child_env
from mpreg.actors.output import open_output
from mpreg.errors import ActorDiedError
from mpreg.processes import stop_processes
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import ErrorInfo, from_info
from mpreg.tasks import TaskSet
from mpreg.transport.tls import TLSFiles

log = logging.getLogger(__name__)

RESTART_BASE, RESTART_CAP = 0.05, 0.5  # seconds: after an outside kill
CRASH_BASE, CRASH_CAP = 0.5, 30.0  # seconds: after its own start-up failed
START_ATTEMPTS = 5  # exits (not kills) before a spec ever served: give up
STOP_GRACE = 3.0


class ActorState(Enum):
    IDLE = "idle"  # a lazy slot whose process is not started (yet, or again)
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    CRASH_LOOP = "crash-loop"
    FAILED = "failed"
    DEAD = "dead"


def backoff(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` consecutive failed starts: doubling, capped, jittered.

    The jitter (between half and all of the step) keeps replicas killed
    together from restarting in lockstep.
    """
    return min(cap, base * 2.0 ** min(failures, 30)) * rng.uniform(0.5, 1.0)


def describe(error: ErrorInfo) -> str:
    """A start-up error as status shows it: type, message, then the traceback."""
    text = f"{error.exc_type}: {error.message}" if error.exc_type else error.message
    if error.traceback:
        text += "\n" + error.traceback.rstrip()
    return text


@dataclass(eq=False)
class WorkerSlot:
    endpoint_id: str
    kind: str  # "actor" | "worker"
    label: str
    spec: Blob
    state: ActorState = ActorState.STARTING
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    failures: int = 0  # consecutive starts that did not reach serving
    exits: int = 0  # of those, exits by itself before the spec ever served
    last_error: str = ""  # why it last failed to start, for status
    crash: ErrorInfo | None = None  # a crash loop's start-up error, for calls
    functions: tuple[str, ...] = ()  # what it served (kept for status while it is down)
    datasets: tuple[str, ...] = ()
    retired: bool = False  # stopped on purpose (undeployed, replaced): never restarted
    lazy: bool = False  # started on first use; back to IDLE if that start fails
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<WorkerSlot {self.endpoint_id} {self.state.name} pid={pid}>"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    @property
    def served(self) -> bool:
        """Whether a process of this slot ever served (its asker was told it did)."""
        return self.ready.done() and self.ready.exception() is None


class Supervisor:
    """Owns the worker processes of one node. ``on_exit`` hears of every death.

    When ``on_exit`` is called, the slot's state says what comes next:
    RESTARTING or CRASH_LOOP (it will be restarted), FAILED or DEAD (it will
    not).
    """

    def __init__(
        self,
        node_address: Callable[[], str],
        token: str,
        on_exit: Callable[[WorkerSlot], None],
        *,
        rng: random.Random | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self._node_address = node_address
        self.token = token  # a rotation replaces it: restarted workers use the new one
        self._tls = tls or TLSFiles()  # what workers dial their node with
        self._on_exit = on_exit
        self._rng = rng or random.Random()
        self.python = sys.executable  # the interpreter workers run on
        self.slots: dict[str, WorkerSlot] = {}
        self._watchers = TaskSet("supervisor")  # one per slot: runs and restarts its process
        self._stopping = False

    def add(
        self, endpoint_id: str, kind: str, label: str, spec: Blob, *, lazy: bool = False
    ) -> WorkerSlot:
        """A slot serving ``spec``, its process started now (``lazy``: on :meth:`start`)."""
        slot = WorkerSlot(endpoint_id, kind, label, spec, lazy=lazy)
        self.slots[endpoint_id] = slot
        if lazy:
            slot.state = ActorState.IDLE
        else:
            self._watchers.spawn(self._run(slot))
        return slot

    def start(self, endpoint_id: str) -> bool:
        """Start an idle lazy slot's process; False if it is not idle (or unknown)."""
        slot = self.slots.get(endpoint_id)
        if slot is None or slot.state is not ActorState.IDLE or self._stopping:
            return False
        slot.state = ActorState.STARTING
        slot.crash = None
        slot.failures = slot.exits = 0  # each start gets the attempts a first one gets
        if slot.ready.done():  # a new attempt after a failed one
            slot.ready = asyncio.get_running_loop().create_future()
        self._watchers.spawn(self._run(slot))
        return True

    def mark_ready(self, endpoint_id: str) -> None:
        slot = self.slots.get(endpoint_id)
        if slot is None:
            return
        slot.state = ActorState.RUNNING
        slot.failures = 0
        slot.last_error = ""
        slot.crash = None
        if not slot.ready.done():
            slot.ready.set_result(None)

    def mark_failed(self, endpoint_id: str, error: ErrorInfo) -> None:
        """The slot's process reported that its start-up raised (``WorkerFailed``)."""
        slot = self.slots.get(endpoint_id)
        if slot is None:
            return
        if error.kind == "user":  # its __init__ (or module import) raised
            error = replace(error, command=f"start {slot.label}", where=endpoint_id)
        else:
            error = ErrorInfo(
                kind="actor-died", message=f"{slot.label} ({endpoint_id}): {error.message}"
            )
        if slot.served:
            # It served before, so the spec can work: keep retrying, slowly.
            self._crash_loop(slot, error)
            return
        slot.state = ActorState.FAILED
        slot.crash = error  # a lazy slot's waiting calls fail with it
        if not slot.ready.done():
            slot.ready.set_exception(from_info(error))
            slot.ready.exception()  # the deployer reads it; never "never retrieved"

    def _crash_loop(self, slot: WorkerSlot, error: ErrorInfo) -> None:
        slot.state = ActorState.CRASH_LOOP
        slot.crash = error
        slot.last_error = describe(error)

    async def _spawn(self, slot: WorkerSlot) -> asyncio.subprocess.Process:
        env = child_env(self.token, self._tls)
        out = open_output(slot.label)  # its own file, if the node logs to one
        if out is not None:
            env.setdefault("PYTHONUNBUFFERED", "1")  # a print() shows in `mpreg logs -f` at once
        try:
            return await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "mpreg.actors.worker",
                "--node",
                self._node_address(),
                "--endpoint",
                slot.endpoint_id,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        finally:
            if out is not None:
                os.close(out)

    async def _run(self, slot: WorkerSlot) -> None:
        try:
            await self._supervise(slot)
        except Exception as exc:
            # Never a silent hang: the slot says it is failed, and why.
            log.exception("supervising %s failed; it will not be restarted", slot.endpoint_id)
            reason = f"its supervisor failed: {type(exc).__name__}: {exc}"
            if isinstance(exc, OSError):  # uvloop's errors do not name the file
                reason += f" (starting {self.python})"
            slot.state = ActorState.FAILED
            slot.last_error = reason
            message = f"{slot.label} ({slot.endpoint_id}): {reason}"
            slot.crash = ErrorInfo(kind="actor-died", message=message)
            if not slot.ready.done():
                slot.ready.set_exception(ActorDiedError(message))
                slot.ready.exception()
            if slot.lazy and not slot.served:
                self._ended_unserved(slot)
            else:
                self._on_exit(slot)

    async def _supervise(self, slot: WorkerSlot) -> None:
        while not self._stopping and not slot.retired:
            slot.process = await self._spawn(slot)
            if slot.retired:  # stopped while it was being spawned
                slot.process.kill()
            log.info("started %s pid=%s", slot.endpoint_id, slot.process.pid)
            code = await slot.process.wait()
            if self._stopping or slot.retired:
                slot.state = ActorState.DEAD
                self._on_exit(slot)
                if slot.retired:
                    self.slots.pop(slot.endpoint_id, None)
                return
            if slot.state is ActorState.FAILED:
                # It never served, its start-up raised and whoever asked was
                # told: nothing to restart, nothing to show in status.
                self._ended_unserved(slot)
                return
            delay = self._after_death(slot, code)
            if delay is None:
                self._ended_unserved(slot)
                return
            slot.restarts += 1
            self._on_exit(slot)
            await asyncio.sleep(delay)

    def _ended_unserved(self, slot: WorkerSlot) -> None:
        """A start that never served was given up on: drop the slot, or idle a lazy one."""
        if slot.lazy and not self._stopping and not slot.retired:
            slot.state = ActorState.IDLE  # the next call tries again
            slot.process = None
            if slot.crash is not None:
                slot.last_error = describe(slot.crash)
            self._on_exit(slot)
            return
        self._on_exit(slot)
        self.slots.pop(slot.endpoint_id, None)

    def _after_death(self, slot: WorkerSlot, code: int) -> float | None:
        """Classify a death and set the slot's state; seconds until the restart, or None."""
        if slot.state is ActorState.RUNNING:
            # It served: whatever killed it, start again at once.
            log.warning("worker %s exited with %s; restarting", slot.endpoint_id, code)
            slot.state = ActorState.RESTARTING
            slot.failures = 0
            return backoff(0, RESTART_BASE, RESTART_CAP, self._rng)
        slot.failures += 1
        if slot.state is ActorState.CRASH_LOOP and slot.crash is not None and code >= 0:
            # Its start-up raised again (mark_failed said so before it exited).
            log.warning("worker %s is crash-looping: %s", slot.endpoint_id, slot.crash.message)
            return backoff(slot.failures - 1, CRASH_BASE, CRASH_CAP, self._rng)
        if code < 0:
            # Killed from outside during start-up: never counts toward giving up.
            if slot.state is not ActorState.CRASH_LOOP:
                slot.state = ActorState.RESTARTING
            return backoff(slot.failures, RESTART_BASE, RESTART_CAP, self._rng)
        # It exited by itself before it served (os._exit, an import crash).
        reason = f"its process exited with code {code} during start-up"
        if slot.served:
            error = ErrorInfo(
                kind="actor-died", message=f"{slot.label} ({slot.endpoint_id}): {reason}"
            )
            self._crash_loop(slot, error)
            log.warning("worker %s is crash-looping: %s", slot.endpoint_id, reason)
            return backoff(slot.failures - 1, CRASH_BASE, CRASH_CAP, self._rng)
        slot.exits += 1
        if slot.exits >= START_ATTEMPTS:
            reason = f"its process died during start-up {slot.exits} times (last exit code {code})"
            log.error("giving up on %s: %s", slot.endpoint_id, reason)
            self.mark_failed(slot.endpoint_id, ErrorInfo(kind="actor-died", message=reason))
            return None
        slot.state = ActorState.RESTARTING
        return backoff(slot.failures, RESTART_BASE, RESTART_CAP, self._rng)

    async def retire(self, endpoint_id: str, grace: float = STOP_GRACE) -> None:
        """Stop one slot for good (the node sent it Shutdown): wait for it, kill it after ``grace``.

        Its asker, if still waiting for it to serve, hears ActorDiedError.
        """
        slot = self.slots.get(endpoint_id)
        if slot is None:
            return
        slot.retired = True
        slot.state = ActorState.DEAD
        if not slot.ready.done():
            slot.ready.set_exception(ActorDiedError(f"{slot.label} ({endpoint_id}) was stopped"))
            slot.ready.exception()
        process = slot.process
        if process is not None and process.returncode is None:
            await stop_processes([process], grace=grace, what="worker", escalate=(signal.SIGKILL,))
        if process is None or process.returncode is not None:
            self.slots.pop(endpoint_id, None)  # its watcher, if between two starts, ends itself

    async def stop(self) -> None:
        """Stop every process: the node already asked them to exit; wait, then kill."""
        self._stopping = True
        procs = [
            s.process for s in self.slots.values() if s.process and s.process.returncode is None
        ]
        # The node sent Shutdown already; a worker still running past the grace
        # is stuck (in user code), and only SIGKILL stops that for sure.
        await stop_processes(procs, grace=STOP_GRACE, what="worker", escalate=(signal.SIGKILL,))
        await self._watchers.close()
