"""Failures on the wire: every error of the tree survives to_info -> frame -> from_info."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mpreg import errors
from mpreg.errors import (
    ActorDiedError,
    AddressInUse,
    AuthenticationError,
    ClusterUnavailable,
    ConfigError,
    DeadlineExceeded,
    FieldError,
    JoinFailed,
    ModuleLoadError,
    MpregError,
    NodeStartError,
    NoRouteError,
    PlanError,
    ProtocolError,
    RemoteError,
    SerializationError,
    TaskCancelled,
    TLSError,
    UnknownFunctionError,
    UsageError,
)
from mpreg.protocol.codec import decode_message, dumps_value, encode_message
from mpreg.protocol.failures import ErrorInfo, from_info, to_info
from mpreg.protocol.frames import FrameDecoder
from mpreg.protocol.messages import TaskDone

# Each error as mpreg itself builds it. Command-scoped errors whose class has
# no place for the command name it in front of their text, as the driver
# shows them.
SAMPLES: list[MpregError] = [
    RemoteError(
        command="fit",
        exc_type="ValueError",
        message="the model is on fire",
        remote_traceback='Traceback (most recent call last):\n  File "m.py", line 3\n',
        node="n1",
        actor="n1/Model-2",
    ),
    RemoteError(command="start Model", exc_type="KeyError", message="'x'"),
    NoRouteError(
        "command 'p': no live process serves function 'who' with datasets ['a', 'b']",
        command="p",
        fun="who",
        datasets=("a", "b"),
    ),
    NoRouteError("this worker does not serve 'who'"),
    UnknownFunctionError(
        "command 'p': no process in the cluster serves function 'nope'",
        command="p",
        fun="nope",
        datasets=(),
    ),
    PlanError("command 'x' depends on itself", command="x"),
    PlanError("a request needs at least one command"),
    SerializationError("command 'lock': cannot pickle the result: TypeError: no", command="lock"),
    SerializationError("cannot unpickle the arguments: ModuleNotFoundError: m"),
    ActorDiedError("command 'c': the process running 'c' died and no replica is left"),
    ClusterUnavailable("not connected to 127.0.0.1:1"),
    DeadlineExceeded("request did not finish within 1s (waiting on ['s'])"),
    ProtocolError("undecodable message header"),
    AuthenticationError("wrong cluster token"),
    ModuleLoadError("No module named 'nothere'"),
    UsageError("--replicas must be at least 1"),
    TaskCancelled("command 'slow': cancelled"),
    FieldError(
        "command 's3': argument 's1.result.x': 's1' result has no field 'x' at 'result' "
        "(stopped at dict with keys ['a'])",
        command="s3",
        reference="s1.result.x",
    ),
]


def _fields(exc: BaseException) -> tuple[object, ...]:
    return (type(exc), str(exc), exc.args, vars(exc))


def _over_the_wire(info: ErrorInfo) -> ErrorInfo:
    """Send ``info`` in a TaskDone through the real codec and framer."""
    data = b"".join(bytes(p) for p in encode_message(TaskDone(1, None, info, "")))
    (frame,) = FrameDecoder().feed(data)
    done = decode_message(frame)
    assert isinstance(done, TaskDone) and done.error is not None
    return done.error


@pytest.mark.parametrize("exc", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_round_trips_with_its_class_and_fields(exc: MpregError) -> None:
    back = from_info(_over_the_wire(to_info(exc)))
    assert _fields(back) == _fields(exc)
    assert from_info(to_info(back)).__class__ is type(exc)


def test_every_error_class_of_the_tree_has_a_wire_form() -> None:
    # A new error class must get a kind (or a reason not to travel) here.
    # The abstract root; a file on this host; a node process that did not start
    # (told to its starter on the announce pipe, never on a connection); a TLS
    # failure, found by the side that dials before any message can cross.
    local_only = {MpregError, ConfigError, NodeStartError, AddressInUse, JoinFailed, TLSError}
    tree = {getattr(errors, name) for name in errors.__all__} - local_only
    assert tree == {type(e) for e in SAMPLES}


def _user_function(message: str) -> None:
    raise ValueError(message)


def _caught_by_a_worker(fn: object, *args: object, user_code: bool = True) -> ErrorInfo:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        return to_info(exc, user_code=user_code)
    raise AssertionError("did not raise")


def test_a_user_exception_becomes_a_remote_error_with_its_type_and_traceback() -> None:
    info = _caught_by_a_worker(_user_function, "boom")
    back = from_info(_over_the_wire(info), where="n1/Model-2")
    assert isinstance(back, RemoteError)
    assert (back.exc_type, back.message, back.node, back.actor) == (
        "ValueError",
        "boom",
        "n1",
        "n1/Model-2",
    )
    # The traceback starts in user code: the catching frame is dropped.
    assert "in _user_function" in back.remote_traceback
    assert "in _caught_by_a_worker" not in back.remote_traceback
    assert back.remote_traceback.rstrip().endswith("ValueError: boom")


def test_an_mpreg_error_raised_by_user_code_is_still_the_users() -> None:
    # A nested request that failed inside a user function is not a dead
    # process of this cluster: it must come back as RemoteError, never retried.
    def nested() -> None:
        raise ActorDiedError("some other actor died")

    info = _caught_by_a_worker(nested)
    assert info.kind == "user"
    back = from_info(info)
    assert isinstance(back, RemoteError) and back.exc_type == "ActorDiedError"


def test_a_foreign_exception_from_mpreg_itself_is_internal_not_blamed_on_the_user() -> None:
    info = _caught_by_a_worker(_user_function, "a bug", user_code=False)
    assert info.kind == "internal"
    back = from_info(info)
    assert type(back) is MpregError
    assert str(back) == "internal: a bug"


def test_the_command_filled_in_later_names_the_command_in_front() -> None:
    # The worker does not know the command's name; the node's session fills it in.
    try:
        dumps_value(threading.Lock(), what="the result of 'lock'")
    except SerializationError as exc:
        info = to_info(exc)
    assert info.command == ""
    back = from_info(replace(info, command="lock"))
    assert isinstance(back, SerializationError) and back.command == "lock"
    assert str(back).startswith("command 'lock': cannot pickle the result of 'lock'")
    died = from_info(ErrorInfo(kind="actor-died", message="gone", command="c"))
    assert type(died) is ActorDiedError and str(died) == "command 'c': gone"


def test_where_given_by_the_answer_wins_over_the_infos_own() -> None:
    info = to_info(RemoteError(command="c", exc_type="E", message="m", actor="n1/A-1"))
    assert info.where == "n1/A-1"
    back = from_info(info, where="n2/A-7")
    assert isinstance(back, RemoteError) and (back.node, back.actor) == ("n2", "n2/A-7")


def test_a_config_error_travels_as_the_usage_error_it_is() -> None:
    back = from_info(to_info(ConfigError("mpreg.yaml", "bad indent", line=3)))
    assert type(back) is UsageError and str(back) == "mpreg.yaml:3: bad indent"


def test_an_unknown_kind_from_a_newer_peer_is_still_an_mpreg_error() -> None:
    info = ErrorInfo(kind="quota", message="too many")  # type: ignore[arg-type]
    back = from_info(info)
    assert type(back) is MpregError and str(back) == "quota: too many"
