"""The handshake state machine: mutual proof of the token, versions checked, no pickle."""

from __future__ import annotations

import json

import pytest

from mpreg.errors import AuthenticationError, ProtocolError
from mpreg.protocol.frames import HANDSHAKE_MAX_FRAME, Buffer, FrameKind, encode_frame
from mpreg.protocol.handshake import (
    FramedHandshake,
    Handshake,
    HandshakeState,
    PeerIdentity,
    Progress,
    Step,
)


def _pair(client_token: bytes = b"t", node_token: bytes = b"t") -> tuple[Handshake, Handshake]:
    client = Handshake("connector", client_token, PeerIdentity("client", "c", {"k": 1}))
    node = Handshake("acceptor", node_token, PeerIdentity("node", "n"))
    return client, node


def _run(client: Handshake, node: Handshake) -> tuple[Step, Step, Step | None]:
    hello = client.start()
    assert hello is not None
    challenge = node.receive(hello)
    assert challenge.send is not None
    proof = client.receive(challenge.send)
    if proof.send is None:
        return challenge, proof, None
    welcome = node.receive(proof.send)
    return challenge, proof, welcome


def test_same_token_authenticates_both_sides() -> None:
    client, node = _pair()
    _, _, welcome = _run(client, node)
    assert welcome is not None and welcome.peer == PeerIdentity("client", "c", {"k": 1})
    assert welcome.send is not None
    done = client.receive(welcome.send)
    assert done.peer is not None and done.peer.name == "n"
    assert client.state is node.state is HandshakeState.DONE


def test_node_refuses_a_client_with_the_wrong_token() -> None:
    client, node = _pair(client_token=b"wrong")
    # The client already notices the node's proof does not match its token.
    _, proof, _ = _run(client, node)
    assert isinstance(proof.failure, AuthenticationError)


def test_node_refuses_a_forged_proof_and_says_so() -> None:
    client, node = _pair()
    hello = client.start()
    assert hello is not None
    node.receive(hello)
    step = node.receive(json.dumps({"type": "proof", "proof": "ab" * 32}).encode())
    assert isinstance(step.failure, AuthenticationError)
    assert step.send is not None and json.loads(step.send)["type"] == "refuse"
    assert node.state is HandshakeState.FAILED


def test_version_mismatch_is_refused_with_the_versions_named() -> None:
    _, node = _pair()
    hello = {
        "type": "hello",
        "nonce": "1",
        "role": "client",
        "name": "x",
        "meta": {},
        "protocol": "1",
        "python": "3.0",
        "cloudpickle": "0.1",
    }
    step = node.receive(json.dumps(hello).encode())
    assert step.failure is not None and "python version mismatch" in str(step.failure)


def test_hello_without_versions_is_refused() -> None:
    _, node = _pair()
    step = node.receive(b'{"type": "hello"}')
    assert isinstance(step.failure, AuthenticationError)


@pytest.mark.parametrize("raw", [b"\x80\x04pickle", b"[]", b'{"type": "welcome"}', b'{"no": 1}'])
def test_junk_in_the_handshake_is_a_protocol_error(raw: bytes) -> None:
    _, node = _pair()
    with pytest.raises(ProtocolError):
        node.receive(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 100_000, "nests too deeply"),
        (b'{"type": "hello", "nonce": ' + b"9" * 5000 + b"}", "not acceptable JSON"),
    ],
    ids=["deep-nesting", "huge-number"],
)
def test_json_the_parser_chokes_on_is_a_protocol_error(raw: bytes, message: str) -> None:
    _, node = _pair()
    with pytest.raises(ProtocolError, match=message):
        node.receive(raw)
    assert node.state is HandshakeState.FAILED


def test_unexpected_message_is_reported_with_the_state_it_arrived_in() -> None:
    _, node = _pair()
    with pytest.raises(ProtocolError, match="unexpected handshake message 'proof' in START"):
        node.receive(b'{"type": "proof", "proof": "00"}')
    assert node.state is HandshakeState.FAILED


# --- FramedHandshake: the same handshake over a byte stream ---------------------


def _framed_pair(node_token: bytes = b"t") -> tuple[FramedHandshake, FramedHandshake]:
    client, node = _pair(node_token=node_token)
    return FramedHandshake(client, max_frame=1 << 20), FramedHandshake(node, max_frame=1 << 20)


def _bytes(parts: list[Buffer]) -> bytes:
    return b"".join(bytes(p) for p in parts)


def _pump(client: FramedHandshake, node: FramedHandshake) -> tuple[Progress, Progress]:
    """Run the handshake to its end, one byte at a time; the last progress of each side."""
    to_node = _bytes(client.start())
    assert node.start() == []
    last = {"client": Progress(), "node": Progress()}
    while to_node:
        for byte in to_node:
            last["node"] = node.receive(bytes([byte]))
            if last["node"].send or last["node"].failure or last["node"].peer:
                break
        to_client = _bytes(last["node"].send)
        to_node = b""
        for byte in to_client:
            last["client"] = client.receive(bytes([byte]))
            if last["client"].send or last["client"].failure or last["client"].peer:
                break
        to_node = _bytes(last["client"].send)
    return last["client"], last["node"]


def test_framed_handshake_authenticates_both_sides_fed_byte_by_byte() -> None:
    client, node = _framed_pair()
    client_done, node_done = _pump(client, node)
    assert client_done.peer == PeerIdentity("node", "n")
    assert node_done.peer == PeerIdentity("client", "c", {"k": 1})
    assert client.decoder.max_frame == node.decoder.max_frame == 1 << 20


def test_framed_handshake_reports_a_refusal_with_the_frame_to_send() -> None:
    client, node = _framed_pair(node_token=b"other")
    client_done, _ = _pump(client, node)
    assert isinstance(client_done.failure, AuthenticationError)
    assert client_done.peer is None and client.decoder.max_frame == HANDSHAKE_MAX_FRAME


def test_messages_behind_the_welcome_come_back_as_frames() -> None:
    client, node = _framed_pair()
    hello = _bytes(client.start())
    challenge = _bytes(node.receive(hello).send)
    proof = _bytes(client.receive(challenge).send)
    welcome = node.receive(proof)
    assert welcome.peer is not None
    message = _bytes(encode_frame(FrameKind.MESSAGE, b"m" * 100_000))  # past the pre-auth limit
    done = client.receive(_bytes(welcome.send) + message)
    assert done.peer is not None
    assert [(f.kind, len(f.header)) for f in done.frames] == [(FrameKind.MESSAGE, 100_000)]


def test_a_message_frame_before_authentication_is_refused() -> None:
    _, node = _framed_pair()
    with pytest.raises(ProtocolError, match="message frame before authentication"):
        node.receive(_bytes(encode_frame(FrameKind.MESSAGE, b"x")))


def test_a_frame_over_the_pre_authentication_limit_is_refused() -> None:
    _, node = _framed_pair()
    big = _bytes(encode_frame(FrameKind.HANDSHAKE, b"{" + b" " * HANDSHAKE_MAX_FRAME + b"}"))
    with pytest.raises(ProtocolError):
        node.receive(big[:64])
    assert node.frames_received == 0
