"""Actors and functions the cluster tests deploy (imported by name in node processes)."""

from __future__ import annotations

import asyncio
import os
import time

import mpreg


def whereami(tag: str = "") -> dict[str, object]:
    return {"pid": os.getpid(), "tag": tag}


def slow(seconds: float, value: object = None) -> dict[str, float | object]:
    start = time.time()
    time.sleep(seconds)  # ok-sleep: the workload is a slow function
    return {"start": start, "end": time.time(), "value": value}


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def unpicklable_result() -> object:
    return lambda: None


def lock_result() -> object:
    import threading

    return threading.Lock()


class _Counting:
    """Counts constructions per process and calls per instance."""

    created = 0

    def __init__(self) -> None:
        type(self).created += 1
        self.calls = 0
        self.seen: list[object] = []

    def who(self) -> dict[str, object]:
        self.calls += 1
        return {
            "pid": os.getpid(),
            "created": type(self).created,
            "calls": self.calls,
            "label": type(self).__name__,
        }

    def record(self, value: object) -> object:
        self.seen.append(value)
        return value

    def recorded(self) -> list[object]:
        return list(self.seen)

    def state(self) -> dict[str, object]:
        return {"pid": os.getpid(), "seen": list(self.seen)}

    async def cancels(self) -> None:
        raise asyncio.CancelledError  # user code raising it: still an answer

    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    def block(self, seconds: float) -> int:
        time.sleep(seconds)  # ok-sleep: the workload is a blocking method
        return os.getpid()


@mpreg.actor(datasets=["a"])
class OwnsA(_Counting):
    pass


@mpreg.actor(datasets=["b"])
class OwnsB(_Counting):
    pass


@mpreg.actor(datasets=["a", "b"])
class OwnsAB(_Counting):
    pass


@mpreg.actor(datasets=["iris"], replicas=2)
class Iris(_Counting):
    pass


@mpreg.actor(datasets=["broken"])
class BrokenInit:
    def __init__(self) -> None:
        raise RuntimeError("dataset file missing")

    def f(self) -> int:
        return 1


def chatty(n: int) -> int:
    """Prints a lot: a worker's stdout must never fill a pipe nobody reads."""
    print("x" * 50_000, flush=True)
    return n


def exits(code: int) -> None:
    raise SystemExit(code)


@mpreg.actor(datasets=["crashing"])
class CrashesInInit:
    def __init__(self) -> None:
        os._exit(7)  # dies hard before it ever serves

    def f(self) -> int:
        return 1


@mpreg.actor(datasets=["sink"])
class SlowSink:
    """Takes its time over every payload: a consumer slower than its producer."""

    def take(self, payload: bytes) -> int:
        time.sleep(0.01)  # ok-sleep: the workload is a slow consumer
        return len(payload)


def slow_flagged(flag: str, seconds: float) -> float:
    """Creates the file ``flag`` once it runs, then sleeps: a test knows the call started."""
    with open(flag, "w"):
        pass
    time.sleep(seconds)  # ok-sleep: the workload is a slow function
    return seconds


@mpreg.actor(datasets=["timed"])
class Timed:
    """Counts what its methods started, finished and had cancelled: deadlines, cancels, limits."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.cancelled = 0

    def sleep(self, seconds: float) -> float:
        self.started += 1
        time.sleep(seconds)  # ok-sleep: the workload is a slow sync method
        self.finished += 1
        return seconds

    def sleep_flagged(self, flag: str, seconds: float) -> float:
        """sleep, leaving the file ``flag`` once it started (its process is busy then)."""
        with open(flag, "w"):
            pass
        return self.sleep(seconds)

    async def asleep(self, seconds: float) -> float:
        self.started += 1
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return seconds

    def big(self, size: int) -> bytes:
        self.started += 1
        return b"x" * size

    def size_of(self, payload: bytes) -> int:
        self.started += 1
        return len(payload)

    def counts(self) -> dict[str, int]:
        return {
            "started": self.started,
            "finished": self.finished,
            "cancelled": self.cancelled,
            "pid": os.getpid(),
        }


# --- restarts and kill storms (tests/actors/test_restarts.py, tests/node/test_chaos.py) ---

FLAG_ENV = "MPREG_TEST_INIT_FAILS_IF"  # a path: while that file exists, FlakyInit's __init__ raises


@mpreg.actor(datasets=["storm"], replicas=2)
class Storm:
    """Counts its executions in a file, so a test can see which calls ran twice."""

    async def step(self, log_path: str, token: str, x: int) -> int:
        with open(log_path, "a") as log:  # noqa: ASYNC230 - one short line, before the wait
            log.write(f"{token}\n")
        await asyncio.sleep(0.02)  # the call takes a while, so kills land mid-call
        return 2 * x + 1


@mpreg.actor(datasets=["flaky"])
class FlakyInit:
    """Starts fine until the flag file appears; from then on its __init__ raises."""

    def __init__(self) -> None:
        flag = os.environ.get(FLAG_ENV, "")
        if flag and os.path.exists(flag):
            raise RuntimeError(f"cannot load the dataset: {flag} says so")

    def ping(self) -> int:
        return os.getpid()


@mpreg.actor(datasets=["sync-storm"], replicas=2)
class SyncStorm:
    """Storm's step as a plain method: one call at a time, the rest wait in its socket."""

    def step(self, log_path: str, token: str, x: int) -> int:
        with open(log_path, "a") as log:
            log.write(f"{token}\n")
        time.sleep(0.002)  # ok-sleep: the call takes a while, so kills land mid-call
        return 2 * x + 1


async def aslow_flagged(flag: str, seconds: float) -> float:
    """slow_flagged as a coroutine, so a cancel reaches it; it leaves ``<flag>.cancelled``."""
    with open(flag, "w"):  # noqa: ASYNC230 - an empty marker file, before the wait
        pass
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        with open(flag + ".cancelled", "w"):  # noqa: ASYNC230 - the marker a test waits for
            pass
        raise
    return seconds


# --- large values (tests/node/test_large_values.py, tests/node/test_frame_limits.py) ---


@mpreg.actor(datasets=["mirror"])
class Mirror:
    """Returns what it is given: a large argument comes back as a large result."""

    def echo(self, value: object) -> object:
        return value

    def pid(self) -> int:
        return os.getpid()


class Versioned:
    """Says which version it is: a redeploy replaces it (tests/driver/test_lanes.py)."""

    def __init__(self, version: int) -> None:
        self.version = version

    def which(self) -> int:
        return self.version
