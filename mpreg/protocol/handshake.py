"""Challenge-response authentication, sans-IO, with no pickle anywhere.

Both sides prove they hold the cluster token without sending it::

    connector -> hello      {versions, role, name, nonce_c}
    acceptor  -> challenge  {nonce_a, proof_a = HMAC(token, "acceptor" nonce_c nonce_a),
                             proofs: the same for every other key it accepts}
              or refuse     {reason}            (version mismatch)
    connector -> proof      {proof_c = HMAC(key, "connector" nonce_c nonce_a)}
    acceptor  -> welcome    {}  or  refuse {reason}

An acceptor accepts several keys (:mod:`mpreg.protocol.credentials`): the
cluster token, its read-only credential, and during a rotation's grace the
previous token and its credential. It proves each; the connector answers
with the first of its own keys that one of those proofs matches, and the key
the acceptor finds in that answer sets the peer's :class:`Access`. A
connector never sends anything derived from its key before the acceptor
proved it holds that key too.

Messages are JSON. Proofs are compared in constant time. Versions that must
match: the protocol, Python major.minor (cloudpickled code is bytecode) and
cloudpickle.

:class:`Handshake` works on messages; :class:`FramedHandshake` drives it over
a byte stream (frames in, frames out, the pre-authentication frame limit), so
a transport only moves bytes: the asyncio connection and the blocking one
share it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import cloudpickle

from mpreg.errors import AuthenticationError, ProtocolError
from mpreg.protocol.codec import limit_frames
from mpreg.protocol.credentials import Access, Key, fingerprint, keys_of
from mpreg.protocol.frames import (
    DEFAULT_MAX_FRAME,
    HANDSHAKE_MAX_FRAME,
    PROTOCOL_VERSION,
    VALUE_HEADROOM,
    Buffer,
    Frame,
    FrameDecoder,
    FrameKind,
    encode_frame,
)

Role = Literal["client", "worker", "node"]
ROLES: tuple[Role, ...] = ("client", "worker", "node")
MAX_PROOFS = 8  # an acceptor accepts at most 4 keys; more is a peer misbehaving


def local_versions() -> dict[str, str]:
    return {
        "protocol": str(PROTOCOL_VERSION),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "cloudpickle": cloudpickle.__version__,
    }


def version_mismatch(theirs: dict[str, Any]) -> str | None:
    """A human sentence naming the first version that differs, or None."""
    ours = local_versions()
    for key, mine in ours.items():
        other = str(theirs.get(key, "?"))
        if other != mine:
            return f"{key} version mismatch: this side has {mine}, the peer has {other}"
    return None


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    role: Role
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    access: Access = Access.FULL  # what the key it proved grants (acceptor side)


class HandshakeState(Enum):
    START = "start"
    SENT_HELLO = "sent-hello"
    SENT_CHALLENGE = "sent-challenge"
    SENT_PROOF = "sent-proof"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Step:
    """What the handshake wants done after one received message."""

    send: bytes | None = None
    peer: PeerIdentity | None = None  # set once authenticated
    failure: AuthenticationError | None = None  # send ``send`` (if any), then close


def _mac(token: bytes, label: bytes, nonce_c: str, nonce_a: str) -> str:
    return hmac.new(token, label + nonce_c.encode() + nonce_a.encode(), hashlib.sha256).hexdigest()


def _encode(**fields: Any) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


class Handshake:
    """One side of the handshake. ``identity`` is what we tell the peer.

    ``token``: the cluster token (an acceptor then also accepts its read-only
    credential), or the keys to accept or try, preferred first. ``source``
    says where the connector's token was read from, for the message when it
    does not match (``--token``, ``$MPREG_TOKEN``, a file path).
    """

    def __init__(
        self,
        side: Literal["connector", "acceptor"],
        token: bytes | Sequence[Key],
        identity: PeerIdentity,
        *,
        source: str = "",
    ) -> None:
        self.side = side
        if isinstance(token, bytes | bytearray):
            raw = bytes(token)
            self.keys: tuple[Key, ...] = keys_of(raw) if side == "acceptor" else (Key(raw),)
        else:
            self.keys = tuple(token)
        if not self.keys:
            raise ValueError("a handshake needs at least one key")
        self.token = self.keys[0].secret
        self.source = source
        self.identity = identity
        self.state = HandshakeState.START
        self._nonce = secrets.token_hex(16)
        self._peer_nonce = ""
        self._peer: PeerIdentity | None = None

    def __repr__(self) -> str:
        return f"<Handshake {self.side} {self.state.name}>"

    def start(self) -> bytes | None:
        """The first message, for the connector; None for the acceptor."""
        if self.side == "acceptor":
            return None
        self.state = HandshakeState.SENT_HELLO
        ident = self.identity
        return _encode(
            type="hello",
            nonce=self._nonce,
            role=ident.role,
            name=ident.name,
            meta=ident.meta,
            **local_versions(),
        )

    def receive(self, raw: bytes) -> Step:
        """Take the peer's next message; what to send, and whether it is over.

        Raises ProtocolError (leaving the state FAILED) for anything that is
        not a well-formed message expected in the current state.
        """
        try:
            msg = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.state = HandshakeState.FAILED
            raise ProtocolError("handshake message is not JSON") from exc
        except RecursionError as exc:
            self.state = HandshakeState.FAILED
            raise ProtocolError("handshake message nests too deeply") from exc
        except ValueError as exc:  # e.g. an integer past the int-to-str digit limit
            self.state = HandshakeState.FAILED
            raise ProtocolError(f"handshake message is not acceptable JSON: {exc}") from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.state = HandshakeState.FAILED
            raise ProtocolError("handshake message has no type")
        try:
            return self._receive(msg)
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            self.state = HandshakeState.FAILED
            raise ProtocolError(f"malformed handshake message: {exc!r}") from exc

    def _receive(self, msg: dict[str, Any]) -> Step:
        kind = msg["type"]
        match (self.state, kind):
            case (HandshakeState.START, "hello") if self.side == "acceptor":
                return self._on_hello(msg)
            case (HandshakeState.SENT_HELLO, "challenge"):
                return self._on_challenge(msg)
            case (HandshakeState.SENT_CHALLENGE, "proof"):
                return self._on_proof(msg)
            case (HandshakeState.SENT_PROOF, "welcome"):
                self.state = HandshakeState.DONE
                return Step(peer=self._peer)
            case (_, "refuse"):
                self.state = HandshakeState.FAILED
                return Step(failure=AuthenticationError(f"refused by the peer: {msg['reason']}"))
            case _:
                was, self.state = self.state, HandshakeState.FAILED
                raise ProtocolError(f"unexpected handshake message {kind!r} in {was.name}")

    def _refuse(self, reason: str) -> Step:
        self.state = HandshakeState.FAILED
        return Step(send=_encode(type="refuse", reason=reason), failure=AuthenticationError(reason))

    def _on_hello(self, msg: dict[str, Any]) -> Step:
        mismatch = version_mismatch(msg)
        if mismatch:
            return self._refuse(mismatch)
        role = msg["role"]
        if role not in ROLES:
            return self._refuse(f"unknown role {role!r}")
        self._peer_nonce = str(msg["nonce"])
        meta = msg.get("meta") or {}
        self._peer = PeerIdentity(role=role, name=str(msg["name"]), meta=dict(meta))
        self.state = HandshakeState.SENT_CHALLENGE
        proofs = [_mac(k.secret, b"acceptor", self._peer_nonce, self._nonce) for k in self.keys]
        extra = {"proofs": proofs[1:]} if len(proofs) > 1 else {}
        return Step(
            send=_encode(
                type="challenge",
                nonce=self._nonce,
                proof=proofs[0],
                role=self.identity.role,
                name=self.identity.name,
                meta=self.identity.meta,
                **extra,
            )
        )

    def _on_challenge(self, msg: dict[str, Any]) -> Step:
        self._peer_nonce = str(msg["nonce"])
        extra = msg.get("proofs", [])
        if not isinstance(extra, list) or len(extra) > MAX_PROOFS:
            raise ValueError("the challenge's proofs are not a short list")
        offered = [str(msg["proof"]), *(str(p) for p in extra)]
        chosen = None
        for key in self.keys:
            expected = _mac(key.secret, b"acceptor", self._nonce, self._peer_nonce)
            # Every comparison runs (no early exit): the time says nothing of which matched.
            if sum(hmac.compare_digest(expected, proof) for proof in offered):
                chosen = key
                break
        if chosen is None:
            self.state = HandshakeState.FAILED
            return Step(failure=AuthenticationError(self._mismatch()))
        self._peer = PeerIdentity(
            role=msg["role"], name=str(msg["name"]), meta=dict(msg.get("meta") or {})
        )
        self.state = HandshakeState.SENT_PROOF
        return Step(
            send=_encode(
                type="proof", proof=_mac(chosen.secret, b"connector", self._nonce, self._peer_nonce)
            )
        )

    def _mismatch(self) -> str:
        """The connector's words when the node proves none of its keys: its token is wrong."""
        where = f", read from {self.source}" if self.source else ""
        return (
            f"authentication failed: this {self.identity.role}'s token (fingerprint "
            f"{fingerprint(self.token)}{where}) does not match the cluster's token. Use the "
            "cluster's token (stored on its head host in ~/.mpreg/token; `mpreg token show` "
            "there prints its fingerprint) with --token or MPREG_TOKEN"
        )

    def _on_proof(self, msg: dict[str, Any]) -> Step:
        proof = str(msg["proof"])
        nonces = (self._peer_nonce, self._nonce)
        matched = [
            key
            for key in self.keys
            if hmac.compare_digest(_mac(key.secret, b"connector", *nonces), proof)
        ]
        if not matched or self._peer is None:
            return self._refuse("authentication failed: wrong cluster token")
        self.state = HandshakeState.DONE
        peer = self._peer
        self._peer = PeerIdentity(peer.role, peer.name, peer.meta, access=matched[0].access)
        return Step(send=_encode(type="welcome"), peer=self._peer)


