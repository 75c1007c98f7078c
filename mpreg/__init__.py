"""mpreg: run function X on dataset Y anywhere in a cluster of long-lived processes.

import mpreg
from mpreg import Command

mpreg.init()                                   # or mpreg.init("host:7773")
mpreg.request([Command("first", "echo", ["hi there!"], [])])
# -> {"first": "hi there!"}
"""

from mpreg.actors.definitions import actor, function
from mpreg.commands import Command, Ref
from mpreg.config import NodeConfig
from mpreg.driver.api import (
    as_completed,
    cancel,
    cluster_status,
    deploy,
    get,
    init,
    last_placement,
    request,
    shutdown,
    submit,
    undeploy,
    wait,
)
from mpreg.driver.client import Client
from mpreg.driver.deployments import Deployment
from mpreg.driver.discovery import DatasetInfo, FunctionInfo
from mpreg.driver.extras import (
    RequestHandle,
    call,
    datasets,
    functions,
    last_trace,
    put,
    submit_request,
)
from mpreg.driver.futures import Future
from mpreg.driver.streams import AsyncStream
from mpreg.driver.sync_streams import Stream, stream
from mpreg.driver.trace import Trace
from mpreg.errors import (
    ActorDiedError,
    AuthenticationError,
    ClusterUnavailable,
    ConfigError,
    DeadlineExceeded,
    FieldError,
    ModuleLoadError,
    MpregError,
    NoRouteError,
    PlanError,
    ProtocolError,
    RemoteError,
    SerializationError,
    StoreFull,
    TaskCancelled,
    TLSError,
    UnknownFunctionError,
    UsageError,
)
from mpreg.status import ClusterStatus

__version__ = "0.1.0"

__all__ = [
    "ActorDiedError",
    "AsyncStream",
    "AuthenticationError",
    "Client",
    "ClusterStatus",
    "ClusterUnavailable",
    "Command",
    "ConfigError",
    "DatasetInfo",
    "DeadlineExceeded",
    "Deployment",
    "FieldError",
    "FunctionInfo",
    "Future",
    "ModuleLoadError",
    "MpregError",
    "NoRouteError",
    "NodeConfig",
    "PlanError",
    "ProtocolError",
    "Ref",
    "RemoteError",
    "RequestHandle",
    "SerializationError",
    "StoreFull",
    "Stream",
    "TLSError",
    "TaskCancelled",
    "Trace",
    "UnknownFunctionError",
    "UsageError",
    "actor",
    "as_completed",
    "call",
    "cancel",
    "cluster_status",
    "datasets",
    "deploy",
    "function",
    "functions",
    "get",
    "init",
    "last_placement",
    "last_trace",
    "put",
    "request",
    "shutdown",
    "stream",
    "submit",
    "submit_request",
    "undeploy",
    "wait",
]
