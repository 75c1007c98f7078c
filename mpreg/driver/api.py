"""The sync facade: ``mpreg.init / request / submit / get / wait / shutdown``.

One process-wide runtime owns an event loop in a background thread and an
async :class:`~mpreg.driver.client.Client` on it; each sync call is a thin wrapper
that runs the async call there. Jupyter's own running loop is never touched,
so these work in notebooks as in scripts.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mpreg.actors.loader import served_fields
from mpreg.commands import Command
from mpreg.config import NodeConfig, eager_workers_default
from mpreg.driver import tracebacks
from mpreg.driver import waiting as _waiting
from mpreg.driver.client import STATUS_TIMEOUT, Client
from mpreg.driver.deployments import Deployment
from mpreg.driver.display import ClusterInfo
from mpreg.driver.failover import RECONNECT_TIMEOUT
from mpreg.driver.futures import Future
from mpreg.driver.requests import DEFAULT_RETRIES
from mpreg.driver.runtime import Runtime
from mpreg.driver.served import deploy_served
from mpreg.driver.sync_client import Handover, SyncClient
from mpreg.errors import MpregError, UsageError
from mpreg.host.cluster import LocalCluster
from mpreg.status import ClusterStatus

# The embedded cluster is one node, a child of this process: if it dies there is
# nowhere to fail over to, so a request fails after one more try, not after 30 s.
EMBEDDED_RECONNECT_TIMEOUT = 1.0

_runtime: Runtime | None = None
_lock = threading.Lock()


def init(
    address: str | None = None,
    *,
    token: str | None = None,
    actors: Sequence[type] = (),
    functions: Sequence[Any] = (),
    modules: Sequence[str] = (),
    workers: int | None = None,
    resources: Sequence[str] = (),
    eager_workers: bool | None = None,
    reconnect_timeout: float | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_ca: str | None = None,
    lanes: bool | None = None,
) -> ClusterInfo:
    """Connect this process to a cluster; return the node address in use.

    The address comes as a :class:`~mpreg.driver.display.ClusterInfo`: a
    ``str`` that a notebook or terminal shows as the cluster (nodes, actors,
    datasets, load). The embedded cluster's nodes log to a file, named there
    and in its ``log`` attribute, not to the caller's stderr.

    ``address``: ``host:port`` (or ``tcp://`` / ``mpreg://``), ``"auto"`` for
    the cluster ``mpreg start`` runs on this host, or None to start an
    embedded local cluster (one node with its default workers plus
    ``actors`` and ``functions``: objects, or ``"module:Name"`` strings) in
    child processes that end with this process. Against a running cluster,
    ``actors``, ``functions`` and what ``modules`` declare are deployed
    (owned by this driver, see :func:`deploy`); ``workers``, ``resources``
    and ``eager_workers`` configure an embedded node only and raise
    UsageError with an address. The embedded node starts each function
    worker on its first call (``eager_workers=True`` or
    ``$MPREG_EAGER_WORKERS=1``: with the node).
    Calling it again with the same address is a no-op. If that node goes away later,
    the driver reconnects to another cluster member, looking for one for at
    most ``reconnect_timeout`` seconds (README, "Failure behaviour"; default
    30, but 1 for the embedded cluster: its one node is this process's child,
    and no other member can take over). ``tls_cert``, ``tls_key``, ``tls_ca``:
    TLS to a cluster that uses it (all three; default ``$MPREG_TLS_CERT``/``KEY``/``CA``).
    ``lanes``: send single calls straight to the processes of the driver's node
    (docs/design.md, "Direct lanes"; default ``$MPREG_LANES``, else on).
    Raises ClusterUnavailable or AuthenticationError.
    """
    global _runtime
    with _lock:
        if _runtime is not None:
            if address is None or address == _runtime.address:
                return _info(_runtime)
            raise MpregError(
                f"already connected to {_runtime.address}; call mpreg.shutdown() first"
            )
        runtime = Runtime()
        try:
            runtime.address = runtime.run(
                _connect(
                    runtime,
                    address,
                    token,
                    actors,
                    functions,
                    modules,
                    workers,
                    resources,
                    eager_workers,
                    reconnect_timeout,
                    {"cert": tls_cert, "key": tls_key, "ca": tls_ca},
                    lanes,
                )
            )
        except BaseException:
            runtime.close()
            raise
        _runtime = runtime
    return _info(runtime)


def _info(runtime: Runtime) -> ClusterInfo:
    tracebacks.install()  # in a notebook, errors show the cell's line, not mpreg's frames
    log = runtime.cluster.log_path if runtime.cluster is not None else None
    return ClusterInfo(runtime.address, status=cluster_status, log=str(log or ""))


async def _connect(
    runtime: Runtime,
    address: str | None,
    token: str | None,
    actors: Sequence[type],
    functions: Sequence[Any],
    modules: Sequence[str],
    workers: int | None,
    resources: Sequence[str],
    eager_workers: bool | None,
    reconnect_timeout: float | None,
    tls: dict[str, str | None],
    lanes: bool | None,
) -> str:
    embedded, source = address is None, ""
    if not embedded and (workers is not None or resources or eager_workers is not None):
        raise UsageError(
            "workers=, resources= and eager_workers= configure an embedded cluster (no address)"
        )
    if embedded:
        if any(v is not None for v in tls.values()):
            raise UsageError("tls_* are for a running cluster (an address); this one is local")
        tls = dict.fromkeys(tls, "")  # clear text on loopback, whatever MPREG_TLS_* says
    if address is None:
        from mpreg.host.state import new_log_path

        cluster = LocalCluster(log_path=new_log_path("embedded"))
        runtime.cluster = cluster
        fields: dict[str, Any] = {}
        if workers is not None:
            fields["workers"] = workers
        # Lazy: a notebook or script pays for the function workers only if it calls them.
        try:
            fields["eager_workers"] = (
                eager_workers if eager_workers is not None else eager_workers_default(False)
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        config = NodeConfig(
            name="local",
            modules=tuple(modules),
            resources=tuple(resources),
            **served_fields(actors=actors, functions=functions),
            **fields,
        )
        await cluster.add_node(config)
        address, token = cluster.address, cluster.token
    elif address == "auto":
        from mpreg.host.state import read_local_cluster

        found = read_local_cluster()
        address = found.address
        token = token if token is not None else found.token
    else:
        from mpreg.host.state import default_token, token_source

        token, source = default_token(token), token_source(token)  # given, env, else stored
    if reconnect_timeout is None:
        reconnect_timeout = EMBEDDED_RECONNECT_TIMEOUT if embedded else RECONNECT_TIMEOUT
    client = Client(
        address,
        token=token,
        token_source=source,
        reconnect_timeout=reconnect_timeout,
        tls_cert=tls["cert"],
        tls_key=tls["key"],
        tls_ca=tls["ca"],
        lanes=lanes,
    )
    await client.connect()
    runtime.client = client
    runtime.sync = SyncClient(client, client.token, client.link.ssl, lanes=client.lanes.enabled)
    client.link.sides.append(runtime.sync)  # its node hanging must not block its requests
    if not embedded:  # a running cluster: what it should serve is deployed, owned by us
        await deploy_served(client.deploy, actors, functions, modules)
    return address


def _require() -> tuple[Runtime, Client]:
    runtime = _runtime
    if runtime is None or runtime.client is None:
        raise MpregError("not connected: call mpreg.init() first")
    return runtime, runtime.client


def request(
    commands: Sequence[Command],
    *,
    timeout: float | None = None,
    return_all: bool = False,
    retries: int = DEFAULT_RETRIES,
    trace: bool = False,
) -> dict[str, Any]:
    """Run a DAG of commands and return ``{sink name: result}``; see Client.request.

    ``retries``: how often a call whose process died is tried again (0 for
    calls that must not repeat); user exceptions are never retried.
    ``trace=True``: the dict has ``.trace`` too, kept for ``mpreg.last_trace()``.
    """
    runtime, client = _require()
    if trace:  # through the client, which collects the trace (mpreg.driver.progress)
        traced = runtime.run(
            client.request(
                commands, timeout=timeout, retries=retries, return_all=return_all, trace=True
            )
        )
        runtime.last_trace = kept = getattr(traced, "trace", None)
        if kept is not None:  # last_placement() as for any request: where each result came from
            runtime.last_where = {r.name: r.endpoint for r in kept.commands if r.name in traced}
        return traced
    sync = runtime.sync
    if sync is not None and threading.current_thread() is not runtime.thread:
        result = sync.request(commands, timeout=timeout, return_all=return_all, retries=retries)
        if not isinstance(result, Handover):
            runtime.last_where = sync.last_where
            return result
        # Futures inside, another thread has the connection, or the node was lost.
        if result.lost is not None:
            answer = runtime.run(_after_loss(client, result, commands, return_all))
            runtime.last_where = client.last_where
            return answer
        timeout, retries = result.timeout, result.retries
    result = runtime.run(
        client.request(commands, timeout=timeout, return_all=return_all, retries=retries)
    )
    runtime.last_where = client.last_where
    return result


async def _after_loss(
    client: Client,
    handover: Handover,
    commands: Sequence[Command],
    return_all: bool,
) -> dict[str, Any]:
    """A request whose node the sync path lost: once the client saw the loss, it sends it."""
    assert handover.lost is not None
    timeout = handover.timeout
    started = time.monotonic()
    await client.link.lost_elsewhere(handover.lost)
    if timeout is not None:
        timeout = max(0.0, timeout - (time.monotonic() - started))
    return await client.request(
        commands, timeout=timeout, return_all=return_all, retries=handover.retries
    )


def submit(
    fun: str,
    /,
    *args: Any,
    datasets: Iterable[str] = (),
    retries: int = DEFAULT_RETRIES,
    timeout: float | None = None,
    **kwargs: Any,
) -> Future:
    """Start ``fun(*args, **kwargs)`` where ``datasets`` live; return a Future at once.

    ``datasets``, ``retries`` and ``timeout`` are mpreg's own keyword options
    and never reach ``fun`` (pass an argument of ``fun`` with one of those
    names positionally). ``retries``: how often the call is tried again if
    its process dies (0: at most once). ``timeout``: seconds until its
    deadline; the Future then fails with DeadlineExceeded and the cluster
    drops the call.
    """
    _, client = _require()
    # Planned and pickled in this thread; the client's loop sends it (one wakeup per burst).
    return client.submit_threadsafe(
        fun, *args, datasets=datasets, retries=retries, timeout=timeout, **kwargs
    )


def get(
    futures: Future | Sequence[Future], timeout: float | None = None, *, progress: bool = False
) -> Any:
    """The result of a Future, or a list of results for a list of Futures.

    Raises the first error to arrive, DeadlineExceeded if not all are done
    within ``timeout`` (they keep running). A KeyboardInterrupt cancels the
    unfinished calls, then propagates. ``progress``: show a bar counting
    them done (in a notebook, or rich on stderr).
    """
    if isinstance(futures, Future):
        return _waiting.get([futures], timeout, progress=progress)[0]
    return _waiting.get(list(futures), timeout, progress=progress)


wait = _waiting.wait
as_completed = _waiting.as_completed
cancel = _waiting.cancel


def deploy(
    obj: Any,
    *,
    datasets: Sequence[str] | None = None,
    replicas: int | None = None,
    nodes: Sequence[str] | None = None,
    name: str | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    detached: bool = False,
    timeout: float | None = None,
) -> Deployment:
    """Serve class (an actor) or function ``obj`` in the cluster, shipped by value.

    ``replicas`` processes (default: what ``@mpreg.actor`` declares, else one
    on each node) spread over ``nodes`` (member names; default: every live
    member), serving ``datasets`` (default: the actor's own), under ``name``
    (default: the class or function name). A class is built with
    ``args``/``kwargs``. Deploying the same name again replaces the version
    serving, without a gap. The deployment ends with this driver unless
    ``detached``. Returns once every replica serves; raises RemoteError with
    the ``__init__`` traceback (and leaves nothing running) if one fails.
    """
    runtime, client = _require()
    options: dict[str, Any] = dict(datasets=datasets, replicas=replicas, nodes=nodes, name=name)
    options.update(args=args, kwargs=kwargs, detached=detached)
    deployment: Deployment = runtime.run(client.deploy(obj, timeout=timeout, **options))
    return deployment


def undeploy(target: Deployment | str, *, timeout: float | None = None) -> None:
    """Stop a deployment cluster-wide once its calls in flight finish.

    A handle stops its version; a name stops whatever serves under it.
    Raises PlanError if nothing by that name serves.
    """
    runtime, client = _require()
    runtime.run(client.undeploy(target, timeout=timeout))


def cluster_status(*, timeout: float | None = STATUS_TIMEOUT) -> ClusterStatus:
    """A typed snapshot of nodes, actors, datasets and load."""
    runtime, client = _require()
    return runtime.run(client.status(timeout=timeout))


def shutdown() -> None:
    """Disconnect, and stop the embedded cluster if ``init()`` started one."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()


def last_placement() -> dict[str, str]:
    """Where each command of the last request() ran (command name -> endpoint id)."""
    runtime, _ = _require()
    return dict(runtime.last_where)


atexit.register(shutdown)