@dataclass(frozen=True, slots=True)
class Progress:
    """What a :class:`FramedHandshake` wants done after some bytes arrived.

    Write ``send`` first (in order), then: ``failure`` set, close the link;
    ``peer`` set, the link is open and ``frames`` are the frames that came
    right behind the last handshake message (message frames, unless the peer
    misbehaves: the caller checks their kind as it does after the handshake);
    neither set, wait for more bytes.
    """

    send: list[Buffer] = field(default_factory=list)
    peer: PeerIdentity | None = None
    failure: AuthenticationError | None = None
    frames: list[Frame] = field(default_factory=list)


class FramedHandshake:
    """A :class:`Handshake` over a byte stream: bytes in, frames to write out.

    Until the peer authenticated, ``decoder`` takes frames of at most
    ``HANDSHAKE_MAX_FRAME`` bytes (an unknown peer must not make this process
    buffer or decompress megabytes) and only handshake frames (nothing from
    an unauthenticated peer is ever unpickled). Once it did, the limit is
    ``max_frame`` and the caller keeps using ``decoder`` for the messages.
    """

    def __init__(self, handshake: Handshake, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.handshake = handshake
        self.decoder = FrameDecoder(min(max_frame, HANDSHAKE_MAX_FRAME))
        self.frames_received = 0  # none yet and a ProtocolError: likely not mpreg at all
        self._max_frame = max_frame

    def __repr__(self) -> str:
        return f"<FramedHandshake {self.handshake!r} frames={self.frames_received}>"

    def _learn_limit(self, peer: PeerIdentity) -> None:
        """A client or worker takes the frame limit its node announces (``max_frame``).

        Its results may be that large, and the values it sends must fit: the
        codec refuses larger ones where they are made. Nodes keep their own.
        """
        announced = peer.meta.get("max_frame")
        if self.handshake.identity.role == "node" or peer.role != "node":
            return
        if type(announced) is int and announced > VALUE_HEADROOM:
            self.decoder.max_frame = max(self._max_frame, announced)
            limit_frames(announced)

    def start(self) -> list[Buffer]:
        """The frame to write first (the connector's hello); empty for the acceptor."""
        first = self.handshake.start()
        return [] if first is None else encode_frame(FrameKind.HANDSHAKE, first)

    def receive(self, data: Buffer) -> Progress:
        """Take bytes from the peer; raises ProtocolError for anything malformed."""
        send: list[Buffer] = []
        frames = self.decoder.feed(data)
        # The decoder stops after each handshake frame (so the frames behind the
        # last one are parsed under the raised limit); b"" parses what follows.
        while frames:
            for frame in frames:
                if frame.kind is not FrameKind.HANDSHAKE:
                    raise ProtocolError("message frame before authentication")
                self.frames_received += 1
                step = self.handshake.receive(frame.header)
                if step.send is not None:
                    send.extend(encode_frame(FrameKind.HANDSHAKE, step.send))
                if step.failure is not None:
                    return Progress(send, failure=step.failure)
                if step.peer is not None:
                    self.decoder.max_frame = self._max_frame
                    self._learn_limit(step.peer)
                    return Progress(send, peer=step.peer, frames=self.decoder.feed(b""))
            frames = self.decoder.feed(b"")
        return Progress(send)
