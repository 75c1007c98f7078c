"""Failures on the wire: the one conversion between exceptions and :class:`ErrorInfo`.

An error that crosses a connection travels as an :class:`ErrorInfo`: its
``kind`` names the class of the :mod:`mpreg.errors` tree it stands for, and
its other fields carry that class's attributes. :func:`to_info` is the only
way an exception becomes one, :func:`from_info` the only way one becomes an
exception again; ``from_info(to_info(exc))`` gives back the same class with
the same fields.

Two rules keep the text the user reads the same wherever an error started:

* ``message`` is the error's text *without* its command; ``command`` says
  which command it belongs to. The node often learns the command only after
  the worker reported the error, and fills it in then. :func:`from_info`
  puts ``command 'name': `` in front of the text of the kinds whose text does
  not name the command by itself (see ``_PREFIXED``); :func:`to_info` takes
  that prefix off again.
* Whatever user code raises is a ``"user"`` failure and comes back as a
  :class:`~mpreg.errors.RemoteError` with its type name, message and
  traceback, even an mpreg error that user code raised (a nested request):
  it is the user's failure, and must not, say, retry a call as if a process
  had died.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Literal

from mpreg.errors import (
    ActorDiedError,
    AuthenticationError,
    ClusterUnavailable,
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
    UnknownFunctionError,
    UsageError,
)
from mpreg.protocol.codec import fast_pickle

ErrorKind = Literal[
    "user",  # the function raised                  -> RemoteError
    "serialization",  # an argument or result would not (un)pickle
    "actor-died",  # the process died and no retry was left
    "no-route",  # nothing offers (fun, datasets)
    "unknown-function",  # nothing offers fun at all
    "plan",  # the request itself is malformed
    "unavailable",  # a node or link went away           -> ClusterUnavailable
    "deadline",  # a request passed its deadline
    "cancelled",  # the caller cancelled it
    "field",  # a referenced field is not in the result
    "protocol",  # malformed frames or messages
    "auth",  # bad token or version mismatch
    "module-load",  # a module to serve would not import
    "usage",  # a call that makes no sense
    "store-full",  # a node could not hold a value          -> StoreFull
    "moved",  # not run: its process is stopping; the driver sends it on (a lane's answer)
    "internal",  # a bug in mpreg                     -> plain MpregError
]


@fast_pickle
@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure as it travels: enough to raise the right typed error remotely.

    ``where`` is the endpoint id that ran the failed call, when known.
    """

    kind: ErrorKind
    message: str
    exc_type: str = ""
    traceback: str = ""
    command: str = ""
    fun: str = ""
    datasets: tuple[str, ...] = ()
    where: str = ""
    reference: str = ""  # a FieldError's field as written ("s1.rows.0")


# Errors whose only field is their message. Most specific class first: the
# first match wins when turning an exception into a kind (ConfigError, a
# UsageError that never leaves its process, travels as a UsageError).
_MESSAGE_ONLY: dict[ErrorKind, type[MpregError]] = {
    "actor-died": ActorDiedError,
    "unavailable": ClusterUnavailable,
    "deadline": DeadlineExceeded,
    "cancelled": TaskCancelled,
    "protocol": ProtocolError,
    "auth": AuthenticationError,
    "module-load": ModuleLoadError,
    "usage": UsageError,
    "store-full": StoreFull,
    "moved": ClusterUnavailable,
}

# Kinds whose text does not name the command: from_info names it in front.
_PREFIXED: frozenset[ErrorKind] = frozenset({"serialization", "field", *_MESSAGE_ONLY})


def to_info(exc: BaseException, *, user_code: bool = False) -> ErrorInfo:
    """Describe ``exc`` for the wire.

    ``user_code``: ``exc`` came out of the user's function or start-up (a
    worker catching what it called). It is then a ``"user"`` failure whatever
    its class, and its traceback starts in user code: the catching frame is
    dropped. An exception outside the tree that mpreg itself raised is a bug:
    an ``"internal"`` failure.
    """
    exc_type = type(exc).__name__
    if user_code:
        tb = exc.__traceback__
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next  # the worker's own frame: the user wants their code
        return ErrorInfo(
            kind="user",
            message=str(exc),
            exc_type=exc_type,
            traceback="".join(traceback.format_exception(type(exc), exc, tb)),
        )
    match exc:
        case RemoteError():
            return ErrorInfo(
                kind="user",
                message=exc.message,
                exc_type=exc.exc_type,
                traceback=exc.remote_traceback,
                command=exc.command,
                where=exc.actor,
            )
        case SerializationError(command=command):
            return ErrorInfo(
                kind="serialization",
                message=_without_command(str(exc), command),
                exc_type=exc_type,
                command=command or "",
            )
        case NoRouteError():
            return ErrorInfo(
                kind="unknown-function" if isinstance(exc, UnknownFunctionError) else "no-route",
                message=str(exc),
                exc_type=exc_type,
                command=exc.command or "",
                fun=exc.fun or "",
                datasets=exc.datasets,
            )
        case PlanError():
            return ErrorInfo(
                kind="plan", message=str(exc), exc_type=exc_type, command=exc.command or ""
            )
        case FieldError(command=command):
            return ErrorInfo(
                kind="field",
                message=_without_command(str(exc), command),
                exc_type=exc_type,
                command=command or "",
                reference=exc.reference,
            )
    for kind, cls in _MESSAGE_ONLY.items():
        if isinstance(exc, cls):
            return ErrorInfo(kind=kind, message=str(exc), exc_type=exc_type)
    # The bare MpregError, or anything outside the tree that mpreg's own code
    # raised: a bug, shown as such rather than blamed on the user.
    return ErrorInfo(kind="internal", message=str(exc), exc_type=exc_type)


def from_info(info: ErrorInfo, where: str = "") -> MpregError:
    """The typed exception ``info`` stands for; ``where`` is the endpoint that ran it."""
    where = where or info.where
    command = info.command or None
    message = info.message
    if command is not None and info.kind in _PREFIXED:
        message = f"command {info.command!r}: {message}"
    match info.kind:
        case "user":
            return RemoteError(
                command=info.command,
                exc_type=info.exc_type,
                message=info.message,
                remote_traceback=info.traceback,
                actor=where,
                node=where.partition("/")[0],  # endpoint ids are "node_id/label-n"
            )
        case "serialization":
            return SerializationError(message, command=command)
        case "no-route" | "unknown-function":
            cls = UnknownFunctionError if info.kind == "unknown-function" else NoRouteError
            return cls(message, command=command, fun=info.fun or None, datasets=info.datasets)
        case "plan":
            return PlanError(message, command=command)
        case "field":
            return FieldError(message, command=command, reference=info.reference)
    cls_ = _MESSAGE_ONLY.get(info.kind)
    if cls_ is not None:
        return cls_(message)
    # "internal", or a kind from a newer peer: still an MpregError, never a crash.
    return MpregError(f"{info.kind}: {message}")


def _without_command(message: str, command: str | None) -> str:
    prefix = f"command {command!r}: "
    return message.removeprefix(prefix) if command else message


__all__ = ["ErrorInfo", "ErrorKind", "from_info", "to_info"]
