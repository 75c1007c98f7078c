"""Messages about values held in the cluster: stored once (``Put``), fetched on demand.

A submitted call's result stays on the node that keeps its future until the
driver asks for it (``Fetch``; the answer is an ordinary ``TaskDone`` carrying
the value). ``Put`` stores a driver's value there under a task id of the
client's session, so any later call can use it as an argument. Registered
here, imported by :mod:`mpreg.protocol.messages` so every process knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.protocol.blob import Blob
from mpreg.protocol.schema import message


@message(38)
@dataclass(frozen=True, slots=True)
class Put:
    """Client -> node: hold ``value`` as the result of task ``task_id`` until released.

    Answered with a ``TaskDone`` whose ``held`` is the value's size, or with
    the error that kept it from being stored (the store is full).
    """

    task_id: int
    value: Blob


@message(39)
@dataclass(frozen=True, slots=True)
class Fetch:
    """Client -> node: send the held results of these tasks (each as a ``TaskDone``)."""

    task_ids: tuple[int, ...]
