"""TLS for mpreg connections: which files, the SSL contexts, and failures worded for people.

Mutual TLS with the cluster's own CA (``mpreg tls init``): each side
presents a certificate signed by it and verifies the other's chain against
it (``CERT_REQUIRED`` both ways, TLS 1.2 at least). The token handshake
(:mod:`mpreg.protocol.handshake`) still runs inside the encrypted channel.

Host names are not checked, by choice: the CA is the cluster's own and
signs only its members, so "holds a certificate from the cluster CA" (plus
the token) is the identity that matters, and nodes are dialled under
whatever address they announce (an IP, a name, one address of a DNS name
with several), which a certificate made once cannot list ahead of time.
The price: never point ``--tls-ca`` at a public or company-wide CA, or
any certificate it signed would be let in. ``mpreg tls init`` still puts the
given names and IPs (and localhost, 127.0.0.1) in a node's SANs, for tools
that do check them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from mpreg.errors import ClusterUnavailable, TLSError, UsageError

CERT_ENV = "MPREG_TLS_CERT"
KEY_ENV = "MPREG_TLS_KEY"
CA_ENV = "MPREG_TLS_CA"

PROBE_TIMEOUT = 2.0  # for the one connection asking a silent node whether it speaks TLS

HINT = "pass --tls-ca/--tls-cert/--tls-key or set MPREG_TLS_CA/MPREG_TLS_CERT/MPREG_TLS_KEY"

# A TLS record starts with its content type (0x15 alert, 0x16 handshake) and
# major version 3; an mpreg frame never does (mpreg.protocol.frames).
_TLS_RECORD_TYPES = (0x15, 0x16)


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """The three PEM files of one side: its certificate, its key, the cluster CA.

    All empty: TLS is off. Partly given is a usage error (:meth:`check`).
    """

    cert: str = ""
    key: str = ""
    ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.key or self.ca)

    @classmethod
    def resolve(
        cls,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        ca: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TLSFiles:
        """Each value given, else ``$MPREG_TLS_CERT``/``KEY``/``CA``.

        An empty string given means "none" and reads no environment variable
        (an embedded cluster's client, whatever the shell exports).
        """
        env = os.environ if environ is None else environ

        def pick(value: str | os.PathLike[str] | None, name: str) -> str:
            return os.fspath(value) if value is not None else env.get(name, "")

        return cls(pick(cert, CERT_ENV), pick(key, KEY_ENV), pick(ca, CA_ENV))

    def check(self) -> TLSFiles:
        """Raise UsageError unless all three files are given and exist (or none is)."""
        if not self.enabled:
            return self
        given = {"--tls-cert": self.cert, "--tls-key": self.key, "--tls-ca": self.ca}
        missing = [flag for flag, path in given.items() if not path]
        if missing:
            raise UsageError(
                "TLS needs all three of --tls-cert, --tls-key and --tls-ca "
                f"(or MPREG_TLS_CERT/KEY/CA); missing: {', '.join(missing)}"
            )
        for flag, path in given.items():
            if not os.path.isfile(path):
                raise UsageError(f"{flag} {path}: no such file")
        return self


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """What a node listens with: its certificate, and every peer must show one from the CA."""
    return _context(ssl.PROTOCOL_TLS_SERVER, files)


def client_context(files: TLSFiles) -> ssl.SSLContext:
    """What a client, worker or node dials with: its certificate; the node's is verified."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, files)


def _context(protocol: ssl._SSLMethod, files: TLSFiles) -> ssl.SSLContext:
    files.check()
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # see the module docstring: the chain is what is checked
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(
            f"cannot use --tls-cert {files.cert} with --tls-key {files.key}: {_why(exc)}"
        ) from None
    try:
        context.load_verify_locations(cafile=files.ca)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"cannot use --tls-ca {files.ca}: {_why(exc)}") from None
    return context


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    return getattr(exc, "strerror", None) or str(exc)


def looks_like_tls(first: bytes | bytearray) -> bool:
    """Whether a peer's first bytes are a TLS record (what a TLS node or client sends)."""
    return len(first) >= 2 and first[0] in _TLS_RECORD_TYPES and first[1] == 3


def speaks_tls(address: str) -> TLSError:
    """A plain client found a TLS node at ``address``."""
    return TLSError(f"the node at {address} speaks TLS: {HINT}")


