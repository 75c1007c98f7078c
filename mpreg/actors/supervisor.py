"""Starts, watches and restarts a node's worker processes.

Each worker slot is one OS process serving one spec (an actor replica or a
plain-function worker). A slot whose process exits while the node runs is
restarted with a short backoff, and its spec reloaded (an actor's dataset is
loaded again). A spec whose start-up raises is not restarted in a loop: the
failure is reported to whoever asked for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from mpreg.actors.environment import child_env
from mpreg.processes import stop_processes
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import ErrorInfo, from_info
from mpreg.tasks import TaskSet

log = logging.getLogger(__name__)

RESTART_BACKOFF = (0.05, 0.2, 0.5, 1.0, 2.0)
START_ATTEMPTS = 5  # consecutive deaths before a process ever served: give up
STOP_GRACE = 3.0


class ActorState(Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    DEAD = "dead"


@dataclass(eq=False)
class WorkerSlot:
    endpoint_id: str
    kind: str  # "actor" | "worker"
    label: str
    spec: Blob
    state: ActorState = ActorState.STARTING
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<WorkerSlot {self.endpoint_id} {self.state.name} pid={pid}>"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0


class Supervisor:
    """Owns the worker processes of one node. ``on_exit`` hears of every death."""

    def __init__(
        self, node_address: Callable[[], str], token: str, on_exit: Callable[[WorkerSlot], None]
    ) -> None:
        self._node_address = node_address
        self._token = token
        self._on_exit = on_exit
        self.slots: dict[str, WorkerSlot] = {}
        self._watchers = TaskSet("supervisor")  # one per slot: runs and restarts its process
        self._stopping = False

    def add(self, endpoint_id: str, kind: str, label: str, spec: Blob) -> WorkerSlot:
        slot = WorkerSlot(endpoint_id, kind, label, spec)
        self.slots[endpoint_id] = slot
        self._watchers.spawn(self._run(slot))
        return slot

    def mark_ready(self, endpoint_id: str) -> None:
        slot = self.slots.get(endpoint_id)
        if slot is None:
            return
        slot.state = ActorState.RUNNING
        if not slot.ready.done():
            slot.ready.set_result(None)

    def mark_failed(self, endpoint_id: str, error: ErrorInfo) -> None:
        slot = self.slots.get(endpoint_id)
        if slot is None:
            return
        slot.state = ActorState.FAILED
        if not slot.ready.done():
            if error.kind == "user":  # its __init__ (or module import) raised
                error = replace(error, command=f"start {slot.label}", where=endpoint_id)
            else:
                error = ErrorInfo(
                    kind="actor-died", message=f"{slot.label} ({endpoint_id}): {error.message}"
                )
            slot.ready.set_exception(from_info(error))
            slot.ready.exception()  # the deployer reads it; never "never retrieved"

    async def _spawn(self, slot: WorkerSlot) -> asyncio.subprocess.Process:
        env = child_env(self._token)
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mpreg.actors.worker",
            "--node",
            self._node_address(),
            "--endpoint",
            slot.endpoint_id,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )

    async def _run(self, slot: WorkerSlot) -> None:
        attempt = 0
        while not self._stopping:
            slot.process = await self._spawn(slot)
            log.info("started %s pid=%s", slot.endpoint_id, slot.process.pid)
            code = await slot.process.wait()
            if slot.state is ActorState.FAILED:
                # Its start-up raised and whoever asked was told: nothing to
                # restart, nothing to show in status.
                self._on_exit(slot)
                del self.slots[slot.endpoint_id]
                return
            if self._stopping:
                slot.state = ActorState.DEAD
                self._on_exit(slot)
                return
            # A replica that was serving restarts at once; one that keeps dying
            # during start-up backs off, and after a few tries is given up on.
            attempt = 0 if slot.state is ActorState.RUNNING else attempt + 1
            if attempt >= START_ATTEMPTS:
                reason = f"its process died during start-up {attempt} times (last exit code {code})"
                log.error("giving up on %s: %s", slot.endpoint_id, reason)
                self.mark_failed(slot.endpoint_id, ErrorInfo(kind="actor-died", message=reason))
                self._on_exit(slot)
                del self.slots[slot.endpoint_id]
                return
            log.warning("worker %s exited with %s; restarting", slot.endpoint_id, code)
            slot.state = ActorState.RESTARTING
            slot.restarts += 1
            self._on_exit(slot)
            await asyncio.sleep(RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)])

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
