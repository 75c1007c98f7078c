"""A node process's start-up announce: the one JSON line it writes when it serves or fails.

:mod:`mpreg.host.server` writes it (:meth:`Announce.line`), :mod:`mpreg.host.cluster`
reads it (:func:`read_announce`), so both sides share one format::

    {"address": "127.0.0.1:40123", "node_id": "...", "pid": 4242,    it serves
     "name": "vm-40123"}
    {"error": "OSError: [Errno 98] Address already in use",          it could not start
     "reason": "address_in_use", "message": "...", "errno": 98, "name": "vm-7773"}

``name`` is the node's name as it chose it (a node started without one is
named after the port it bound, which only it knows).

``reason`` is a :class:`~mpreg.host.start_failures.StartFailure`, chosen by the node
where it still holds the exception, so the starter never reads meaning out of
the error's text.

A separate module so that the driver, which starts nodes, does not import
the node itself.
"""

from __future__ import annotations

import json
import os
import select
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Announce:
    """Where a node serves, or (``error`` set) why it did not start."""

    address: str = ""
    node_id: str = ""
    pid: int = 0
    error: str | None = None  # the failure as shown to a person
    reason: str = ""  # a StartFailure value
    message: str = ""  # the exception's own text
    errno: int | None = None
    name: str = ""

    def line(self) -> str:
        """The JSON line the node writes (no newline)."""
        fields: dict[str, object]
        if self.error is None:
            fields = {"address": self.address, "node_id": self.node_id, "pid": self.pid}
        else:
            fields = {"error": self.error, "reason": self.reason, "message": self.message}
            if self.errno is not None:
                fields["errno"] = self.errno
        if self.name:
            fields["name"] = self.name
        return json.dumps(fields)

    @classmethod
    def parse(cls, line: str) -> Announce | None:
        """The announce in ``line``; None for an empty or garbled line (the node died first)."""
        try:
            fields = json.loads(line) if line else None
        except json.JSONDecodeError:
            return None
        if not isinstance(fields, dict):
            return None
        name = str(fields.get("name", ""))
        if "error" in fields:
            code = fields.get("errno")
            return cls(
                error=str(fields["error"]),
                reason=str(fields.get("reason", "")),
                message=str(fields.get("message", "")),
                errno=code if isinstance(code, int) else None,
                name=name,
            )
        if "address" in fields:
            return cls(fields["address"], fields["node_id"], int(fields["pid"]), name=name)
        return None


def read_announce(fd: int, timeout: float) -> Announce | None:
    """Read the announce from ``fd``: None if the node closed it without one.

    Raises TimeoutError if no line arrived within ``timeout`` seconds.
    Blocking: an asyncio caller runs it in a thread.
    """
    line = _read_line(fd, time.monotonic() + timeout)
    if line is None:
        raise TimeoutError
    return Announce.parse(line)


def _read_line(fd: int, deadline: float) -> str | None:
    """One line from ``fd`` ("" at end of file without a line), or None at the deadline."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").partition("\n")[0]
