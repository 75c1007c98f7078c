"""``mpreg tls init``, ``mpreg start`` with TLS, and client commands with and without it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, free_port, private_shell
from test_cli_errors import one_line_error

pytestmark = pytest.mark.cluster


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    for name in ("MPREG_TLS_CERT", "MPREG_TLS_KEY", "MPREG_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    yield from private_shell(tmp_path, monkeypatch)


def test_a_tls_cluster_from_tls_init_serves_only_clients_with_its_certificates(
    shell: Shell, tmp_path: Path
) -> None:
    out = shell.ok("tls", "init", "--hosts", "127.0.0.1")
    tls = shell.home / "tls"  # the default: $MPREG_HOME/tls
    assert f"MPREG_TLS_CERT={tls / 'client.crt'}" in out
    assert f"--tls-cert {tls / 'node.crt'}" in out
    again = shell.run("tls", "init")
    one_line_error(again, 2, "already holds a cluster CA", "--force")

    # The head reads its TLS files from a config file (relative to it), ...
    port = free_port()
    config = tmp_path / "head.yaml"
    config.write_text(
        f"name: head\nport: {port}\nworkers: 1\n"
        "tls_cert: home/tls/node.crt\ntls_key: home/tls/node.key\ntls_ca: home/tls/ca.crt\n"
    )
    started = shell.ok("start", "--head", "--config", str(config))
    assert f"TLS only (CA {tls / 'ca.crt'})" in started
    address = f"127.0.0.1:{port}"
    # ... a second node joins with the flags.
    node = ["--tls-cert", str(tls / "node.crt"), "--tls-key", str(tls / "node.key")]
    shell.ok("start", "--join", address, "--name", "second", "--workers", "0", *node,
             "--tls-ca", str(tls / "ca.crt"))  # fmt: skip

    client = {
        "MPREG_TLS_CERT": str(tls / "client.crt"),
        "MPREG_TLS_KEY": str(tls / "client.key"),
        "MPREG_TLS_CA": str(tls / "ca.crt"),
    }
    assert json.loads(shell.ok("call", "echo", '"over tls"', **client)) == "over tls"
    flags = ["--tls-cert", client["MPREG_TLS_CERT"], "--tls-key", client["MPREG_TLS_KEY"]]
    status = json.loads(shell.ok("status", "--json", *flags, "--tls-ca", client["MPREG_TLS_CA"]))
    assert {n["node"]["name"] for n in status["nodes"]} == {"head", "second"}

    # Without TLS: one clear line, which does not blame the token.
    line = one_line_error(shell.run("status"), 1, f"the node at {address} speaks TLS")
    assert "--tls-ca/--tls-cert/--tls-key" in line
    assert "token" not in line
    one_line_error(shell.run("call", "echo", "1", *flags), 2, "missing: --tls-ca")

    # Another cluster's certificates: refused, and the cluster keeps serving.
    shell.ok("tls", "init", "--dir", str(tmp_path / "other"))
    other = {k: v.replace(str(tls), str(tmp_path / "other")) for k, v in client.items()}
    one_line_error(shell.run("call", "echo", "1", **other), 1, "does not vouch for")
    assert json.loads(shell.ok("call", "echo", "2", **client)) == 2
    shell.ok("stop")


def test_a_node_started_beyond_loopback_without_tls_warns_once(shell: Shell) -> None:
    # Listens on every interface; everyone (its worker too) dials it on loopback.
    proc = shell.run(
        "start", "--head", "--host", "0.0.0.0", "--advertise-host", "127.0.0.1",
        "--port", str(free_port()), "--workers", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("without TLS") == 1, proc.stderr
    assert "clear text" in proc.stderr
    assert "mpreg tls init" in proc.stderr
    (record,) = shell.records()
    assert Path(record.log).read_text().count("without TLS") == 1
    shell.ok("stop")
