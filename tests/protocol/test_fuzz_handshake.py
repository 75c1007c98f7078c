"""Fuzzing the handshake: whatever a peer sends before it authenticated is refused, never unpickled.

Both sides, at every step: the peer's message is arbitrary bytes, arbitrary
JSON, or a handshake message with fields missing, mistyped or replaced (a
pickle among them, which would create a file if anything unpickled it).
Run long with ``uv run pytest -m slow tests/protocol/test_fuzz_handshake.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    bounded,
    chunkings,
    ci_and_long,
    cut,
    fuzz,
    one_frame,
    touch_pickle,
    watch_unpickling,
    wire,
)
from hypothesis import example, given
from hypothesis import strategies as st

from mpreg.errors import AuthenticationError, ProtocolError
from mpreg.protocol.frames import Buffer, FrameKind
from mpreg.protocol.handshake import (
    FramedHandshake,
    Handshake,
    HandshakeState,
    PeerIdentity,
    Step,
    local_versions,
)

TOKEN = b"cluster-token"
# The file a pickle among the fuzzed messages would create; it must never exist.
MARKER = Path(tempfile.gettempdir()) / f"mpreg-fuzz-unpickled-{os.getpid()}"
PICKLE = touch_pickle(str(MARKER))

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.just(PICKLE.decode("latin-1")),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
TYPES = ["hello", "challenge", "proof", "welcome", "refuse"]
FIELDS = ["nonce", "role", "name", "meta", "proof", "reason", *local_versions()]


_RIGHT: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.just(value) for name, value in local_versions().items()},
    "role": st.sampled_from(["client", "worker", "node"]),
    "proof": st.text("0123456789abcdef", min_size=64, max_size=64),
}
_FIELD_VALUES = {name: st.one_of(_RIGHT.get(name, st.just("x")), json_values) for name in FIELDS}


@st.composite
def handshake_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message of a known type whose fields are right, missing, or anything else."""
    msg: dict[str, Any] = {"type": draw(st.one_of(st.sampled_from(TYPES), json_values))}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        msg[name] = draw(_FIELD_VALUES[name])
    return msg


def _valid(kind: str) -> dict[str, Any]:
    """A well-formed message of ``kind`` (its proof wrong: fuzzing has no token)."""
    ident: dict[str, Any] = {"role": "node", "name": "n", "meta": {}}
    valid: dict[str, dict[str, Any]] = {
        "hello": {"type": "hello", "nonce": "00", **ident, **local_versions()},
        "challenge": {"type": "challenge", "nonce": "00", "proof": "0" * 64, **ident},
        "proof": {"type": "proof", "proof": "0" * 64},
        "welcome": {"type": "welcome"},
        "refuse": {"type": "refuse", "reason": "no"},
    }
    return valid[kind]


_INDEX = st.integers(0, 15)
_ACTION = st.integers(0, 3)  # drop the field, replace it (twice as likely), add another


@st.composite
def mutated_messages(draw: st.DrawFn, kinds: tuple[str, ...] = tuple(TYPES)) -> bytes:
    """A well-formed message with a field or two replaced, dropped or added: the deep paths."""
    msg = _valid(draw(st.sampled_from(kinds)))
    for _ in range(draw(st.integers(1, 2))):
        keys = sorted(msg)
        name = keys[draw(_INDEX) % len(keys)] if keys else "type"
        action = draw(_ACTION)
        if action == 0 and keys:
            del msg[name]
        else:
            msg[name if action < 3 else FIELDS[draw(_INDEX) % len(FIELDS)]] = draw(json_values)
    return json.dumps(msg).encode()


peer_messages = st.one_of(
    mutated_messages(),
    st.binary(max_size=200),
    st.just(PICKLE),
    json_values.map(lambda v: json.dumps(v).encode()),
    handshake_messages().map(lambda m: json.dumps(m).encode()),
)


def _identity(role: str = "client") -> PeerIdentity:
    return PeerIdentity(role, role, {"k": 1})  # type: ignore[arg-type]


def _acceptor_at_start() -> Handshake:
    return Handshake("acceptor", TOKEN, _identity("node"))


