"""Fused chains: the steps of one request that run in one process as one call.

When a request's tasks form a chain whose every step can only run on the same
processes (the same actor, say), its node sends the whole chain as one
``Call`` whose ``chain`` lists the steps (:class:`ChainStep`, the first one
being the call itself). The worker runs them in turn and hands each result to
the next step in-process, then answers once (:mod:`mpreg.actors.chains`).

The answer's result is a *chain answer* (:func:`pack_chain_answer`): how long
each step that ran took, and the pickled results of the steps marked
``export`` (those the driver, or a task outside the chain, needs). On an error
the answer also carries what the steps before the failed one made; the
error names the failed step. The node splits the answer by its plain
fixed-layout manifest without unpickling anything (:func:`unpack_chain_answer`).

Registered here, imported by :mod:`mpreg.protocol.messages`. Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mpreg.protocol.blob import Blob
from mpreg.protocol.schema import message


@message(46)
@dataclass(frozen=True, slots=True)
class ChainStep:
    """One step of a fused chain, in the order they run.

    ``args`` is the step's cloudpickled ``(args, kwargs[, fields, whole])``
    with placeholders (``DepRef``) naming earlier steps by ``task_id``; None
    for the first step, whose arguments are the ``Call``'s own. ``export``:
    its result goes back in the answer.
    """

    task_id: int
    fun: str
    command: str
    args: Blob | None
    export: bool


def pack_chain_answer(took: Sequence[float], results: Sequence[Blob | None]) -> Blob:
    """One Blob: the seconds each step that ran took, and each step's exported result.

    ``results`` has one entry per step that ran (None: not exported). The
    first part is a fixed-layout manifest (the step count, then per step its
    seconds and its result's part count, -1 for none); the results' own parts
    follow, so nothing is copied.
    """
    count = len(took)
    sizes = [-1 if blob is None else len(blob.parts) for blob in results]
    parts: list[Any] = [struct.pack(f"<I{count}d{count}i", count, *took, *sizes)]
    for blob in results:
        if blob is not None:
            parts.extend(blob.parts)
    return Blob(parts)


def unpack_chain_answer(blob: Blob) -> tuple[tuple[float, ...], tuple[Blob | None, ...]]:
    """Split a chain answer: (seconds per step that ran, exported result per step that ran).

    Raises ValueError if ``blob`` is not one.
    """
    try:
        manifest = bytes(blob.parts[0])
        (count,) = _COUNT.unpack_from(manifest)
        layout = f"<I{count}d{count}i"
        if struct.calcsize(layout) != len(manifest):
            raise ValueError("its manifest has the wrong size")
        fields = struct.unpack(layout, manifest)
    except (IndexError, struct.error, ValueError) as exc:
        raise ValueError(f"not a chain answer: {exc}") from None
    took, sizes = fields[1 : count + 1], fields[count + 1 :]
    parts = blob.parts
    at = 1
    results: list[Blob | None] = []
    for size in sizes:
        if size == -1:
            results.append(None)
        elif 0 < size <= len(parts) - at:
            results.append(Blob(parts[at : at + size]))
            at += size
        else:
            raise ValueError("not a chain answer: bad manifest entry")
    if at != len(parts):
        raise ValueError("not a chain answer: its parts do not match its manifest")
    return took, tuple(results)


_COUNT = struct.Struct("<I")


__all__ = ["ChainStep", "pack_chain_answer", "unpack_chain_answer"]
