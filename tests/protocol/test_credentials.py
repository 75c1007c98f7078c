"""Credentials: the read-only key, rotation with a grace, and what each proof grants."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from mpreg.errors import AuthenticationError, ProtocolError
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import decode_restricted, encode_message
from mpreg.protocol.credentials import (
    Access,
    Key,
    TokenRing,
    fingerprint,
    read_only_credential,
    rotated_token,
)
from mpreg.protocol.frames import Frame, FrameDecoder, FrameKind, encode_frame
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import Deploy, Reply, StatusRequest, SubmitBatch, TaskSpec

TOKEN = "the-cluster-token"


def _handshake(
    client_keys: bytes | tuple[Key, ...], node_keys: bytes | tuple[Key, ...], source: str = ""
) -> tuple[PeerIdentity | None, AuthenticationError | None]:
    """Run both sides; (the peer the node admitted, the client's failure)."""
    client = Handshake("connector", client_keys, PeerIdentity("client", "c"), source=source)
    node = Handshake("acceptor", node_keys, PeerIdentity("node", "n"))
    hello = client.start()
    assert hello is not None
    challenge = node.receive(hello)
    assert challenge.send is not None
    proof = client.receive(challenge.send)
    if proof.failure is not None:
        return None, proof.failure
    assert proof.send is not None
    welcome = node.receive(proof.send)
    assert welcome.send is not None and welcome.peer is not None
    assert client.receive(welcome.send).peer is not None
    return welcome.peer, None


def test_the_cluster_token_authenticates_with_full_access() -> None:
    peer, failure = _handshake(TOKEN.encode(), TOKEN.encode())
    assert failure is None and peer is not None and peer.access is Access.FULL


def test_the_read_only_credential_authenticates_with_read_access_only() -> None:
    peer, failure = _handshake(read_only_credential(TOKEN).encode(), TOKEN.encode())
    assert failure is None and peer is not None and peer.access is Access.READ


def test_the_read_only_credential_never_yields_the_token() -> None:
    credential = read_only_credential(TOKEN)
    assert credential.startswith("ro-") and TOKEN not in credential
    assert read_only_credential(rotated_token(TOKEN, b"s")) != credential  # it rotates too


def test_a_node_holding_only_the_read_only_key_cannot_pass_for_the_cluster() -> None:
    # Whoever holds the read-only credential could run a fake node: a full client refuses it.
    fake = (Key(read_only_credential(TOKEN).encode(), Access.READ),)
    _, failure = _handshake(TOKEN.encode(), fake)
    assert failure is not None


def test_a_wrong_token_names_the_client_side_and_where_its_token_came_from() -> None:
    _, failure = _handshake(b"not-it", TOKEN.encode(), source="$MPREG_TOKEN")
    assert failure is not None
    text = str(failure)
    assert "this client's token" in text and "does not match the cluster's token" in text
    assert "read from $MPREG_TOKEN" in text
    assert fingerprint("not-it") in text
    assert "the node does not hold" not in text


def test_rotation_accepts_old_and_new_during_the_grace_then_only_the_new() -> None:
    ring = TokenRing(TOKEN)
    new = ring.rotate(b"salt", grace=3.0, now=100.0)
    assert new == rotated_token(TOKEN, b"salt") and new != TOKEN
    during = ring.accepted(101.0)
    for token in (TOKEN, new):
        peer, failure = _handshake(token.encode(), during)
        assert failure is None and peer is not None and peer.access is Access.FULL
        peer, _ = _handshake(read_only_credential(token).encode(), during)
        assert peer is not None and peer.access is Access.READ
    after = ring.accepted(103.5)
    assert _handshake(new.encode(), after)[1] is None
    _, failure = _handshake(TOKEN.encode(), after, source="--token")
    assert failure is not None and "read from --token" in str(failure)
    assert ring.previous is None and ring.grace_left(103.5) == 0.0


def test_a_node_dials_with_the_new_token_and_the_old_one_during_the_grace() -> None:
    ring = TokenRing(TOKEN)
    ring.rotate(b"salt", grace=5.0, now=0.0)
    # A member that has not heard of the rotation yet still takes the link.
    peer, failure = _handshake(ring.dialling(1.0), TOKEN.encode())
    assert failure is None and peer is not None and peer.access is Access.FULL
    assert _handshake(ring.dialling(6.0), TOKEN.encode())[1] is not None


def test_a_challenge_with_too_many_proofs_is_a_protocol_error() -> None:
    client = Handshake("connector", TOKEN.encode(), PeerIdentity("client", "c"))
    client.start()
    challenge = (
        b'{"type":"challenge","nonce":"n","proof":"p","role":"node","name":"n","proofs":'
        + str(["p"] * 50).replace("'", '"').encode()
        + b"}"
    )
    with pytest.raises(ProtocolError):
        client.receive(challenge)


# --- the restricted decoder a read-only peer's frames go through -------------------


class _Marker:
    """Unpickling it creates ``path``: the proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _frame(header: bytes, buffers: tuple[bytes, ...] = ()) -> Frame:
    raw = b"".join(bytes(p) for p in encode_frame(FrameKind.MESSAGE, header, buffers))
    (frame,) = FrameDecoder().feed(raw)
    return frame


def _encoded(message: object) -> Frame:
    (frame,) = FrameDecoder().feed(b"".join(bytes(p) for p in encode_message(message)))
    return frame


def test_the_read_only_messages_decode_without_any_global() -> None:
    assert decode_restricted(_encoded(StatusRequest(7, True))) == StatusRequest(7, True)


def test_a_pickle_naming_a_global_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    header = pickle.dumps((5, _Marker(marker), False))
    with pytest.raises(ProtocolError, match="refused"):
        decode_restricted(_frame(header))
    assert not marker.exists()


def test_a_status_reply_with_classes_in_it_is_refused_from_a_read_only_peer() -> None:
    with pytest.raises(ProtocolError):
        decode_restricted(_encoded(Reply(1, value=Path("/"))))


def test_a_submit_with_a_marker_blob_decodes_with_the_blob_still_bytes(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_Marker(marker))
    spec = TaskSpec(1, "t", "f", frozenset({"d"}), Blob([evil]), (), True)
    message = decode_restricted(_encoded(SubmitBatch(1, (spec,))))
    assert isinstance(message, SubmitBatch)
    assert bytes(message.tasks[0].args.parts[0]) == evil  # carried, never loaded
    deploy = decode_restricted(_encoded(Deploy(2, "x", 1, Blob([evil]))))
    assert isinstance(deploy, Deploy)
    assert not marker.exists()


def test_a_pickle_naming_a_huge_memo_slot_is_refused_before_it_allocates() -> None:
    """Twelve bytes (PROTO 2, NONE, LONG_BINPUT 2**28, STOP) would make the unpickler's
    memo gigabytes long, globals or not: a read-only peer's header never gets that far."""
    header = b"\x80\x02Nr" + (2**28).to_bytes(4, "little") + b"."
    started = time.perf_counter()
    with pytest.raises(ProtocolError, match="memo index"):
        decode_restricted(_frame(header))
    assert time.perf_counter() - started < 1.0
