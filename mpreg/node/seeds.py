"""Seeds: the addresses a joining node tries, and joining through the first that answers.

``--join A,B,C`` (``MPREG_JOIN``, a config file's ``peers``) names seeds, each
``host:port``. A host that is a DNS name may resolve to several addresses (a
Kubernetes headless service resolves to every ready pod): each A/AAAA record
is a candidate, in the order the resolver gives them, and this node's own
address is skipped. The candidates are tried in turn, each for a bounded
time (the node gives its ``JOIN_TIMEOUT``); the node joins through the first that answers and
the mesh logic (:mod:`mpreg.node.peering`) dials everyone that one knows.
Only if none answers does the join fail, with a
:class:`~mpreg.errors.JoinFailed` naming every candidate tried and why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass

from mpreg.errors import AuthenticationError, JoinFailed
from mpreg.transport.connection import parse_address

log = logging.getLogger(__name__)

Join = Callable[[str], Awaitable[None]]


def split_seeds(seeds: str | Iterable[str]) -> tuple[str, ...]:
    """``"a:7773, b:7773"`` (or several such strings) as single seeds, in order, once each.

    Raises ValueError naming a seed that is not a ``host:port`` address.
    """
    items = [seeds] if isinstance(seeds, str) else list(seeds)
    found: list[str] = []
    for item in items:
        for seed in (part.strip() for part in item.split(",")):
            if not seed:
                continue
            parse_address(seed)  # ValueError says what is wrong with it
            if seed not in found:
                found.append(seed)
    return tuple(found)


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:7773``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One seed address that did not answer, and why (for the JoinFailed message)."""

    seed: str
    candidate: str  # the resolved address tried; "" when the seed did not resolve
    error: str

    def __str__(self) -> str:
        if not self.candidate:
            return f"{self.seed} ({self.error})"
        if self.candidate == self.seed:
            return f"{self.candidate} ({self.error})"
        return f"{self.seed} -> {self.candidate} ({self.error})"


async def resolve(seed: str) -> list[str]:
    """Every address ``seed``'s host resolves to, as ``ip:port``, in resolver order.

    Uses the event loop's getaddrinfo (a literal address resolves without a
    lookup). Raises OSError (``socket.gaierror``) if the name does not resolve.
    """
    host, port = parse_address(seed)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = format_address(str(sockaddr[0]), port)
        if address not in found:
            found.append(address)
    return found


def _why(exc: Exception) -> str:
    """Why a seed did not answer, shortest first: "connection refused" over asyncio's text."""
    if isinstance(exc, AuthenticationError):
        return str(exc)  # a refusal (token, TLS) says which side is wrong: keep all of it
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno:
            return os.strerror(error.errno).lower()
    return str(exc) or type(exc).__name__


async def _own_addresses(own: Iterable[str]) -> set[str]:
    """This node's addresses, resolved the way seeds are (a name it advertises included)."""
    found: set[str] = set()
    for address in own:
        try:
            found.add(format_address(*parse_address(address)))
            found.update(await resolve(address))
        except (OSError, ValueError):
            continue  # an own name that does not resolve: no seed resolves to it either
    return found


async def join_seeds(
    seeds: Iterable[str],
    join: Join,
    *,
    timeout: float,
    own: Collection[str] = (),
    optional: bool = False,
    node: str = "",
) -> str | None:
    """Join through the first seed address that answers; return that address.

    ``join(address)`` makes one attempt (``Node.join``); it is given at most
    ``timeout`` seconds. ``own`` are this node's addresses (never dialled),
    ``node`` its name (for the error).
    With no seeds there is nothing to join: None. If none answers, raises
    JoinFailed listing every attempt, unless ``optional``: then the node
    stays on its own (a new cluster) and None is returned.
    """
    seeds = split_seeds(seeds)
    if not seeds:
        return None
    mine = await _own_addresses(own)
    failed: list[Attempt] = []
    for seed in seeds:
        try:
            candidates = await resolve(seed)
        except OSError as exc:
            failed.append(Attempt(seed, "", f"does not resolve: {exc.strerror or exc}"))
            continue
        for candidate in candidates:
            if candidate in mine:
                continue
            try:
                async with asyncio.timeout(timeout):
                    await join(candidate)
            except TimeoutError:
                failed.append(Attempt(seed, candidate, f"no answer within {timeout:g}s"))
            except Exception as exc:  # ClusterUnavailable, AuthenticationError, OSError, ...
                failed.append(Attempt(seed, candidate, _why(exc)))
            else:
                log.info("joined the cluster through %s", candidate)
                return candidate
            log.warning("seed %s did not answer: %s", candidate, failed[-1].error)
    if not failed:
        failed.append(Attempt(", ".join(seeds), "", "every address is this node's own"))
    reason = "no seed answered: " + "; ".join(str(a) for a in failed)
    if optional:
        log.warning("%s; starting a new cluster here", reason)
        return None
    raise JoinFailed(reason, node=node, peers=seeds, reason=reason)
