"""TLS between real nodes, workers and clients, with certificates `mpreg tls init` made."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cluster_actors as ca
import pytest
from cli_support import command

import mpreg
from mpreg import Client, Command, TLSError
from mpreg.driver import api
from mpreg.errors import JoinFailed
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.testing import node, run_cluster
from mpreg.transport.blocking import BlockingConnection
from mpreg.transport.connection import parse_address
from mpreg.transport.tls import TLSFiles, client_context

pytestmark = pytest.mark.cluster

WHO_ON_B = [Command("w", "who", [], ["b"])]
NO_TLS = {"tls_cert": "", "tls_key": "", "tls_ca": ""}  # and no $MPREG_TLS_* either


@dataclass(frozen=True)
class CA:
    """A directory `mpreg tls init` wrote."""

    dir: Path

    def files(self, who: str, ca: CA | None = None) -> dict[str, str]:
        """``who``'s certificate and key, trusting ``ca`` (default: this one)."""
        return {
            "tls_cert": str(self.dir / f"{who}.crt"),
            "tls_key": str(self.dir / f"{who}.key"),
            "tls_ca": str((ca or self).dir / "ca.crt"),
        }


def tls_init(tmp: Path, name: str) -> CA:
    """Run the real ``mpreg tls init`` into ``tmp/name`` (its own MPREG_HOME too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
    env["MPREG_HOME"] = str(tmp / f"home-{name}")
    out = subprocess.run(
        [*command(), "tls", "init", "--dir", str(tmp / name), "--hosts", "127.0.0.1,localhost"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "MPREG_TLS_CERT=" in out.stdout
    return CA(tmp / name)


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[CA, CA]:
    """The cluster's CA, and another cluster's."""
    tmp = tmp_path_factory.mktemp("tls")
    return tls_init(tmp, "cluster"), tls_init(tmp, "other")


@pytest.fixture
async def tls_cluster(cas: tuple[CA, CA]) -> AsyncIterator[LocalCluster]:
    """Node A (no actors, no workers) and node B (actor OwnsB), B joining A, both TLS."""
    ours = cas[0]
    async with run_cluster(
        node("A", workers=0, **ours.files("node")),
        node("B", workers=0, actors=(ca.OwnsB,), **ours.files("node")),
    ) as cluster:
        yield cluster


async def test_a_call_crosses_tls_from_a_client_through_one_node_to_the_others_actor(
    tls_cluster: LocalCluster, cas: tuple[CA, CA]
) -> None:
    ours = cas[0]
    async with Client(tls_cluster.address, token=tls_cluster.token, **ours.files("client")) as c:
        result = await c.request(WHO_ON_B)
        where = c.last_where["w"]
    # B joined A over TLS (A speaks nothing else), B's actor dialled B over TLS,
    # and A forwarded the call to B over their TLS link.
    assert result["w"]["label"] == "OwnsB"
    assert where.startswith(tls_cluster.nodes[1].node_id)


async def test_the_sync_api_speaks_tls_on_its_own_socket_too(
    tls_cluster: LocalCluster, cas: tuple[CA, CA]
) -> None:
    ours = cas[0]

    def sync() -> tuple[object, bool]:
        mpreg.init(tls_cluster.address, token=tls_cluster.token, **ours.files("client"))
        try:
            # From this thread the request goes over the sync client's blocking socket.
            label = mpreg.request(WHO_ON_B, timeout=20)["w"]["label"]
            runtime = api._runtime
            assert runtime is not None and runtime.sync is not None
            conn = runtime.sync._conn
            return label, conn is not None and isinstance(conn._sock, ssl.SSLSocket)
        finally:
            mpreg.shutdown()

    label, over_tls = await asyncio.to_thread(sync)
    assert label == "OwnsB"
    assert over_tls


async def test_clients_without_the_cluster_certificates_are_refused_and_others_served(
    tls_cluster: LocalCluster, cas: tuple[CA, CA]
) -> None:
    ours, other = cas
    address, token = tls_cluster.address, tls_cluster.token
    async with Client(address, token=token, **ours.files("client")) as good:
        assert (await good.request(WHO_ON_B))["w"]["label"] == "OwnsB"

        # Another cluster's CA and certificate: the node's certificate is not vouched for.
        with pytest.raises(TLSError, match="does not vouch for"):
            await Client(address, token=token, **other.files("client")).connect()
        assert (await good.request(WHO_ON_B))["w"]["label"] == "OwnsB"

        # The right CA, but a certificate another CA signed: the node refuses it.
        with pytest.raises(TLSError, match="did not accept the certificate given to it"):
            await Client(address, token=token, **other.files("client", ca=ours)).connect()
        assert (await good.request(WHO_ON_B))["w"]["label"] == "OwnsB"

        # No TLS at all (whatever the environment says): told the node speaks TLS.
        plain = Client(address, token=token, **NO_TLS)
        with pytest.raises(TLSError, match=f"the node at {address} speaks TLS: pass --tls-ca"):
            await plain.connect()
        host, port = parse_address(address)
        hello = Handshake("connector", token.encode(), PeerIdentity("client", "plain"))
        with pytest.raises(TLSError, match="speaks TLS"):
            await asyncio.to_thread(BlockingConnection.open, host, port, hello)
        # The sync path's own socket is told the same as the async client.
        for files, words in (
            (other.files("client"), "does not vouch for"),
            (other.files("client", ca=ours), "did not accept the certificate given to it"),
        ):
            context = client_context(TLSFiles(files["tls_cert"], files["tls_key"], files["tls_ca"]))
            with pytest.raises(TLSError, match=words):
                await asyncio.to_thread(BlockingConnection.open, host, port, hello, context=context)
        assert (await good.request(WHO_ON_B))["w"]["label"] == "OwnsB"


async def test_a_tls_client_is_told_when_the_node_has_no_tls(
    tmp_path: Path, cas: tuple[CA, CA]
) -> None:
    ours = cas[0]
    cluster = LocalCluster(log_path=tmp_path / "plain.log")
    try:
        await cluster.add_node(node("plain", workers=0))
        with pytest.raises(TLSError, match="does not speak TLS"):
            await Client(cluster.address, token=cluster.token, **ours.files("client")).connect()
        # The node is fine and serves clear-text clients as before.
        async with Client(cluster.address, token=cluster.token, **NO_TLS) as c:
            status = await c.status()
    finally:
        await cluster.stop()
    assert [n.node.name for n in status.nodes] == ["plain"]
    # Its log says what came knocking, not just "garbage".
    assert "speaks TLS; this node has no TLS" in (tmp_path / "plain.log").read_text()


async def test_a_node_bound_beyond_loopback_without_tls_warns_once(
    tmp_path: Path, cas: tuple[CA, CA]
) -> None:
    # Bound to every interface, but everyone (its workers too) dials it on loopback.
    wide = {"host": "0.0.0.0", "advertise_host": "127.0.0.1", "workers": 1}
    cluster = LocalCluster(log_path=tmp_path / "plain.log")
    secure = LocalCluster(log_path=tmp_path / "tls.log")
    try:
        await cluster.add_node(node("plain", **wide))
        await secure.add_node(node("secure", **wide, **cas[0].files("node")))
        async with Client(secure.address, token=secure.token, **cas[0].files("client")) as c:
            assert len((await c.status()).nodes) == 1
    finally:
        await cluster.stop()
        await secure.stop()
    plain_log = (tmp_path / "plain.log").read_text()
    assert plain_log.count("without TLS") == 1, plain_log
    line = next(line for line in plain_log.splitlines() if "without TLS" in line)
    assert "0.0.0.0" in line
    assert "clear text" in line
    assert "mpreg tls init" in line
    assert "--tls-cert/--tls-key/--tls-ca" in line
    assert "without TLS" not in (tmp_path / "tls.log").read_text()


async def test_a_node_with_another_clusters_certificate_cannot_join(
    tls_cluster: LocalCluster, cas: tuple[CA, CA]
) -> None:
    ours, other = cas
    with pytest.raises(JoinFailed, match="does not vouch for"):
        await tls_cluster.add_node(node("outsider", workers=0, **other.files("node")))
    with pytest.raises(JoinFailed, match="did not accept the certificate given to it"):
        await tls_cluster.add_node(node("impostor", workers=0, **other.files("node", ca=ours)))
    async with Client(tls_cluster.address, token=tls_cluster.token, **ours.files("client")) as c:
        assert len((await c.status()).nodes) == 2
