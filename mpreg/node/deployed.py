"""This node's part of each deployment: its replicas of every version, started, switched, stopped.

A version's replicas start *staged* (they serve, nobody routes to them);
:meth:`Deployed.switch` routes to them and takes the other versions of the
same name out of routing at once, then drains them (calls already running
finish) and stops their processes. The node that took the deploy
(:mod:`mpreg.node.deployments`) drives these steps on every member.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from mpreg.errors import ActorDiedError
from mpreg.node.workers import Workers
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import DeployStart, Reply
from mpreg.tasks import TaskSet

log = logging.getLogger(__name__)

DRAIN_POLL = 0.02  # seconds between two looks at a retired version's calls in flight
DRAIN_TIMEOUT = 300.0  # a call still running after this is cut off with its process


@dataclass(eq=False)
class Version:
    """This node's replicas of one version of a deployment."""

    name: str
    deploy_id: str
    version: int
    owner: str  # node id of the node whose driver owns it
    detached: bool
    endpoint_ids: list[str] = field(default_factory=list)


class Deployed:
    """The deployments' replicas on one node, by name, then by version id."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.versions: dict[str, dict[str, Version]] = {}
        self._tasks = TaskSet("deployed")  # drains of retired versions

    def __repr__(self) -> str:
        return f"<Deployed {sorted(self.versions)}>"

    def latest(self, name: str) -> int:
        """The highest version number of ``name`` here (0: none)."""
        return max((v.version for v in self.versions.get(name, {}).values()), default=0)

    async def start(self, message: DeployStart) -> Reply:
        """Start this node's replicas of a version; reply with their ids once all serve.

        If one fails to start, all of them stop and the reply carries its error.
        """
        label = f"{message.name} v{message.version}"
        version = Version(
            message.name, message.deploy_id, message.version, message.owner, message.detached
        )
        self.versions.setdefault(message.name, {})[message.deploy_id] = version
        slots = [
            self.workers.add_slot(message.kind, label, message.spec, staged=True, name=message.name)
            for _ in range(message.replicas)
        ]
        version.endpoint_ids = [slot.endpoint_id for slot in slots]
        try:
            await asyncio.gather(*(slot.ready for slot in slots))
        except Exception as exc:
            await self.stop(message.name, message.deploy_id)
            return Reply(message.request_id, None, to_info(exc))
        if self.versions.get(message.name, {}).get(message.deploy_id) is not version:
            # Undeployed while it started (its driver left): say so.
            error = ActorDiedError(f"deployment {message.name} was stopped while it started")
            return Reply(message.request_id, None, to_info(error))
        return Reply(message.request_id, tuple(version.endpoint_ids))

    def switch(self, request_id: int, name: str, deploy_id: str) -> Reply:
        """Route to ``deploy_id`` now; unroute the other versions, drain and stop them.

        Replies with the ids of the endpoints taken out of routing.
        """
        versions = self.versions.get(name, {})
        current = versions.get(deploy_id)
        if current is not None:
            self.workers.activate(current.endpoint_ids)
        old = [v for v in versions.values() if v is not current]
        retired = self._unroute(old)
        return Reply(request_id, tuple(retired))

    async def stop(self, name: str, deploy_id: str = "") -> list[str]:
        """Stop version ``deploy_id`` of ``name`` (every version if empty), draining calls.

        Returns the endpoint ids stopped, once their processes have exited.
        """
        versions = self.versions.get(name, {})
        chosen = [v for v in versions.values() if not deploy_id or v.deploy_id == deploy_id]
        ids = self._unroute(chosen, drain=False)
        await self._drain_and_retire(ids)
        return ids

    def owner_gone(self, node_id: str) -> None:
        """The node whose driver owned some versions here died: stop those not detached."""
        for versions in list(self.versions.values()):
            gone = [v for v in versions.values() if v.owner == node_id and not v.detached]
            if gone:
                log.info("stopping %s: the node that deployed it is gone", gone[0].name)
                self._unroute(gone)

    async def close(self) -> None:
        await self._tasks.close()

    def _unroute(self, versions: list[Version], *, drain: bool = True) -> list[str]:
        """Forget ``versions`` and take their endpoints out of routing (then drain them)."""
        ids: list[str] = []
        for version in versions:
            by_id = self.versions.get(version.name, {})
            by_id.pop(version.deploy_id, None)
            if not by_id:
                self.versions.pop(version.name, None)
            ids += version.endpoint_ids
        if ids:
            self.workers.unroute(ids)
            if drain:
                self._tasks.spawn(self._drain_and_retire(ids))
        return ids

    async def _drain_and_retire(self, endpoint_ids: list[str]) -> None:
        """Let the calls running on these endpoints finish, then stop their processes."""
        wanted = set(endpoint_ids)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            if not self.workers.busy(wanted):
                break
            await asyncio.sleep(DRAIN_POLL)
        await self.workers.retire(endpoint_ids)
