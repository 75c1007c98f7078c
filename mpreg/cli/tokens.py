"""``mpreg token show|rotate``: the cluster token's fingerprint, its read-only credential, rotation.

The token itself is printed only where it is made (``mpreg start --head``, and
a rotation whose new token has no file here to live in).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets

from mpreg.errors import UsageError
from mpreg.host import state
from mpreg.host.tokens import client_token
from mpreg.protocol.credentials import (
    READ_ONLY_PREFIX,
    fingerprint,
    read_only_credential,
    rotated_token,
)
from mpreg.transport.connection import parse_address

DEFAULT_GRACE = 600.0


def source_of(ns: argparse.Namespace) -> str:
    """Where this command's token comes from: ``--token``, ``$MPREG_TOKEN`` or the file."""
    if getattr(ns, "token_flag", False):
        return "--token"
    if getattr(ns, "token", None) or os.environ.get(state.TOKEN_ENV):
        return f"${state.TOKEN_ENV}"
    return str(state.token_path())


def cmd_token_show(ns: argparse.Namespace) -> int:
    """``mpreg token show [--read-only]``: the token's fingerprint, or the read-only credential."""
    token = client_token(ns.token)
    read_only = token.startswith(READ_ONLY_PREFIX)
    if ns.read_only:
        if read_only:
            raise UsageError(
                f"the token from {source_of(ns)} is already a read-only credential; "
                "the cluster token is needed to show it"
            )
        print(read_only_credential(token))
        return 0
    what = "read-only credential" if read_only else "cluster token"
    print(f"{what} fingerprint: {fingerprint(token)} (sha256, first 12 hex digits)")
    print(f"read from: {source_of(ns)}")
    return 0


def cmd_token_rotate(ns: argparse.Namespace) -> int:
    """``mpreg token rotate [--grace S]``: a new token on every node; the old one for S more s."""
    from mpreg.driver.admin import rotate_token

    if ns.grace < 0:
        raise UsageError(f"--grace must be >= 0 seconds, got {ns.grace:g}")
    address = ns.address or state.local_address()
    try:
        parse_address(address)
    except ValueError as exc:
        raise UsageError(f"bad address: {exc}") from None
    token = client_token(ns.token)
    if token.startswith(READ_ONLY_PREFIX):
        raise UsageError("a read-only credential cannot rotate the token: give the cluster token")
    source = source_of(ns)
    salt = secrets.token_bytes(16)
    new = rotated_token(token, salt)
    asyncio.run(rotate_token(address, token, salt, ns.grace, token_source=source))
    # Each line leaves at once (flush): the grace runs from now, so a script reading
    # the new token from a pipe must not wait for this process to exit.
    print(
        f"rotated the cluster token: {fingerprint(token)} -> {fingerprint(new)}; "
        f"the cluster accepts the old one for {ns.grace:g}s more",
        flush=True,
    )
    if source != str(state.token_path()):
        # Made here, and nowhere stored on this host: the one time it is shown.
        print(f"new token (replace the one in {source} with it; shown once): {new}", flush=True)
    if state.follow_rotation(token, new) or state.read_token() == new:
        print(f"this host's token file holds the new token: {state.token_path()}")
    print("the read-only credential changed with it: `mpreg token show --read-only`")
    return 0
