"""Dialling a node: open a connection and authenticate it, or say clearly why not."""

from __future__ import annotations

import asyncio
from ssl import SSLContext

from mpreg.errors import ClusterUnavailable
from mpreg.protocol.frames import DEFAULT_MAX_FRAME
from mpreg.protocol.handshake import Handshake
from mpreg.transport import tls
from mpreg.transport.connection import (
    HANDSHAKE_TIMEOUT,
    STALL_TIMEOUT,
    CloseHandler,
    Connection,
    MessageHandler,
)


async def connect(
    host: str,
    port: int,
    handshake: Handshake,
    *,
    on_message: MessageHandler | None = None,
    on_close: CloseHandler | None = None,
    timeout: float = HANDSHAKE_TIMEOUT,
    ssl: SSLContext | None = None,
    max_frame: int = DEFAULT_MAX_FRAME,
    stall_timeout: float = STALL_TIMEOUT,
) -> Connection:
    """Dial ``host:port`` (over TLS with an ``ssl`` context) and authenticate.

    Raises ClusterUnavailable, or AuthenticationError (a refused token or
    certificate, TLS on one side only: :func:`mpreg.transport.tls.dial_failure`).
    """
    loop = asyncio.get_running_loop()
    conn: Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                lambda: Connection(
                    handshake,
                    on_message=on_message,
                    on_close=on_close,
                    max_frame=max_frame,
                    stall_timeout=stall_timeout,
                ),
                host,
                port,
                ssl=ssl,
            )
            await conn.ready
    except TimeoutError as exc:
        if conn is not None:
            conn.abort()  # connected, never authenticated (a hung peer's kernel still accepts)
        raise ClusterUnavailable(f"no answer from {host}:{port} within {timeout:g}s") from exc
    except OSError as exc:  # ClusterUnavailable too: closed during the handshake
        heard = conn is not None and conn.received > 0
        raise await tls.dial_failure(exc, host, port, ssl, heard) from exc
    except asyncio.CancelledError:
        if conn is not None:
            conn.abort()
        raise
    return conn
