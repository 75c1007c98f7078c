"""Every message that crosses a connection after the handshake.

Frozen, slotted dataclasses handled with ``match``; each registers a stable
wire type id (``@message(n)``: never reuse or renumber one). Payload fields are
:class:`~mpreg.protocol.codec.Blob`s, which a node forwards without
unpickling. Names say who sends them: client -> node, node -> worker
(a worker is an actor replica or a plain-function worker process),
node <-> node. A failure travels as an :class:`ErrorInfo`, defined with its
conversion to and from exceptions in :mod:`mpreg.protocol.failures` and
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mpreg.protocol.chains import ChainStep as ChainStep
from mpreg.protocol.codec import Blob, fast_pickle
from mpreg.protocol.failures import ErrorInfo as ErrorInfo
from mpreg.protocol.failures import ErrorKind as ErrorKind
from mpreg.protocol.held import Fetch as Fetch
from mpreg.protocol.held import Held as Held
from mpreg.protocol.held import HeldFetch as HeldFetch
from mpreg.protocol.held import HeldFree as HeldFree
from mpreg.protocol.held import HeldValue as HeldValue
from mpreg.protocol.held import Put as Put
from mpreg.protocol.lanes import Kept as Kept
from mpreg.protocol.lanes import Lane as Lane
from mpreg.protocol.lanes import LaneCounts as LaneCounts
from mpreg.protocol.lanes import LaneQuery as LaneQuery
from mpreg.protocol.lanes import LaneRoute as LaneRoute
from mpreg.protocol.schema import message
from mpreg.protocol.stats import EndpointStats as EndpointStats
from mpreg.protocol.stats import NodeInfo as NodeInfo
from mpreg.protocol.stats import NodeStats as NodeStats

EndpointKind = Literal["actor", "worker"]


@fast_pickle
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One process that can run calls: an actor replica or a plain-function worker.

    ``endpoint_id`` is unique in the cluster (e.g. ``"nodeA/actor-3"``);
    ``node_id`` is the node hosting it; ``label`` is a human name such as the
    actor class.
    """

    endpoint_id: str
    node_id: str
    kind: EndpointKind
    functions: frozenset[str]
    datasets: frozenset[str]
    label: str = ""


# --- client -> node ---------------------------------------------------------


