"""Stopping child processes: give them time to exit, then escalate.

One policy for every asyncio child mpreg starts (a node's worker processes,
an embedded cluster's node processes): the caller has already asked them to
stop (a Shutdown message, a closed stdin); :func:`stop_processes` waits a
grace period, then sends the stragglers each escalation signal in turn,
waiting again after each, and logs every process it had to signal, so a
stuck child is never stopped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable, Sequence

log = logging.getLogger(__name__)

Process = asyncio.subprocess.Process


async def stop_processes(
    procs: Iterable[Process],
    *,
    grace: float,
    what: str,
    escalate: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGKILL),
) -> list[Process]:
    """Wait until every process in ``procs`` has exited, escalating past ``grace``.

    Each ``grace`` seconds that pass with processes still running, the next
    signal of ``escalate`` goes to those; after the last one the wait has no
    bound (SIGKILL cannot be refused). ``what`` names the processes in the
    log. Returns the processes that had to be signalled.
    """
    procs = list(procs)
    signalled: list[Process] = []
    for sig in escalate:
        alive = [p for p in procs if p.returncode is None]
        if not alive:
            break
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(*(p.wait() for p in alive))
        except TimeoutError:
            for p in alive:
                if p.returncode is None:
                    log.warning(
                        "%s pid=%s did not stop within %gs; sending %s",
                        *(what, p.pid, grace, sig.name),
                    )
                    with contextlib.suppress(ProcessLookupError):  # it exited just now
                        p.send_signal(sig)
                    if p not in signalled:
                        signalled.append(p)
    await asyncio.gather(*(p.wait() for p in procs))
    return signalled
