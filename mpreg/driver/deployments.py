"""What the driver sends to deploy a class or a function by value, and the handle it gets back.

A class becomes an actor (``ActorSpec``: built once per replica with the
given constructor arguments); any other callable is served by plain-function
worker processes (``FunctionsSpec``). Either is cloudpickled here, by value
when it lives in ``__main__`` or a notebook, and started by the cluster
(:mod:`mpreg.node.deployments`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from mpreg.actors.definitions import actor_options, function_name, is_actor
from mpreg.actors.specs import ActorSpec, FunctionsSpec
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.messages import Deploy, Reply, Undeploy


@dataclass(frozen=True)
class Deployment:
    """A deployment serving in the cluster: ``mpreg.undeploy(it)`` stops it.

    Iterating gives its endpoint ids (one per replica process).
    """

    name: str
    version: int
    endpoints: tuple[str, ...]
    deploy_id: str = ""
    detached: bool = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.endpoints)

    def __len__(self) -> int:
        return len(self.endpoints)

    @classmethod
    def from_reply(cls, value: Any) -> Deployment:
        return cls(
            name=str(value["name"]),
            version=int(value["version"]),
            endpoints=tuple(value["endpoints"]),
            deploy_id=str(value["deploy_id"]),
            detached=bool(value["detached"]),
        )


def deploy_message(
    obj: Any,
    *,
    datasets: Iterable[str] | None = None,
    replicas: int | None = None,
    nodes: Sequence[str] | None = None,
    name: str | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    detached: bool = False,
) -> Deploy:
    """The Deploy message for ``obj`` (request id 0: the client sets it).

    ``replicas`` None: what ``@mpreg.actor`` declares, else one on each node.
    Raises TypeError for anything neither a class nor a callable, ValueError
    for a bad ``replicas`` or a string ``datasets``.
    """
    if isinstance(datasets, str):
        raise ValueError(f"datasets must be a list of names, not a string: use [{datasets!r}]")
    if replicas is not None and replicas < 1:
        raise ValueError("replicas must be at least 1")
    kind: Literal["actor", "worker"]
    if inspect.isclass(obj):
        options = actor_options(obj)
        label = name or options.name
        served = tuple(datasets) if datasets is not None else options.datasets
        spec: ActorSpec | FunctionsSpec = ActorSpec(obj, served, label, tuple(args), kwargs)
        count = replicas or (options.replicas if is_actor(obj) else 0)
        kind = "actor"
    elif callable(obj):
        if args or kwargs:
            raise TypeError("args and kwargs are constructor arguments: only for a class")
        label = name or function_name(obj)
        spec = FunctionsSpec({function_name(obj): obj}, tuple(datasets or ()), label)
        count, kind = replicas or 0, "worker"
    else:
        raise TypeError(f"deploy takes a class or a function, not {type(obj).__name__}")
    blob = dumps_value(spec, what=f"{kind} {label}")
    return Deploy(0, label, count, blob, kind, tuple(nodes or ()), detached)


class Asker(Protocol):
    """What deploying needs of the :class:`~mpreg.driver.client.Client`: asking its node."""

    async def _ask(self, make: Any, timeout: float | None, what: str) -> Reply: ...

    def _routes_changed(self) -> None:
        """What serves changed: calls made from now on see it (lanes ask again)."""
        ...


async def deploy(
    client: Asker, obj: Any, *, timeout: float | None = None, **options: Any
) -> Deployment:
    """Deploy class or function ``obj`` by value; see :func:`mpreg.deploy` (same options).

    Raises RemoteError if ``__init__`` raised (nothing is left running),
    ActorDiedError, DeadlineExceeded after ``timeout``, ClusterUnavailable.
    """
    message = deploy_message(obj, **options)
    reply = await client._ask(
        lambda rid: replace(message, request_id=rid), timeout, f"deploying {message.label}"
    )
    client._routes_changed()  # a new version serves: no lane to the old one from now on
    return Deployment.from_reply(reply.value)


async def undeploy(client: Asker, target: Deployment | str, *, timeout: float | None = None) -> int:
    """Stop a deployment, draining its calls; see :func:`mpreg.undeploy`."""
    name, version = (target, "") if isinstance(target, str) else (target.name, target.deploy_id)
    reply = await client._ask(
        lambda rid: Undeploy(rid, name, version), timeout, f"undeploying {name}"
    )
    client._routes_changed()
    return int(reply.value)  # type: ignore[call-overload]
