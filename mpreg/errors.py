"""The one exception tree of mpreg.

Every error mpreg raises on purpose is an :class:`MpregError`, grouped by
where it comes from::

    MpregError
    ├── UsageError                 the caller: a command line or call that makes no sense
    │   └── ConfigError                a config file is missing or malformed (ValueError)
    ├── PlanError                  the caller: a request that cannot be planned
    ├── NoRouteError               the cluster: nothing live offers (fun, datasets)
    │   └── UnknownFunctionError       no process anywhere serves the function
    ├── ClusterUnavailable         the cluster: cannot reach a node (ConnectionError)
    │   └── NodeStartError             a node process did not start
    │       ├── AddressInUse               its port is taken
    │       └── JoinFailed                 it could not join the cluster it was given
    ├── ActorDiedError             the cluster: an actor died and retries ran out
    ├── ProtocolError              the wire: malformed, oversized or unknown frames
    ├── AuthenticationError        the wire: bad token or version mismatch
    │   └── TLSError                   TLS on one side only, or a certificate the other refuses
    ├── SerializationError         the caller or user code: a value cloudpickle refuses
    ├── ModuleLoadError            user code: a module to serve could not be imported
    ├── DeadlineExceeded           time: a request passed its deadline (TimeoutError)
    ├── TaskCancelled              the caller: the call was cancelled before it finished
    ├── FieldError                 the caller: a referenced field is not in the result (LookupError)
    └── RemoteError                user code: the function raised

An error crosses a connection as an ``ErrorInfo``; the one conversion both
ways is :mod:`mpreg.protocol.failures` (``to_info`` / ``from_info``).
"""

from __future__ import annotations

import os


class MpregError(Exception):
    """Root of every error mpreg raises on purpose."""


class UsageError(MpregError):
    """A command line, option or call does not make sense; the message says what to do.

    Raised before anything starts. The CLI prints it as one line with exit code 2.
    Also what a call, submit or request of a generator function raises (its
    body never runs): generators stream, with ``mpreg.stream``.
    """


class ConfigError(UsageError, ValueError):
    """A config file is missing or malformed; the message names the file and line.

    ``path`` is the file, ``line`` the 1-based line when known.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class PlanError(MpregError):
    """A request is malformed: duplicate names, a dependency cycle, a bad argument.

    Raised before anything runs. ``command`` names the offending command when
    there is one.
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class NoRouteError(MpregError):
    """No live actor or worker offers ``fun`` with all of ``datasets``.

    Raised before anything in the request runs.
    """

    def __init__(
        self,
        message: str,
        *,
        command: str | None = None,
        fun: str | None = None,
        datasets: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.command = command
        self.fun = fun
        self.datasets = datasets


class UnknownFunctionError(NoRouteError):
    """No process in the cluster serves a function of that name at all."""


class ClusterUnavailable(MpregError, ConnectionError):
    """The client cannot reach any node of the cluster, or lost it mid-request."""


class NodeStartError(ClusterUnavailable):
    """A node process did not start; ``node`` is its name.

    The message carries the node's own error as it reported it.
    """

    def __init__(self, message: str, *, node: str = "") -> None:
        super().__init__(message)
        self.node = node


class AddressInUse(NodeStartError):
    """The node could not listen: ``port`` on ``host`` is taken (EADDRINUSE)."""

    def __init__(self, message: str, *, node: str = "", host: str = "", port: int = 0) -> None:
        super().__init__(message, node=node)
        self.host = host
        self.port = port


class JoinFailed(NodeStartError):
    """The node could not join the cluster at ``peers``; ``reason`` says what went wrong."""

    def __init__(
        self, message: str, *, node: str = "", peers: tuple[str, ...] = (), reason: str = ""
    ) -> None:
        super().__init__(message, node=node)
        self.peers = peers
        self.reason = reason


class ActorDiedError(MpregError):
    """An actor or worker died while running a call, and no retry was left."""


class ProtocolError(MpregError):
    """A peer sent bytes that are not a valid mpreg frame or message."""


class AuthenticationError(MpregError):
    """The handshake failed: wrong cluster token or incompatible versions."""


class TLSError(AuthenticationError):
    """TLS failed: one side uses it and the other does not, or a certificate was refused
    (signed by another CA). The message says which, and what to pass."""


class SerializationError(MpregError):
    """An argument or a result could not be pickled or unpickled.

    ``command`` names the command whose value failed, when known.
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class ModuleLoadError(MpregError):
    """A user module (by name or file path) could not be imported.

    The message is meant to be shown as it is: one line when the module is
    missing, else the user's own frames of the import's traceback.
    """


class StoreFull(MpregError):
    """A node could not hold a value (a ``put``, or a future's result): its store is full.

    The store's size is ``max_store_bytes`` of the node (``mpreg start --max-store-mb``);
    release futures you no longer need (drop them) or raise the limit.
    """


class DeadlineExceeded(MpregError, TimeoutError):
    """A request did not finish by its deadline."""


class TaskCancelled(MpregError):
    """The call was cancelled (``Future.cancel()``, ``mpreg.cancel``, an interrupt)
    before it finished; raised by whoever then asks for its result.
    """


class FieldError(MpregError, LookupError):
    """A command's argument names a field (``"s1.rows.0"``, ``Ref("s1", "rows", 0)``)
    that the referenced result does not have.

    The message names the path and the type where the walk stopped.
    ``command`` is the command whose argument it was, ``reference`` the field
    as written (``"s1.rows.0"``). The command does not run.
    """

    def __init__(self, message: str, *, command: str | None = None, reference: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.reference = reference


class RemoteError(MpregError):
    """The user's function raised; carries where and what.

    Attributes: ``command`` (name in the request), ``exc_type`` (the remote
    exception's type name), ``message``, ``remote_traceback`` (text),
    ``node`` and ``actor`` (where it ran, when known).
    """

    def __init__(
        self,
        *,
        command: str,
        exc_type: str,
        message: str,
        remote_traceback: str = "",
        node: str = "",
        actor: str = "",
    ) -> None:
        super().__init__(f"command {command!r} raised {exc_type}: {message}")
        self.command = command
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.node = node
        self.actor = actor

    def __str__(self) -> str:
        text = f"command {self.command!r} raised {self.exc_type}: {self.message}"
        if self.remote_traceback:
            where = f" (in {self.actor})" if self.actor else ""
            text += f"\n\nRemote traceback{where}:\n" + self.remote_traceback.rstrip()
        return text


__all__ = [
    "ActorDiedError",
    "AddressInUse",
    "AuthenticationError",
    "ClusterUnavailable",
    "ConfigError",
    "DeadlineExceeded",
    "FieldError",
    "JoinFailed",
    "ModuleLoadError",
    "MpregError",
    "NoRouteError",
    "NodeStartError",
    "PlanError",
    "ProtocolError",
    "RemoteError",
    "SerializationError",
    "TLSError",
    "TaskCancelled",
    "UnknownFunctionError",
    "UsageError",
]
