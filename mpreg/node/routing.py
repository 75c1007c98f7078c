"""Routing table: which live endpoints can run (function, datasets), and which one should.

Every node keeps one :class:`RoutingTable` of the actors and plain-function
workers the cluster advertises (its own and its peers'). A call for ``fun``
with datasets ``D`` may run on an endpoint that serves ``fun`` and owns a
superset of ``D`` (``D`` empty: any endpoint serving ``fun``). Among those,
:meth:`RoutingTable.choose` balances load: fewest outstanding calls, random
tie-break. Before a request runs, :meth:`RoutingTable.check` proves every task
has somewhere to go, so an unroutable request fails whole, with a message that
says what is missing.

A node whose membership is in doubt (its link closed, or it stopped answering
probes) is *unreachable*: its endpoints stay known, as suspended ones do,
until it answers again or is declared dead and removed.

An endpoint whose process is restarting is *suspended*: it stays known, so
``check()`` still passes for what it offers and calls wait for it instead of
failing, but ``choose()`` never picks it until it is resumed. A suspended
endpoint may carry an error (its start-up keeps failing: a crash loop); when
every match of a call is suspended with an error, :meth:`RoutingTable.crash`
gives it, so the call fails fast with it instead of waiting.

An endpoint whose process is not started yet (a plain-function worker
started on first use) is *cold*: it is routed to like any other, and its node
starts the process when the first call reaches it, but among equally loaded
matches :meth:`RoutingTable.choose` prefers a warm one, so calls made one
after another keep going to the process already running.

Endpoints are indexed by function name, so ``choose()`` (on the hot path of
every call) costs O(replicas of fun), not O(all endpoints). Pure: no sockets,
no asyncio, no clock; the caller brackets each call with ``begin``/``end``.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Iterable
from typing import Protocol

from mpreg.errors import NoRouteError, UnknownFunctionError
from mpreg.protocol.messages import Endpoint, ErrorInfo


class RoutableTask(Protocol):
    """What check() reads of a task: a planned task or a task on the wire."""

    @property
    def name(self) -> str: ...
    @property
    def fun(self) -> str: ...
    @property
    def datasets(self) -> frozenset[str]: ...


# How many distinct dataset sets a NoRouteError lists before summarising.
_MAX_LISTED_OFFERS = 8


class RoutingTable:
    """The cluster's endpoints, indexed for routing, with per-endpoint load.

    ``rng`` breaks ties between equally loaded replicas; pass a seeded
    ``random.Random`` for reproducible tests.
    """

    __slots__ = (
        "_by_fun",
        "_cold",
        "_endpoints",
        "_outstanding",
        "_reported",
        "_rng",
        "_suspended",
        "_unreachable",
    )

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._endpoints: dict[str, Endpoint] = {}
        # fun -> endpoint_id -> endpoint; insertion-ordered so results are stable.
        self._by_fun: dict[str, dict[str, Endpoint]] = {}
        # Invariant: keys are exactly the ids in _endpoints.
        self._outstanding: dict[str, int] = {}
        # endpoint_id -> why it cannot start (None: it is just restarting).
        self._suspended: dict[str, ErrorInfo | None] = {}
        # Node ids whose endpoints choose() skips (suspected, or their link is down).
        self._unreachable: set[str] = set()
        # endpoint_id -> calls outstanding on it as its own node last advertised
        # (everyone's calls, a second or two old); only peers' endpoints have one.
        self._reported: dict[str, int] = {}
        self._cold: set[str] = set()  # endpoint ids whose process is not started

    def __len__(self) -> int:
        return len(self._endpoints)

    def __repr__(self) -> str:
        return (
            f"RoutingTable(endpoints={len(self._endpoints)}, functions={len(self._by_fun)}, "
            f"suspended={len(self._suspended)})"
        )

    def add(self, endpoint: Endpoint) -> None:
        """Add ``endpoint`` as live, replacing one with the same id (its load count is kept)."""
        endpoint_id = endpoint.endpoint_id
        self._suspended.pop(endpoint_id, None)
        if endpoint_id in self._endpoints:
            self._unindex(self._endpoints[endpoint_id])
        self._endpoints[endpoint_id] = endpoint
        self._outstanding.setdefault(endpoint_id, 0)
        for fun in endpoint.functions:
            self._by_fun.setdefault(fun, {})[endpoint_id] = endpoint

    def remove(self, endpoint_id: str) -> None:
        """Drop an endpoint and its load count; no error if it is absent."""
        endpoint = self._endpoints.pop(endpoint_id, None)
        if endpoint is None:
            return
        self._unindex(endpoint)
        del self._outstanding[endpoint_id]
        self._suspended.pop(endpoint_id, None)
        self._reported.pop(endpoint_id, None)
        self._cold.discard(endpoint_id)

    def set_cold(self, endpoint_id: str, cold: bool) -> None:
        """Mark a known endpoint's process as not started (``cold``) or running."""
        if cold and endpoint_id in self._endpoints:
            self._cold.add(endpoint_id)
        else:
            self._cold.discard(endpoint_id)

    def is_cold(self, endpoint_id: str) -> bool:
        return endpoint_id in self._cold

    def cold(self, node_id: str) -> list[str]:
        """Ids of the cold endpoints hosted on ``node_id``."""
        return [eid for eid in self._cold if self._endpoints[eid].node_id == node_id]

    def suspend(self, endpoint_id: str, error: ErrorInfo | None = None) -> bool:
        """Keep a known endpoint but pick it no more (its process restarts).

        ``error`` says why it cannot start (a crash loop); suspending again
        updates it. Returns True if the endpoint was live until now; an unknown
        id is ignored.
        """
        if endpoint_id not in self._endpoints:
            return False
        was_live = endpoint_id not in self._suspended
        self._suspended[endpoint_id] = error
        return was_live

    def resume(self, endpoint_id: str) -> bool:
        """Make a suspended endpoint choosable again; True if it was suspended."""
        if endpoint_id not in self._suspended:
            return False
        del self._suspended[endpoint_id]
        return True

    def is_suspended(self, endpoint_id: str) -> bool:
        return endpoint_id in self._suspended

    def suspension(self, endpoint_id: str) -> ErrorInfo | None:
        """Why a suspended endpoint cannot start (a crash loop); None if it just restarts."""
        return self._suspended.get(endpoint_id)

    def suspended(self, node_id: str) -> list[str]:
        """Ids of the suspended endpoints hosted on ``node_id``."""
        return [eid for eid in self._suspended if self._endpoints[eid].node_id == node_id]

    def set_reachable(self, node_id: str, reachable: bool) -> None:
        """Route to ``node_id``'s endpoints again, or stop choosing them (they stay known)."""
        if reachable:
            self._unreachable.discard(node_id)
        else:
            self._unreachable.add(node_id)

    def report_load(self, endpoint_id: str, load: int) -> None:
        """The load a peer advertised for its endpoint: all its callers', not just ours."""
        if endpoint_id not in self._endpoints:
            return
        if load > 0:
            self._reported[endpoint_id] = load
        else:
            self._reported.pop(endpoint_id, None)

    def is_reachable(self, node_id: str) -> bool:
        return node_id not in self._unreachable

    def crash(self, fun: str, datasets: frozenset[str]) -> ErrorInfo | None:
        """The start-up error of a crash loop, if every match for the call has one.

        ``None`` when some match is live or only restarting (the call should
        go there or wait), or when nothing matches at all.
        """
        error: ErrorInfo | None = None
        for endpoint in self.candidates(fun, datasets):
            reason = self._suspended.get(endpoint.endpoint_id)
            if reason is None:
                return None
            error = reason
        return error

    def remove_node(self, node_id: str) -> list[str]:
        """Drop every endpoint hosted on ``node_id``; return their ids."""
        gone = [ep.endpoint_id for ep in self._endpoints.values() if ep.node_id == node_id]
        for endpoint_id in gone:
            self.remove(endpoint_id)
        self._unreachable.discard(node_id)
        return gone

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, in the order they were first added."""
        return list(self._endpoints.values())

    def get(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint with that id, or ``None``."""
        return self._endpoints.get(endpoint_id)

    def offers(self, fun: str) -> bool:
        """Whether any endpoint serves ``fun``, whatever its datasets."""
        return fun in self._by_fun

    def candidates(self, fun: str, datasets: frozenset[str]) -> list[Endpoint]:
        """Endpoints serving ``fun`` that own every dataset in ``datasets``."""
        serving = self._by_fun.get(fun)
        if not serving:
            return []
        if not datasets:
            return list(serving.values())
        return [ep for ep in serving.values() if datasets <= ep.datasets]

    def choose(
        self,
        fun: str,
        datasets: frozenset[str],
        *,
        exclude: frozenset[str] = frozenset(),
        near: str = "",
    ) -> Endpoint | None:
        """Pick the matching endpoint with the fewest outstanding calls.

        A peer's endpoint counts the larger of our calls on it and the load
        its node last advertised (every caller's). Endpoints whose id is in
        ``exclude`` (e.g. one that just failed) are skipped, and so are
        suspended ones and those of unreachable nodes. Ties go to an endpoint
        on node ``near`` (where the call's big argument is held), else are
        broken at random, a warm endpoint winning over a cold one. Returns
        ``None`` if nothing matches.
        """
        serving = self._by_fun.get(fun)
        if not serving:
            return None
        outstanding = self._outstanding
        suspended = self._suspended
        unreachable = self._unreachable
        reported = self._reported
        best: list[Endpoint] = []
        least = 0
        for endpoint_id, endpoint in serving.items():
            if (
                endpoint_id in exclude
                or endpoint_id in suspended
                or not datasets <= endpoint.datasets
                or (unreachable and endpoint.node_id in unreachable)
            ):
                continue
            load = outstanding[endpoint_id]
            if reported:
                # Our own count is fresh but sees only our calls; the owner's figure
                # sees every caller's but is a little old: the larger is the better guess.
                load = max(load, reported.get(endpoint_id, 0))
            if not best or load < least:
                best = [endpoint]
                least = load
            elif load == least:
                best.append(endpoint)
        if not best:
            return None
        if self._cold and len(best) > 1:
            best = [e for e in best if e.endpoint_id not in self._cold] or best
        if near and len(best) > 1:
            best = [e for e in best if e.node_id == near] or best
        if len(best) == 1:
            return best[0]
        return best[self._rng.randrange(len(best))]

    def begin(self, endpoint_id: str) -> None:
        """Count one more outstanding call on an endpoint (ignored if it is gone)."""
        if endpoint_id in self._outstanding:
            self._outstanding[endpoint_id] += 1

    def end(self, endpoint_id: str) -> None:
        """Count one fewer outstanding call; never below 0, ignored if it is gone."""
        load = self._outstanding.get(endpoint_id)
        if load:
            self._outstanding[endpoint_id] = load - 1

    def outstanding(self, endpoint_id: str) -> int:
        """Outstanding calls on an endpoint (0 if unknown)."""
        return self._outstanding.get(endpoint_id, 0)

    def check(self, tasks: Iterable[RoutableTask]) -> None:
        """Raise for the first of ``tasks`` that no endpoint can run.

        Suspended endpoints count: a pair whose replicas are restarting stays
        routable (its calls wait for them).

        Raises :class:`UnknownFunctionError` if nothing serves the task's
        function at all, and :class:`NoRouteError` if something serves it but
        not with all the task's datasets (the message lists the dataset sets
        that do offer the function).
        """
        for task in tasks:
            serving = self._by_fun.get(task.fun)
            wanted = tuple(sorted(task.datasets))
            if not serving:
                raise UnknownFunctionError(
                    f"command {task.name!r}: no process in the cluster serves "
                    f"function {task.fun!r}{_did_you_mean(task.fun, self._by_fun)}",
                    command=task.name,
                    fun=task.fun,
                    datasets=wanted,
                )
            if task.datasets and not any(task.datasets <= ep.datasets for ep in serving.values()):
                raise NoRouteError(
                    f"command {task.name!r}: no live process serves function {task.fun!r} "
                    f"with datasets {list(wanted)}; {_describe_offers(task.fun, serving)}"
                    f"{self._unknown_datasets(task.datasets)}",
                    command=task.name,
                    fun=task.fun,
                    datasets=wanted,
                )

    def _unknown_datasets(self, datasets: frozenset[str]) -> str:
        """ "; no process anywhere has dataset 'irsi' (did you mean 'iris'?)", or ""."""
        known = {d for ep in self._endpoints.values() for d in ep.datasets}
        missing = sorted(datasets - known)
        if not missing:
            return ""
        hints = "".join(_did_you_mean(d, known) for d in missing)
        return (
            f"; no process anywhere has dataset {missing[0]!r}"
            + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
            + hints
        )

    def _unindex(self, endpoint: Endpoint) -> None:
        for fun in endpoint.functions:
            serving = self._by_fun.get(fun)
            if serving is None:
                continue
            serving.pop(endpoint.endpoint_id, None)
            if not serving:
                del self._by_fun[fun]


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """ " (did you mean 'predict'?)" for a close spelling among ``known``, else ""."""
    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _describe_offers(fun: str, serving: dict[str, Endpoint]) -> str:
    """Say which dataset sets do offer ``fun``, e.g. "'predict' is offered with ['iris'] (x2)"."""
    counts: dict[tuple[str, ...], int] = {}
    for endpoint in serving.values():
        key = tuple(sorted(endpoint.datasets))
        counts[key] = counts.get(key, 0) + 1
    offers = sorted(counts.items())
    shown = [
        f"{list(key)}" + (f" (x{count})" if count > 1 else "")
        for key, count in offers[:_MAX_LISTED_OFFERS]
    ]
    if len(offers) > _MAX_LISTED_OFFERS:
        shown.append(f"and {len(offers) - _MAX_LISTED_OFFERS} more")
    return f"{fun!r} is offered with datasets: " + ", ".join(shown)


__all__ = ["RoutingTable"]
