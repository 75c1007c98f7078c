"""Deployments a client asked this node for: placed, started and switched to cluster-wide.

The node a driver is connected to takes its ``Deploy``: it places the
replicas (spread over the live members, or over the named ``nodes``), has
every chosen member start its share *staged* (``DeployStart``), and only when
all serve switches every member hosting the name to the new version
(``DeploySwitch``): the new replicas are routed to, the old version's are
taken out of routing, drained (their running calls finish) and stopped. It
answers once its own routing table shows the switch, so the driver's next
call reaches the new version only. If any replica fails to start, every
member stops its share and the driver gets the error (an ``__init__``
traceback). During the switch itself (the milliseconds between the first and
the last member switching) a call routed elsewhere may still reach either.

A deployment belongs to the driver's session unless it is detached: when the
session closes (the driver exits, is killed, or its link drops) this node
undeploys it everywhere. If this node dies, the members hosting replicas see
it declared dead and stop the versions it owned (``Deployed.owner_gone``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mpreg.errors import ClusterUnavailable, PlanError
from mpreg.membership import MemberState
from mpreg.node.deployed import Deployed
from mpreg.node.peering import Peering
from mpreg.node.routing import RoutingTable
from mpreg.protocol.failures import ErrorInfo, to_info
from mpreg.protocol.messages import Deploy, DeployStart, DeploySwitch, Reply, Undeploy
from mpreg.transport.connection import ConnState
from mpreg.transport.replies import PendingReplies

log = logging.getLogger(__name__)

SWITCH_SEEN_TIMEOUT = 10.0  # seconds to wait for this node's table to show a switch
SEEN_POLL = 0.01

Owned = dict[str, str]  # name -> deploy_id of the version a session deployed


class Deployments:
    """The deploys this node coordinates, and which client session owns each."""

    def __init__(
        self,
        node_id: str,
        deployed: Deployed,
        peering: Peering,
        routes: RoutingTable,
        replies: PendingReplies,
    ) -> None:
        self.node_id = node_id
        self.deployed = deployed
        self.peering = peering
        self.routes = routes
        self.replies = replies  # shared with status: a peer's Reply resolves either
        self.owned: dict[object, Owned] = {}  # client session -> what it owns
        self._alive: set[str] = set()

    def __repr__(self) -> str:
        return f"<Deployments owners={len(self.owned)}>"

    # --- the driver's questions -----------------------------------------------------

    async def deploy(self, owner: object, message: Deploy, open_: Callable[[], bool]) -> Reply:
        """Deploy ``message`` cluster-wide for session ``owner``; the Reply the driver awaits."""
        rid, name = message.request_id, message.label
        try:
            targets = self._place(message.nodes)
        except PlanError as exc:
            return Reply(rid, None, to_info(exc))
        share = {node_id: 0 for node_id in targets}
        for i in range(message.replicas or len(targets)):  # 0: one on each
            share[targets[i % len(targets)]] += 1
        deploy_id = secrets.token_hex(6)
        version = 1 + self.deployed.latest(name)
        start = {
            node_id: DeployStart(
                0,
                name,
                deploy_id,
                version,
                message.kind,
                count,
                message.spec,
                self.node_id,
                message.detached,
            )
            for node_id, count in share.items()
            if count
        }
        replies = await asyncio.gather(*(self._ask(n, m) for n, m in start.items()))
        failed = next((r.error for r in replies if r.error is not None), None)
        if failed is None and not open_() and not message.detached:
            failed = to_info(ClusterUnavailable("the driver left during its deploy"))
        if failed is not None:
            await self._everywhere(Undeploy(0, name, deploy_id, local=True))
            return Reply(rid, None, failed)
        for owned in self.owned.values():  # the version it replaces is no one's any more
            owned.pop(name, None)
        if not message.detached:  # from now on, its driver leaving undeploys it
            self.owned.setdefault(owner, {})[name] = deploy_id
        new_ids = {eid for r in replies for eid in r.value}  # type: ignore[attr-defined]
        switched = await self._everywhere(DeploySwitch(0, name, deploy_id))
        old_ids = {eid for r in switched if r.error is None for eid in r.value}  # type: ignore[attr-defined]
        await self._seen(new_ids, old_ids)
        if not open_() and owner in self.owned:  # it left during the switch
            await self.session_closed(owner)
        value = {
            "name": name,
            "version": version,
            "deploy_id": deploy_id,
            "endpoints": tuple(sorted(new_ids)),
            "detached": message.detached,
        }
        return Reply(rid, value)

    async def undeploy(self, message: Undeploy) -> Reply:
        """Stop ``message.name`` on every member (or only here if ``local``); count stopped."""
        if message.local:
            here = await self.deployed.stop(message.name, message.deploy_id)
            return Reply(message.request_id, tuple(here))
        for owned in self.owned.values():
            if not message.deploy_id or owned.get(message.name) == message.deploy_id:
                owned.pop(message.name, None)
        local = Undeploy(0, message.name, message.deploy_id, local=True)
        answers = await self._everywhere(local)
        stopped = {eid for r in answers if isinstance(r.value, tuple) for eid in r.value}
        await self._seen(set(), stopped)  # the driver's next call finds it gone
        count = len(stopped)
        if count == 0:
            error = PlanError(f"no deployment named {message.name!r} serves in the cluster")
            return Reply(message.request_id, None, to_info(error))
        return Reply(message.request_id, count)

    # --- lifetime -------------------------------------------------------------------

    async def session_closed(self, owner: object) -> None:
        """The driver of ``owner`` left: undeploy what it owns (not the detached ones)."""
        owned = self.owned.pop(owner, {})
        for name, deploy_id in owned.items():
            log.info("undeploying %s: its driver left", name)
            await self._everywhere(Undeploy(0, name, deploy_id, local=True))

    def members_changed(self) -> None:
        """Stop the versions owned by members declared dead (their drivers are gone)."""
        members = self.peering.members()
        alive = {m.info.node_id for m in members if m.state is not MemberState.DEAD}
        dead = {m.info.node_id for m in members if m.state in (MemberState.DEAD, MemberState.LEFT)}
        for node_id in dead & self._alive:
            self.deployed.owner_gone(node_id)
        self._alive = alive - dead

    # --- internals ------------------------------------------------------------------

    def _live(self) -> dict[str, str]:
        """node_id -> name of this node and every member alive now."""
        members = self.peering.members()
        live = {m.info.node_id: m.info.name for m in members if m.state is MemberState.ALIVE}
        live.setdefault(self.node_id, self.node_id)
        return live

    def _place(self, names: tuple[str, ...]) -> list[str]:
        """The node ids to spread over: this node first, then the others by name."""
        live = self._live()
        ordered = sorted(live, key=lambda n: (n != self.node_id, live[n]))
        if not names:
            return ordered
        by_name = {name: node_id for node_id, name in live.items()}
        unknown = [n for n in names if n not in by_name and n not in live]
        if unknown:
            raise PlanError(f"no live member named {unknown}; members: {sorted(by_name)}")
        return [by_name.get(n, n) for n in names]

    async def _everywhere(self, message: Undeploy | DeploySwitch) -> list[Reply]:
        """Ask this node and every live member the same question; their replies."""
        return list(await asyncio.gather(*(self._ask(n, message) for n in self._live())))

    async def _ask(self, node_id: str, message: DeployStart | DeploySwitch | Undeploy) -> Reply:
        """The Reply of ``node_id`` (this node: answered here) to ``message``."""
        if node_id == self.node_id:
            return await self.answer(message)
        conn = self.peering.link_for(node_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return Reply(0, None, _lost(node_id))
        async with self.replies.expect() as (rid, future):
            conn.send(_with_id(message, rid))
            waiters: set[asyncio.Future[Any]] = {future, conn.closed}
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if future in done:
                return future.result()
            return Reply(rid, None, _lost(node_id))

    async def answer(self, message: DeployStart | DeploySwitch | Undeploy) -> Reply:
        """This node's own answer to a deployment step (also what a peer's question gets)."""
        match message:
            case DeployStart():
                return await self.deployed.start(message)
            case DeploySwitch(request_id=rid, name=name, deploy_id=deploy_id):
                return self.deployed.switch(rid, name, deploy_id)
            case Undeploy():
                return await self.undeploy(message)

    async def _seen(self, new_ids: set[str], old_ids: set[str]) -> None:
        """Wait (bounded) until this node routes to every new endpoint and to no old one."""
        deadline = time.monotonic() + SWITCH_SEEN_TIMEOUT
        while time.monotonic() < deadline:
            if all(self.routes.get(e) is not None for e in new_ids) and not any(
                self.routes.get(e) is not None for e in old_ids
            ):
                return
            await asyncio.sleep(SEEN_POLL)
        log.warning("this node's routing did not show the switch within %gs", SWITCH_SEEN_TIMEOUT)


def _with_id(message: DeployStart | DeploySwitch | Undeploy, rid: int) -> object:
    return replace(message, request_id=rid)


def _lost(node_id: str) -> ErrorInfo:
    return to_info(ClusterUnavailable(f"lost the link to member {node_id} during a deploy"))