def _acceptor_after_hello() -> Handshake:
    acceptor = _acceptor_at_start()
    hello = Handshake("connector", TOKEN, _identity()).start()
    assert hello is not None
    acceptor.receive(hello)
    return acceptor


def _connector_after_hello() -> Handshake:
    connector = Handshake("connector", TOKEN, _identity())
    connector.start()
    return connector


def _connector_after_proof() -> Handshake:
    connector = Handshake("connector", TOKEN, _identity())
    hello = connector.start()
    assert hello is not None
    challenge = _acceptor_at_start().receive(hello).send  # a real one: its proof checks out
    assert challenge is not None
    assert connector.receive(challenge).send is not None
    return connector


# Each step, and the message it expects (the one that reaches its deepest code).
STEPS: dict[str, tuple[Callable[[], Handshake], str]] = {
    "acceptor-start": (_acceptor_at_start, "hello"),
    "acceptor-sent-challenge": (_acceptor_after_hello, "proof"),
    "connector-sent-hello": (_connector_after_hello, "challenge"),
    "connector-sent-proof": (_connector_after_proof, "welcome"),
}


def _check_step(handshake: Handshake, raw: bytes) -> None:
    """``raw`` is refused (ProtocolError or a refusal), or moves the handshake on honestly."""
    was = handshake.state
    with bounded(), watch_unpickling() as unpickled:
        try:
            step: Step | None = handshake.receive(raw)
        except ProtocolError:
            step = None
    assert not unpickled and not MARKER.exists()
    if step is None or step.failure is not None:
        assert handshake.state is HandshakeState.FAILED
        assert step is None or isinstance(step.failure, AuthenticationError)
        return
    # Without the token no message authenticates a peer; only the connector, whose
    # peer already proved the token in its challenge, takes a bare welcome.
    if step.peer is not None:
        assert (handshake.side, was) == ("connector", HandshakeState.SENT_PROOF)
        assert json.loads(raw)["type"] == "welcome"


@pytest.mark.parametrize("at", list(STEPS))
@pytest.mark.parametrize("examples", ci_and_long(150))
def test_any_peer_message_at_any_step_is_refused_cleanly(examples: int, at: str) -> None:
    make, expected = STEPS[at]

    @fuzz(examples)
    @given(st.one_of(mutated_messages((expected,)), peer_messages))
    @example(PICKLE)
    @example(b'{"type": "refuse"}')  # a refusal without a reason: a ProtocolError
    @example(b'{"type": "hello", "role": "client", "meta": "ab"}')
    def check(raw: bytes) -> None:
        _check_step(make(), raw)

    check()


def _bytes(parts: list[Buffer]) -> bytes:
    return b"".join(bytes(p) for p in parts)


handshake_frames = peer_messages.map(lambda raw: wire(FrameKind.HANDSHAKE, raw))
pickle_frames = st.just(wire(FrameKind.MESSAGE, PICKLE))
peer_bytes = st.lists(
    st.one_of(handshake_frames, pickle_frames, one_frame), min_size=1, max_size=3
).map(b"".join)


@pytest.mark.parametrize("side", ["acceptor", "connector"])
@pytest.mark.parametrize("examples", ci_and_long(200))
def test_any_bytes_before_authentication_are_refused_and_never_unpickled(
    examples: int, side: str
) -> None:
    @fuzz(examples)
    @given(peer_bytes, chunkings, st.booleans())
    def check(data: bytes, chunking: list[tuple[int, int]], after_hello: bool) -> None:
        framed = FramedHandshake(Handshake(side, TOKEN, _identity()), max_frame=1 << 20)  # type: ignore[arg-type]
        framed.start()
        if after_hello and side == "acceptor":  # a real hello first: fuzz the proof step
            hello = Handshake("connector", TOKEN, _identity()).start() or b""
            assert framed.receive(wire(FrameKind.HANDSHAKE, hello)).send
        with bounded(), watch_unpickling() as unpickled:
            try:
                for chunk in cut(data, chunking):
                    progress = framed.receive(chunk)
                    assert progress.peer is None and not progress.frames
                    if progress.failure is not None:
                        break
            except ProtocolError:
                pass
        assert not unpickled and not MARKER.exists()
        assert framed.decoder.max_frame <= 64 * 1024  # still the pre-authentication limit

    check()
