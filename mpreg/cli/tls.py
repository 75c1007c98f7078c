"""``mpreg tls init``: a cluster CA and certificates, and how to use them."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mpreg.host import certs
from mpreg.host.invocation import mpreg_command


def cmd_tls_init(ns: argparse.Namespace) -> int:
    """Make a CA, a node and a client certificate in ``--dir`` (or ``--sign`` one more)."""
    directory = (ns.dir or certs.default_dir()).expanduser().resolve()
    hosts = certs.split_hosts(ns.hosts)
    days = ns.days if ns.days is not None else certs.DEFAULT_DAYS
    names = ", ".join(dict.fromkeys((*hosts, *certs.ALWAYS)))
    if ns.sign:
        node = certs.sign_node(directory, ns.sign, hosts=hosts, days=days, force=ns.force)
        print(f"signed a node certificate with the CA in {directory} (valid {days} days):")
        print(f"  {node.cert.name} {node.key.name}  for {names}")
        print()
        _start_hint(directory, node, "--join HOST:PORT")
        return 0
    issued = certs.init_dir(directory, hosts=hosts, days=days, force=ns.force)
    ca, node, client = issued[certs.CA], issued[certs.NODE], issued[certs.CLIENT]
    print(f"made a cluster CA and certificates in {directory} (valid {days} days):")
    print(f"  {ca.cert.name} {ca.key.name}          the cluster CA: ca.crt goes to every host;")
    print("                            ca.key stays here (it signs new certificates)")
    print(f"  {node.cert.name} {node.key.name}      a node's, for {names}")
    print(f"  {client.cert.name} {client.key.name}  a client's (drivers, mpreg status/top/call)")
    print("private keys are mode 0600; certificates of other CAs are refused.")
    print()
    _start_hint(directory, node, "--head")
    print()
    print("connect a client (mpreg status, top, call; mpreg.init and mpreg.Client read these too):")
    print(
        f"  export MPREG_TLS_CERT={_q(client.cert)} MPREG_TLS_KEY={_q(client.key)} "
        f"MPREG_TLS_CA={_q(ca.cert)}"
    )
    print(
        f"  mpreg.init('HOST:PORT', tls_cert={str(client.cert)!r}, "
        f"tls_key={str(client.key)!r}, tls_ca={str(ca.cert)!r})"
    )
    return 0


def _start_hint(directory: Path, node: certs.Issued, how: str) -> None:
    ca = certs.paths(directory, certs.CA).cert
    print("start a node with TLS (every node of the cluster needs it):")
    print(
        f"  {mpreg_command()} start {how} --tls-cert {_q(node.cert)} "
        f"--tls-key {_q(node.key)} --tls-ca {_q(ca)}"
    )


def _q(path: Path) -> str:
    return shlex.quote(str(path))
