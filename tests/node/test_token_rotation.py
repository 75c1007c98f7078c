"""`mpreg token rotate` on a running two-node cluster: a grace for the old token, then only the new.

The CLI asks one node; the rotation reaches the other over their member link.
A call running meanwhile, and connections already open, are not interrupted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import cluster_actors as ca
import pytest
from cli_support import command

from mpreg import AuthenticationError, Client, Command
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.credentials import fingerprint
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

GRACE = 3.0
FUNCTIONS = (ca.add,)


async def _rotate(
    cluster: LocalCluster, home: Path, grace: float = GRACE
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``mpreg token rotate --grace G`` against the cluster's first node.

    Returns once it printed the new token (the cluster has rotated; the
    process may still be exiting): the process, to wait for, and the token.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
    env["MPREG_HOME"] = str(home)  # nothing stored there: the new token is printed once
    proc = await asyncio.create_subprocess_exec(
        *command(),
        "token",
        "rotate",
        "--grace",
        str(grace),
        "--address",
        cluster.address,
        "--token",
        cluster.token,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not lines or not lines[-1].startswith("new token"):
            line = (await proc.stdout.readline()).decode()
            if not line:
                await proc.wait()
                raise AssertionError(f"rotate failed: {lines} {(await proc.stderr.read())!r}")
            lines.append(line.strip())
    assert f"{fingerprint(cluster.token)} -> " in lines[0]
    return proc, lines[-1].rpartition(" ")[2]


async def _exited(proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def _add(address: str, token: str) -> int:
    async with Client(address, token=token, name="rotation-test") as client:
        return int(await client.submit("add", 2, 3, timeout=30))


async def _until(check: object, what: str, timeout: float) -> None:
    """Await ``check()`` until it returns True; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting until {what}")
        await asyncio.sleep(0.05)


async def test_rotation_keeps_the_old_token_for_the_grace_then_refuses_it(tmp_path: Path) -> None:
    # The long call runs in an actor of its own: the calls that check the tokens never
    # queue behind it, so they take milliseconds, well within the grace.
    configs = (node("a", functions=FUNCTIONS, actors=(ca.Timed,)), node("b", functions=FUNCTIONS))
    async with run_cluster(*configs) as cluster:
        old = cluster.token
        flag = tmp_path / "started"
        async with Client(cluster.address, token=old) as running:
            long_call = running.submit(
                "sleep_flagged", str(flag), GRACE + 3.0, datasets=["timed"], timeout=60
            )
            await _until(lambda: asyncio.sleep(0, flag.exists()), "the long call runs", 30)

            asked_at = time.monotonic()  # the nodes' grace starts after this
            rotating, new = await _rotate(cluster, tmp_path / "home")
            rotated_at = time.monotonic()  # ... and before this
            assert new != old and fingerprint(new) != fingerprint(old)

            # During the grace both tokens connect and call, on both nodes (b heard it
            # over its member link: wait until it takes the new token).
            for address in cluster.addresses:
                await _until(lambda a=address: _works(a, new), f"{address} takes the new token", 2)
                assert await _add(address, old) == 5
            assert time.monotonic() - rotated_at < GRACE, "too slow to check within the grace"
            await _exited(rotating)

            # After the grace only the new one, on every node; the old is refused with
            # the message that names the client's side.
            for address in cluster.addresses:
                await _until(lambda a=address: _refused(a, old), f"{address} refuses the old", 15)
                assert await _add(address, new) == 5
            assert time.monotonic() - asked_at >= GRACE  # not one moment early

            # The call that ran through the rotation finished with its result, on the
            # connection opened with the old token before it.
            assert await asyncio.wait_for(long_call, 60) == GRACE + 3.0
            assert running.connected


async def _works(address: str, token: str) -> bool:
    try:
        return await _add(address, token) == 5
    except AuthenticationError:
        return False


async def _refused(address: str, token: str) -> bool:
    try:
        await _add(address, token)
    except AuthenticationError as exc:
        assert "this client's token" in str(exc) and "does not match" in str(exc)
        return True
    return False


async def test_a_member_joining_within_the_grace_learns_the_new_token(tmp_path: Path) -> None:
    async with run_cluster(node("a", functions=FUNCTIONS)) as cluster:
        rotating, new = await _rotate(cluster, tmp_path / "home", grace=60.0)
        await _exited(rotating)
        # b starts with the old token (still accepted) and hears of the rotation on its link.
        await cluster.add_node(node("b", functions=FUNCTIONS))
        b = cluster.addresses[1]
        await _until(lambda: _works(b, new), "the late member takes the new token", 10)


async def test_a_worker_that_restarts_after_the_grace_proves_the_new_token(tmp_path: Path) -> None:
    async with run_cluster(node("a", functions=FUNCTIONS, actors=(ca.OwnsA,))) as cluster:
        rotating, new = await _rotate(cluster, tmp_path / "home", grace=0.5)
        await _exited(rotating)
        await _until(lambda: _refused(cluster.address, cluster.token), "the old is refused", 15)
        async with Client(cluster.address, token=new) as client:
            (old_pid,) = [e.pid for e in (await client.status()).endpoints if e.label == "OwnsA"]
            os.kill(old_pid, signal.SIGKILL)

            async def serving_again() -> bool:
                status = await client.status()
                pids = [
                    e.pid for e in status.endpoints if e.label == "OwnsA" and e.state == "running"
                ]
                return bool(pids) and old_pid not in pids

            # Its node hands the restarted process the new token: it connects and serves.
            await _until(serving_again, "the replica serves again", 30)
            answer = await client.request([Command("w", "who", [], ["a"])], timeout=20)
            assert answer["w"]["pid"] != old_pid
