"""mpreg: run function X on dataset Y anywhere in a cluster of long-lived processes.

import mpreg
from mpreg import Command

mpreg.init()                                   # or mpreg.init("host:7773")
mpreg.request([Command("first", "echo", ["hi there!"], [])])
# -> {"first": "hi there!"}
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives. Imported on first use (PEP 562), so a worker
# or node process that imports one mpreg module does not load the driver,
# rich and the rest of the facade with it (4 MiB and 60 ms per worker).
_HOMES = {
    "actor": "mpreg.actors.definitions",
    "function": "mpreg.actors.definitions",
    "Command": "mpreg.commands",
    "Ref": "mpreg.commands",
    "NodeConfig": "mpreg.config",
    "as_completed": "mpreg.driver.api",
    "cancel": "mpreg.driver.api",
    "cluster_status": "mpreg.driver.api",
    "deploy": "mpreg.driver.api",
    "get": "mpreg.driver.api",
    "init": "mpreg.driver.api",
    "last_placement": "mpreg.driver.api",
    "request": "mpreg.driver.api",
    "shutdown": "mpreg.driver.api",
    "submit": "mpreg.driver.api",
    "undeploy": "mpreg.driver.api",
    "wait": "mpreg.driver.api",
    "Client": "mpreg.driver.client",
    "Deployment": "mpreg.driver.deployments",
    "DatasetInfo": "mpreg.driver.discovery",
    "FunctionInfo": "mpreg.driver.discovery",
    "RequestHandle": "mpreg.driver.extras",
    "call": "mpreg.driver.extras",
    "datasets": "mpreg.driver.extras",
    "functions": "mpreg.driver.extras",
    "last_trace": "mpreg.driver.extras",
    "put": "mpreg.driver.extras",
    "submit_request": "mpreg.driver.extras",
    "Future": "mpreg.driver.futures",
    "AsyncStream": "mpreg.driver.streams",
    "Stream": "mpreg.driver.sync_streams",
    "stream": "mpreg.driver.sync_streams",
    "Trace": "mpreg.driver.trace",
    "ActorDiedError": "mpreg.errors",
    "AuthenticationError": "mpreg.errors",
    "ClusterUnavailable": "mpreg.errors",
    "ConfigError": "mpreg.errors",
    "DeadlineExceeded": "mpreg.errors",
    "FieldError": "mpreg.errors",
    "ModuleLoadError": "mpreg.errors",
    "MpregError": "mpreg.errors",
    "NoRouteError": "mpreg.errors",
    "PlanError": "mpreg.errors",
    "ProtocolError": "mpreg.errors",
    "RemoteError": "mpreg.errors",
    "SerializationError": "mpreg.errors",
    "StoreFull": "mpreg.errors",
    "TLSError": "mpreg.errors",
    "TaskCancelled": "mpreg.errors",
    "UnknownFunctionError": "mpreg.errors",
    "UsageError": "mpreg.errors",
    "ClusterStatus": "mpreg.status",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mpreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up here from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


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
