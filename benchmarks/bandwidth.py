"""MB/s of large numpy arguments and results, next to a raw loopback copy in the same run.

``uv run python -m benchmarks.bandwidth [--sizes 1,10,100] [--reps 5]``

Each row is one round trip per repetition with a fresh-content array of the
size (MB = 10**6 bytes), timed from the call to the checked answer; MB/s
counts the bytes that cross each way (argument plus result, ``2 x size``).

- ``raw loopback echo`` (the baseline): this process writes the array's
  bytes (``sendall`` of a memoryview) to a second process over a 127.0.0.1
  TCP socket; that process reads all of them (``recv_into`` one buffer it
  keeps) and only then writes them back; this process reads them into one
  kept buffer. The same bytes the same distance the value must go (out and
  back, between two processes), with nothing but the copies the kernel makes:
  a floor no framework can beat.
- ``mpreg.request`` (sync API, ``mpreg.init()`` embedded cluster): driver ->
  node -> actor process -> node -> driver, the actor returning its argument.
  That is four socket hops, the raw echo's two plus the node's forward each
  way, so 50% of the raw figure is what a store-and-forward node can reach
  with no copy of its own.

A second table is one value used by many calls (``--uses``, 50): the
array passed to each ``submit``, against ``mpreg.put`` once and the future
passed to each. Its MB/s count the array bytes the calls received
(``uses x size``), next to the raw echo's rate; the put row sends the array
from the driver once, and the node hands it to the actor process per call.

Rows are plain callables, so a workload is one more :class:`Row`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MB = 10**6
_LEN = struct.Struct("!Q")


@dataclass(frozen=True)
class Row:
    """One workload: ``run(array)`` makes one round trip (timed) and returns the answer,
    which is checked against the array after the clock stopped."""

    name: str
    run: Callable[[Any], Any]
    moved: float = 2.0  # bytes counted per round trip, in array sizes (out and back: 2)


def _echo_server(port_out: Any) -> None:
    """Read each message whole into a kept buffer, then write it back."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port_out.send(server.getsockname()[1])
        conn, _ = server.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            while True:
                head = conn.recv(_LEN.size, socket.MSG_WAITALL)
                if len(head) < _LEN.size:
                    return
                (size,) = _LEN.unpack(head)
                if len(buf) < size:
                    buf = bytearray(size)
                view = memoryview(buf)[:size]
                got = 0
                while got < size:
                    got += conn.recv_into(view[got:])
                conn.sendall(view)


class RawEcho:
    """The baseline's second process and this side's socket and kept buffer."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        self._proc = ctx.Process(target=_echo_server, args=(there,), daemon=True)
        self._proc.start()
        port = here.recv()
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()

    def run(self, array: Any) -> memoryview:
        data = memoryview(array).cast("B")
        size = data.nbytes
        if len(self._buf) < size:
            self._buf = bytearray(size)
        self._sock.sendall(_LEN.pack(size))
        self._sock.sendall(data)
        view = memoryview(self._buf)[:size]
        got = 0
        while got < size:
            got += self._sock.recv_into(view[got:])
        return view

    def close(self) -> None:
        self._sock.close()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def mpreg_row() -> tuple[Row, Callable[[], None]]:
    """The sync API against an embedded cluster, and how to shut it down."""
    import mpreg
    from benchmarks.systems.mpreg_actors import Model
    from mpreg import Command

    mpreg.init(actors=[Model], workers=0)

    def run(array: Any) -> Any:
        return mpreg.request([Command("e", "echo_array", [array], ["model"])])["e"]

    return Row("mpreg.request (driver -> node -> actor and back)", run), mpreg.shutdown


def use_rows(uses: int) -> list[Row]:
    """One array used by ``uses`` calls: passed to each, or put once (needs ``mpreg_row``'s
    cluster). Each checks every call's answer and returns the array."""
    import mpreg

    def check(array: Any, futures: list[mpreg.Future]) -> Any:
        if mpreg.get(futures) != [array.nbytes] * uses:
            raise AssertionError("a call saw another array")
        return array

    def each(array: Any) -> Any:
        return check(
            array, [mpreg.submit("nbytes", array, datasets=["model"]) for _ in range(uses)]
        )

    def put(array: Any) -> Any:
        stored = mpreg.put(array)
        return check(
            array, [mpreg.submit("nbytes", stored, datasets=["model"]) for _ in range(uses)]
        )

    return [
        Row(f"{uses} submits, the array passed to each", each, moved=uses),
        Row(f"mpreg.put once, {uses} submits of its future", put, moved=uses),
    ]


def measure(
    rows: Sequence[Row], sizes_mb: Sequence[int], reps: int
) -> dict[str, dict[int, list[float]]]:
    """Seconds per round trip: ``{row: {size: [per repetition]}}``, rows alternating."""
    seconds: dict[str, dict[int, list[float]]] = {r.name: {s: [] for s in sizes_mb} for r in rows}
    rng = np.random.default_rng(0)
    for size in sizes_mb:
        for row in rows:
            row.run(rng.integers(0, 255, size * MB, dtype=np.uint8))  # warm-up, untimed
        for rep in range(reps):
            array = rng.integers(0, 255, size * MB, dtype=np.uint8)
            for row in rows[rep % len(rows) :] + rows[: rep % len(rows)]:
                start = time.perf_counter()
                answer = row.run(array)
                seconds[row.name][size].append(time.perf_counter() - start)
                if not np.array_equal(np.frombuffer(answer, dtype=np.uint8), array):
                    raise AssertionError(f"{row.name}: the answer came back wrong")
                del answer  # its buffer may be reused by the next round trip
    return seconds


def table(
    seconds: dict[str, dict[int, list[float]]], baseline: str, moved: dict[str, float]
) -> str:
    """Markdown: median MB/s per row and size, and each row's ratio to ``baseline``."""
    sizes = list(next(iter(seconds.values())))
    head = "| workload | " + " | ".join(f"{s} MB" for s in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]
    base = {s: moved[baseline] * s / statistics.median(seconds[baseline][s]) for s in sizes}
    for name, by_size in seconds.items():
        cells = []
        for s in sizes:
            rate = moved[name] * s / statistics.median(by_size[s])
            cell = f"{rate:,.0f} MB/s"
            if name != baseline:
                cell += f" ({rate / base[s]:.0%})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bandwidth")
    parser.add_argument("--sizes", default="1,10,100", help="MB per array, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--put-sizes", default="1,10,20", help="MB per array used many times")
    parser.add_argument("--uses", type=int, default=50, help="calls that use one array")
    ns = parser.parse_args(argv)
    sizes = [int(s) for s in ns.sizes.split(",")]
    put_sizes = [int(s) for s in ns.put_sizes.split(",") if s]
    raw = RawEcho()
    row, stop = mpreg_row()
    try:
        baseline = Row("raw loopback echo (2 processes)", raw.run)
        seconds = measure([baseline, row], sizes, ns.reps)
        uses = use_rows(ns.uses)
        used = measure([baseline, *uses], put_sizes, ns.reps) if put_sizes else {}
    finally:
        stop()
        raw.close()
    moved = {r.name: r.moved for r in (baseline, row, *uses)}
    print(f"median of {ns.reps} round trips; MB/s = 2 x size / time; (ratio to the raw echo)")
    print(table(seconds, baseline.name, moved))
    if used:
        print(f"\none array used by {ns.uses} calls; MB/s = {ns.uses} x size / time (raw: 2 x)")
        print(table(used, baseline.name, moved))


if __name__ == "__main__":
    main()
