"""A cluster's own certificate authority and the certificates it signs (``mpreg tls init``).

Everything cryptographic is the ``cryptography`` library's: ECDSA P-256 keys,
SHA-256 signatures, X.509 v3 certificates with the extensions OpenSSL's
strict verification expects (basic constraints, key usage, extended key
usage, subject and authority key identifiers). Private keys are written
mode 0600, unencrypted: a node must read its key unattended when it starts.

Layout of a TLS directory (default ``$MPREG_HOME/tls``)::

    ca.crt  ca.key          the cluster CA (self-signed); only ca.crt is copied to other hosts
    node.crt  node.key      a node certificate: server and client (node-to-node links, workers)
    client.crt  client.key  a client certificate (drivers, ``mpreg status``, ...)
    NAME.crt  NAME.key      more node certificates (``mpreg tls init --sign NAME``)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mpreg.errors import UsageError
from mpreg.host import state

DEFAULT_DAYS = 825  # leaf certificates; the longest validity clients commonly accept
CA_DAYS = 3650  # the CA outlives the certificates it signs (at least as long as --days)
ALWAYS = ("localhost", "127.0.0.1")  # every node certificate also names this host's loopback

CA = "ca"
NODE = "node"
CLIENT = "client"


def default_dir() -> Path:
    """``$MPREG_HOME/tls``, else ``~/.mpreg/tls`` (where ``mpreg tls init`` writes)."""
    return state.state_dir() / "tls"


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and key written to disk (``cert`` and ``key`` are paths)."""

    cert: Path
    key: Path


def paths(directory: Path, name: str) -> Issued:
    return Issued(directory / f"{name}.crt", directory / f"{name}.key")


def split_hosts(text: str | None) -> tuple[str, ...]:
    """``"a.example,10.0.0.5"`` -> its names, without blanks or repeats."""
    seen: dict[str, None] = {}
    for item in (text or "").split(","):
        if item.strip():
            seen[item.strip()] = None
    return tuple(seen)


def subject_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    """SANs for ``hosts`` plus localhost and 127.0.0.1: IPs as IP entries, the rest as DNS."""
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*hosts, *ALWAYS):
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _valid_dns(host):
                raise UsageError(
                    f"--hosts: {host!r} is neither an IP address nor a host name"
                ) from None
            names.append(x509.DNSName(host))
    return names


def _valid_dns(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63
        and label.replace("-", "").replace("_", "").isalnum()
        and label.isascii()
        and not label.startswith("-")
        for label in labels
    )


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mpreg cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common[:64]),
        ]
    )


def _now() -> datetime.datetime:
    # Back-dated a little: a peer whose clock runs slightly behind still accepts it.
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


def make_ca(days: int = CA_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA key and its self-signed certificate, valid ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("mpreg cluster CA")
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def sign(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common: str,
    *,
    hosts: tuple[str, ...] | None,
    days: int = DEFAULT_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a certificate for it signed by the CA.

    ``hosts`` (a node's names and IPs; localhost and 127.0.0.1 are added)
    make a node certificate, good for serving and for dialling other nodes;
    None makes a client certificate. Validity ends with the CA's at the latest.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if hosts is not None:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    ends = min(_now() + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(ends)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    if hosts is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subject_names(hosts)), critical=False
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def write_pair(issued: Issued, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Issued:
    """Write ``cert`` (PEM, 0644) and ``key`` (PEM, 0600 from its creation on)."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(issued.key, key_pem, 0o600)
    _write(issued.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return issued


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a crashed run's leftover
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed it; be exact
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA in ``directory``; UsageError if it is missing or unreadable."""
    ca = paths(directory, CA)
    try:
        cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    except FileNotFoundError:
        raise UsageError(
            f"no cluster CA in {directory} (need ca.crt and ca.key): make one with `mpreg tls init`"
        ) from None
    except (ValueError, TypeError, OSError) as exc:
        raise UsageError(f"cannot read the cluster CA in {directory}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{ca.key} is not a key `mpreg tls init` made (not ECDSA)")
    return key, cert


def init_dir(
    directory: Path, *, hosts: tuple[str, ...], days: int = DEFAULT_DAYS, force: bool = False
) -> dict[str, Issued]:
    """Make a CA, a node certificate (SANs: ``hosts`` + loopback) and a client certificate.

    Raises UsageError if ``directory`` already holds a CA and not ``force``:
    a new CA would lock every node and client holding the old one out.
    """
    _check_days(days)
    subject_names(hosts)  # a bad name fails before anything is written
    ca = paths(directory, CA)
    if not force and (ca.cert.exists() or ca.key.exists()):
        raise UsageError(
            f"{directory} already holds a cluster CA ({ca.cert.name}); a new one would lock "
            "out every node and client using it. Add a node certificate with "
            "`mpreg tls init --sign NAME --hosts ...`, or pass --force to replace the CA"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(max(days, CA_DAYS))
    issued = {CA: write_pair(ca, ca_key, ca_cert)}
    common = hosts[0] if hosts else "mpreg node"
    key, cert = sign(ca_key, ca_cert, common, hosts=hosts, days=days)
    issued[NODE] = write_pair(paths(directory, NODE), key, cert)
    key, cert = sign(ca_key, ca_cert, "mpreg client", hosts=None, days=days)
    issued[CLIENT] = write_pair(paths(directory, CLIENT), key, cert)
    return issued


def sign_node(
    directory: Path,
    name: str,
    *,
    hosts: tuple[str, ...],
    days: int = DEFAULT_DAYS,
    force: bool = False,
) -> Issued:
    """A node certificate ``NAME.crt``/``NAME.key`` signed by the CA in ``directory``."""
    _check_days(days)
    if not name or name != Path(name).name or name.startswith(".") or name == CA:
        raise UsageError(f"--sign NAME: {name!r} must be a plain file name other than 'ca'")
    ca_key, ca_cert = load_ca(directory)
    target = paths(directory, name)
    if not force and (target.cert.exists() or target.key.exists()):
        raise UsageError(f"{target.cert} already exists; pass --force to replace it")
    key, cert = sign(ca_key, ca_cert, hosts[0] if hosts else name, hosts=hosts, days=days)
    return write_pair(target, key, cert)


def _check_days(days: int) -> None:
    if days <= 0:
        raise UsageError(f"--days must be positive, got {days}")
