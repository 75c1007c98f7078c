"""What a connection may prove it holds, and what each proof lets it do. Pure: time is passed in.

Every credential derives from the cluster token, so one token is all a
cluster stores::

    full       the cluster token itself: run code, deploy, rotate, peer links
    read-only  HMAC(token, "mpreg read-only"): status, top, metrics, nothing else

A rotation makes the next token as ``HMAC(token, "mpreg rotate" salt)``: only
the random salt crosses the wire (the new secret never does), so whoever
lacks the old token learns nothing from seeing it. A :class:`TokenRing` then
holds the new token and, for a grace period, the old one too: a node accepts
both (and both read-only credentials) until the grace ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

READ_ONLY_PREFIX = "ro-"  # says what it is when pasted into --token or a Prometheus config
FINGERPRINT_HEX = 12


class Access(Enum):
    """What an authenticated connection may do."""

    FULL = "full"
    READ = "read-only"


@dataclass(frozen=True, slots=True)
class Key:
    """A secret a handshake may prove it holds, and the access that proof grants."""

    secret: bytes
    access: Access = Access.FULL

    def __repr__(self) -> str:  # never the secret, not even in a traceback
        return f"<Key {self.access.value} {fingerprint(self.secret)}>"


def fingerprint(token: str | bytes) -> str:
    """The first hex digits of the token's SHA-256: names a token without revealing it."""
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()[:FINGERPRINT_HEX]


def _derive(token: str | bytes, label: bytes) -> str:
    raw = token.encode() if isinstance(token, str) else token
    digest = hmac.new(raw, label, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def read_only_credential(token: str | bytes) -> str:
    """The read-only credential of a cluster token (safe to hand to a dashboard)."""
    return READ_ONLY_PREFIX + _derive(token, b"mpreg read-only")


def rotated_token(token: str, salt: bytes) -> str:
    """The token that follows ``token`` in a rotation with ``salt``."""
    return _derive(token, b"mpreg rotate" + salt)[:32]


def keys_of(token: str | bytes) -> tuple[Key, Key]:
    """The two keys one cluster token makes: itself (full) and its read-only credential."""
    raw = token.encode() if isinstance(token, str) else token
    return Key(raw, Access.FULL), Key(read_only_credential(raw).encode(), Access.READ)


class TokenRing:
    """A node's cluster token, and the previous one while its grace period lasts.

    ``now`` is a monotonic clock reading, given by the caller.
    """

    def __init__(self, token: str) -> None:
        self.current = token
        self.previous: str | None = None
        self._previous_until = 0.0

    def __repr__(self) -> str:
        prev = f" previous={fingerprint(self.previous)}" if self.previous else ""
        return f"<TokenRing {fingerprint(self.current)}{prev}>"

    def rotate(self, salt: bytes, grace: float, now: float) -> str:
        """Make the next token current; the old one stays accepted for ``grace`` seconds."""
        old = self.current
        self.current = rotated_token(old, salt)
        self.previous = old
        self._previous_until = now + max(0.0, grace)
        return self.current

    def grace_left(self, now: float) -> float:
        """Seconds the previous token is still accepted (0: it is not)."""
        if self.previous is None:
            return 0.0
        left = self._previous_until - now
        if left <= 0:
            self.previous = None
            return 0.0
        return left

    def tokens(self, now: float) -> tuple[str, ...]:
        """The tokens accepted now, newest first."""
        return (self.current,) if not self.grace_left(now) else (self.current, self.previous or "")

    def accepted(self, now: float) -> tuple[Key, ...]:
        """What an acceptor offers proofs for: each accepted token, full then read-only."""
        return tuple(key for token in self.tokens(now) for key in keys_of(token))

    def dialling(self, now: float) -> tuple[Key, ...]:
        """What this node may prove when it dials a member: the accepted tokens, full only."""
        return tuple(Key(t.encode()) for t in self.tokens(now))
