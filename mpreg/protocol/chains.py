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
error names the failed step. The node splits the answer by its plain JSON
manifest without unpickling anything (:func:`unpack_chain_answer`).

Registered here, imported by :mod:`mpreg.protocol.messages`. Pure: no I/O.
"""

from __future__ import annotations

import json
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

    ``results`` has one entry per step that ran (None: not exported); its
    parts follow a JSON manifest, so nothing is copied.
    """
    manifest: dict[str, Any] = {
        "took": [round(seconds, 9) for seconds in took],
        "results": [None if blob is None else len(blob.parts) for blob in results],
    }
    parts: list[Any] = [json.dumps(manifest).encode()]
    for blob in results:
        if blob is not None:
            parts.extend(blob.parts)
    return Blob(parts)


def unpack_chain_answer(blob: Blob) -> tuple[tuple[float, ...], tuple[Blob | None, ...]]:
    """Split a chain answer: (seconds per step that ran, exported result per step that ran).

    Raises ValueError if ``blob`` is not one.
    """
    try:
        manifest = json.loads(bytes(blob.parts[0]))
        took = tuple(float(seconds) for seconds in manifest["took"])
        counts = list(manifest["results"])
    except (IndexError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a chain answer: {exc}") from None
    if len(counts) != len(took):
        raise ValueError("not a chain answer: a result count per step that ran is needed")
    parts = blob.parts
    at = 1
    results: list[Blob | None] = []
    for count in counts:
        if count is None:
            results.append(None)
        elif type(count) is int and count > 0 and at + count <= len(parts):
            results.append(Blob(parts[at : at + count]))
            at += count
        else:
            raise ValueError("not a chain answer: bad manifest entry")
    if at != len(parts):
        raise ValueError("not a chain answer: its parts do not match its manifest")
    return took, tuple(results)


__all__ = ["ChainStep", "pack_chain_answer", "unpack_chain_answer"]
