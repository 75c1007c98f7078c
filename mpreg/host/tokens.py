"""Which cluster token a command uses: given, else from the environment, else stored here.

A new cluster (``mpreg start --head``) makes one and stores it; a node that
joins, and every client command, must find one or is told where to get it.
"""

from __future__ import annotations

from mpreg.errors import UsageError
from mpreg.host import state


def start_token(explicit: str | None, *, joining: bool, rejoin: bool = False) -> str:
    """The token a new node uses: given, else stored; a new cluster makes (and stores) one.

    ``rejoin``: a head given seeds, which may be rejoining its cluster, keeps
    the stored token rather than making a new one.
    """
    stored = state.read_token()
    if explicit:
        if not joining or stored is None:
            state.write_token(explicit)
        return explicit
    if rejoin and stored:
        return stored
    if joining:
        if stored is None:
            raise UsageError(
                "no cluster token: pass --token or set MPREG_TOKEN to the token of the "
                "cluster you join (stored on its head host in ~/.mpreg/token)"
            )
        return stored
    if stored and state.list_records():
        return stored  # other nodes of this host's cluster run: keep their token
    token = state.new_token()
    state.write_token(token)
    return token


def client_token(explicit: str | None) -> str:
    """The token a client command uses (``--token``, ``$MPREG_TOKEN``, the stored one).

    Raises UsageError saying where to get one if there is none.
    """
    token = state.default_token(explicit)
    if token is None:
        raise UsageError(
            f"no cluster token found (no --token, no {state.TOKEN_ENV}, nothing stored in "
            f"{state.token_path()}): pass --token or set {state.TOKEN_ENV} to the token that "
            "`mpreg start --head` stored on the cluster's head host (~/.mpreg/token there)"
        )
    return token