def plain_node(address: str) -> TLSError:
    """A TLS client found a node without TLS at ``address``."""
    return TLSError(
        f"the node at {address} does not speak TLS (it closed or answered in clear text): "
        "connect without --tls-*/MPREG_TLS_*, or start that node with "
        "--tls-cert/--tls-key/--tls-ca"
    )


# OpenSSL's reasons for an alert from a node that refused our certificate.
_REFUSED_US = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "CERTIFICATE_UNKNOWN")
# ... and for a peer that answered with something that is not TLS at all.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP")


def explain(exc: BaseException, address: str) -> TLSError | None:
    """The TLS failure ``exc`` of a connection to ``address`` in the user's terms, or None
    if it is not one (an ordinary refused or reset connection)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSError(
            f"the node at {address} showed a certificate that your CA file (--tls-ca) does "
            f"not vouch for ({exc.verify_message}): a node of another cluster, or the wrong CA"
        )
    if not isinstance(exc, ssl.SSLError):
        return None
    reason = exc.reason or str(exc)
    if any(mark in reason for mark in _REFUSED_US):
        return TLSError(
            f"the node at {address} did not accept the certificate given to it "
            f"({_why(exc)}): not signed by the cluster's CA; use one made with that "
            "cluster's CA (`mpreg tls init`)"
        )
    if any(mark in reason for mark in _NOT_TLS) or isinstance(exc, ssl.SSLEOFError):
        return plain_node(address)
    return TLSError(f"TLS with the node at {address} failed: {_why(exc)}")


def refused_after_handshake(address: str) -> TLSError:
    """The node closed a TLS connection without a word: it did not accept our certificate.

    (A node refusing a client's certificate under TLS 1.3 does so after the
    client's side of the TLS handshake completed, and closes without an alert.)
    """
    return TLSError(
        f"the node at {address} closed the connection right after the TLS handshake: it "
        "did not accept the certificate given to it (--tls-cert: not signed by the "
        "cluster's CA?); use one made with that cluster's CA (`mpreg tls init`)"
    )


async def dial_failure(
    exc: OSError, host: str, port: int, context: ssl.SSLContext | None, heard: bool
) -> TLSError | ClusterUnavailable:
    """What went wrong dialling ``host:port``, given the error ``exc`` the dial met.

    ``heard``: the node sent a byte of the mpreg handshake. A node that closed
    before that is asked whether it speaks TLS (by a client without TLS; one
    probe connection, only on this failure path).
    """
    address = f"{host}:{port}"
    explained = explain(exc, address)
    if explained is not None:
        return explained
    if context is not None and isinstance(exc, ConnectionResetError | BrokenPipeError):
        return plain_node(address)  # a plain node hangs up on a TLS hello
    if isinstance(exc, ClusterUnavailable) and not heard:
        if context is not None:
            return refused_after_handshake(address)
        if await probe(host, port):
            return speaks_tls(address)
    return ClusterUnavailable(f"cannot connect to {address}: {exc.strerror or exc}")


def _probe_context() -> ssl.SSLContext:
    # Only to tell whether the other side speaks TLS: no certificate is trusted
    # or sent, and the connection is dropped at once without a byte of data.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _answered_tls(exc: ssl.SSLError) -> bool:
    reason = exc.reason or ""
    return not isinstance(exc, ssl.SSLEOFError) and not any(m in reason for m in _NOT_TLS)


async def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``host:port`` answers a TLS hello like a TLS server."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                asyncio.Protocol, host, port, ssl=_probe_context()
            )
    except ssl.SSLError as exc:
        return _answered_tls(exc)
    except (OSError, TimeoutError):
        return False
    transport.abort()
    return True


def probe_blocking(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """:func:`probe` for a caller without an event loop (the sync client's own socket)."""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            _probe_context().wrap_socket(sock),
        ):
            return True
    except ssl.SSLError as exc:
        return _answered_tls(exc)
    except OSError:
        return False


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def clear_text_warning(host: str, address: str) -> str | None:
    """What a node listening on ``host`` without TLS should say: None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"warning: listening on {host or '*'} ({address}) without TLS: calls, results and "
        "code cross the network in clear text (the token itself is never sent). Turn TLS "
        "on: `mpreg tls init --hosts NAMES,IPS`, then start every node with "
        "--tls-cert/--tls-key/--tls-ca (docs/deploy.md)"
    )