@message(1)
@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One command of a request, planned: ``args`` hold DepRef placeholders."""

    task_id: int
    name: str
    fun: str
    datasets: frozenset[str]
    args: Blob  # cloudpickled (args, kwargs)
    deps: tuple[int, ...]
    want_result: bool
    keep: bool = False  # hold the result on the node until Release (futures)
    retries: int = 3
    deadline: float = 0.0  # absolute, time.time() seconds; 0: none
    # Fields of its result that consumers use (the worker answers with a
    # bundle, protocol.refs), and what it takes of its deps: (dep task id,
    # field index or -1 for the whole result); empty: every dep whole.
    fields: int = 0
    uses: tuple[tuple[int, int], ...] = ()


@message(2)
@dataclass(frozen=True, slots=True)
class SubmitBatch:
    """A whole request at once; the node validates routes, then runs it."""

    batch_id: int
    tasks: tuple[TaskSpec, ...]
    trace: bool = False  # report how every task ran (TaskTrace), not only the wanted results


@message(3)
@dataclass(frozen=True, slots=True)
class Release:
    """The client no longer needs these results kept on the node."""

    task_ids: tuple[int, ...]


@message(4)
@dataclass(frozen=True, slots=True)
class Deploy:
    """Deploy ``spec`` (a cloudpickled FunctionsSpec or ActorSpec) cluster-wide as ``label``.

    ``replicas`` processes spread over ``nodes`` (names; empty: every live
    member); the same label again replaces the version serving now. Owned by
    the client's session unless ``detached``. Answered once all serve.
    """

    request_id: int
    label: str
    replicas: int
    spec: Blob
    kind: Literal["actor", "worker"] = "actor"
    nodes: tuple[str, ...] = ()
    detached: bool = False


@message(26)
@dataclass(frozen=True, slots=True)
class Undeploy:
    """Stop deployment ``name`` (only its version ``deploy_id`` if given), draining calls.

    From a client: cluster-wide. From a node (``local=True``): on the receiver only.
    """

    request_id: int
    name: str
    deploy_id: str = ""
    local: bool = False


@message(19)
@dataclass(frozen=True, slots=True)
class Cancel:
    """The client gave up on these tasks: drop them if queued, cancel them if running."""

    task_ids: tuple[int, ...]


@message(5)
@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: int
    local_only: bool = False  # a peer asking for this node's own part


# --- node -> client ---------------------------------------------------------


@message(6)
@dataclass(frozen=True, slots=True)
class BatchRejected:
    batch_id: int
    error: ErrorInfo


@message(7)
@dataclass(frozen=True, slots=True)
class TaskDone:
    """A task finished: ``result`` on success, ``error`` otherwise.

    ``held``: the result stays on the node (its size in bytes); ``Fetch`` gets it.
    """

    task_id: int
    result: Blob | None
    error: ErrorInfo | None
    where: str = ""  # endpoint id that ran it
    held: int = 0


@message(30)
@dataclass(frozen=True, slots=True)
class TaskTrace:
    """How one task of a traced batch ran; sent as it finishes, before its TaskDone.

    Times are seconds since its node took the batch, on that node's clock:
    ``ready`` when its dependencies were done, ``sent`` when it was handed to
    the process that ran it (0: never), ``finished`` when the answer came.
    ``bytes_in``: its arguments and dependency results; ``retries``: calls
    repeated because a process died.
    """

    task_id: int
    where: str
    ready: float
    sent: float
    finished: float
    bytes_in: int
    bytes_out: int
    retries: int
    ok: bool


@message(8)
@dataclass(frozen=True, slots=True)
class Reply:
    """Generic answer to a request id (Deploy, StatusRequest)."""

    request_id: int
    value: object = None
    error: ErrorInfo | None = None


@message(23)
@dataclass(frozen=True, slots=True)
class MembersChanged:
    """The cluster members a client may fail over to: its node's address first, then its peers'.

    Sent when a client session is admitted and whenever the node's set of live
    peers changes; the driver keeps the latest list and, when its node goes
    away, reconnects to another member (:mod:`mpreg.driver.failover`).
    """

    addresses: tuple[str, ...]


# --- node -> worker ---------------------------------------------------------


@message(9)
@dataclass(frozen=True, slots=True)
class Assign:
    """What a freshly started worker process is to serve."""

    endpoint_id: str
    spec: Blob
    # Its lane (mpreg.protocol.lanes): listen on this host for clients proving
    # ``lane_ticket``; "" for no lane.
    lane_host: str = ""
    lane_ticket: str = ""


@message(10)
@dataclass(frozen=True, slots=True)
class Call:
    """Run ``fun`` with ``args``; ``deps`` are results its placeholders name."""

    call_id: int
    fun: str
    args: Blob
    deps: tuple[tuple[int, Blob], ...] = ()
    command: str = ""
    deadline: float = 0.0  # absolute, time.time() seconds; 0: none. Expired calls never start.
    # Dependency results held on some member (mpreg.protocol.held): the node that
    # hands the call to its process fetches them into ``deps`` first.
    held: tuple[tuple[int, Held], ...] = ()
    # A future's call on a lane: a big result goes to the worker's node for this
    # session as task ``task_id``'s result (mpreg.protocol.lanes.Kept).
    session: str = ""
    task_id: int = 0
    # A fused chain (mpreg.protocol.chains): the steps to run here in turn, this
    # call first; answered once, with a chain answer. Empty: a plain call.
    chain: tuple[ChainStep, ...] = ()


@message(20)
@dataclass(frozen=True, slots=True)
class CancelCall:
    """Stop call ``call_id``: skip it if not started, cancel it if it is a running coroutine."""

    call_id: int


@message(11)
@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


# --- worker -> node ---------------------------------------------------------


@message(12)
@dataclass(frozen=True, slots=True)
class WorkerReady:
    endpoint_id: str
    functions: tuple[str, ...]
    datasets: tuple[str, ...]
    label: str
    pid: int
    lane: str = ""  # host:port where clients may call it directly; "": no lane


@message(13)
@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """The worker could not start (its __init__ or import raised)."""

    endpoint_id: str
    error: ErrorInfo


@message(14)
@dataclass(frozen=True, slots=True)
class CallDone:
    call_id: int
    result: Blob | None
    error: ErrorInfo | None


# --- node <-> node ----------------------------------------------------------


# Ids 15 (PeerHello) and 16 (EndpointsChanged) were retired when membership
# moved to gossip: never reuse them.


@message(22)
@dataclass(frozen=True, slots=True)
class Gossip:
    """A membership message (:mod:`mpreg.membership`: probe, ack, view, update).

    Only ever sent over an authenticated node-to-node link; the body is plain
    data (member records, versioned advertisements of endpoints).
    """

    body: object


@message(24)
@dataclass(frozen=True, slots=True)
class DeployStart:
    """Start this node's ``replicas`` of a deployment's version, not routed until switched to."""

    request_id: int
    name: str
    deploy_id: str  # unique per version
    version: int  # shown in status
    kind: Literal["actor", "worker"]
    replicas: int
    spec: Blob
    owner: str  # node id of the node that took the deploy (its driver owns it)
    detached: bool


@message(25)
@dataclass(frozen=True, slots=True)
class DeploySwitch:
    """Route to version ``deploy_id`` of ``name`` now; drain and stop its other versions."""

    request_id: int
    name: str
    deploy_id: str


@message(17)
@dataclass(frozen=True, slots=True)
class ForwardCall:
    """A call for an endpoint hosted by the receiving node."""

    call_id: int
    endpoint_id: str
    call: Call
    hold: bool = False  # a big result may stay on the receiving node (answered as ``held``)


@message(18)
@dataclass(frozen=True, slots=True)
class ForwardDone:
    call_id: int
    result: Blob | None
    error: ErrorInfo | None
    held: Held | None = None  # the result stayed on the answering node


@message(21)
@dataclass(frozen=True, slots=True)
class ForwardCancel:
    """Cancel the forwarded call the sender knows as ``call_id``."""

    call_id: int
