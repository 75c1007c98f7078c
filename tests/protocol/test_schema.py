"""Wire schemas: every message class round-trips; malformed headers are ProtocolErrors."""

from __future__ import annotations

import pickle

import pytest

from mpreg.errors import ProtocolError
from mpreg.protocol import messages as m
from mpreg.protocol.codec import decode_message, dumps_value, encode_message, loads_value
from mpreg.protocol.frames import Frame, FrameDecoder, FrameKind
from mpreg.protocol.messages import Endpoint

BLOB = dumps_value({"x": [1, 2]})
ERROR = m.ErrorInfo(kind="user", message="boom", exc_type="ValueError", command="c")
ENDPOINT = Endpoint("n/a-1", "n", "actor", frozenset({"f"}), frozenset({"d"}), "A")
NODE = m.NodeInfo("n", "name", "127.0.0.1:1", "SERVER")
CALL = m.Call(7, "f", BLOB, ((3, BLOB), (4, dumps_value(2))), "cmd")
SPEC = m.TaskSpec(1, "a", "f", frozenset({"d"}), BLOB, (0,), True, True, 2)

SAMPLES = [
    SPEC,
    m.SubmitBatch(1, (SPEC, SPEC)),
    m.Release((1, 2, 3)),
    m.Deploy(1, "A", 2, BLOB),
    m.StatusRequest(3, True),
    m.BatchRejected(1, ERROR),
    m.TaskDone(1, BLOB, None, "n/a-1"),
    m.TaskDone(1, None, ERROR, ""),
    m.Reply(1, {"any": "value"}, None),
    m.Assign("n/a-1", BLOB),
    CALL,
    m.Shutdown(),
    m.WorkerReady("n/a-1", ("f",), ("d",), "A", 123),
    m.WorkerFailed("n/a-1", ERROR),
    m.CallDone(7, BLOB, None),
    m.Gossip(("ping", 1, (NODE,))),
    m.ForwardCall(9, "n/a-1", CALL),
    m.ForwardDone(9, None, ERROR),
]


def _roundtrip(message: object) -> object:
    data = b"".join(bytes(p) for p in encode_message(message))
    (frame,) = FrameDecoder().feed(data)
    return decode_message(frame)


def _normalised(value: object) -> object:
    """Blobs compare by their value; everything else as it is."""
    if isinstance(value, m.Blob):
        return ("blob", repr(loads_value(value)))
    if hasattr(value, "__dataclass_fields__"):
        return (
            type(value),
            tuple(_normalised(getattr(value, f)) for f in value.__dataclass_fields__),
        )
    if isinstance(value, tuple):
        return tuple(_normalised(v) for v in value)
    return value


@pytest.mark.parametrize("message", SAMPLES, ids=lambda s: type(s).__name__)
def test_every_message_round_trips(message: object) -> None:
    assert _normalised(_roundtrip(message)) == _normalised(message)


@pytest.mark.parametrize(
    "header",
    [(), [1, 2], (999,), ("x",), (10, 1), (10, 1, "f", (5, 1), (), "c")],
    ids=["empty", "list", "unknown-id", "bad-id", "too-few", "missing-buffer"],
)
def test_malformed_headers_are_protocol_errors(header: object) -> None:
    with pytest.raises(ProtocolError):
        decode_message(Frame(FrameKind.MESSAGE, pickle.dumps(header), ()))


def test_a_blob_outside_a_blob_field_refuses_to_pickle() -> None:
    with pytest.raises(Exception, match="Blob"):
        encode_message(m.Reply(1, BLOB, None))
