"""The cluster CA and certificates `mpreg tls init` makes: names, validity, file modes."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from mpreg.errors import UsageError
from mpreg.host import certs


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return dns, ips


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that lets everyone read new files: the modes must not depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_node_certificate_names_the_given_hosts_and_loopback(tmp_path: Path) -> None:
    certs.init_dir(tmp_path, hosts=("node1.example", "10.0.0.5", "node1", "127.0.0.1"))
    dns, ips = _sans(_cert(tmp_path / "node.crt"))
    assert dns == {"node1.example", "node1", "localhost"}
    assert ips == {"10.0.0.5", "127.0.0.1"}


def test_ipv6_hosts_become_ip_entries(tmp_path: Path) -> None:
    certs.init_dir(tmp_path, hosts=("fd00::5",))
    _, ips = _sans(_cert(tmp_path / "node.crt"))
    assert ipaddress.ip_address("fd00::5") in {ipaddress.ip_address(ip) for ip in ips}


def test_every_certificate_is_signed_by_the_ca_and_fit_for_its_role(tmp_path: Path) -> None:
    issued = certs.init_dir(tmp_path, hosts=())
    ca = _cert(issued["ca"].cert)
    node, client = _cert(issued["node"].cert), _cert(issued["client"].cert)
    ca.verify_directly_issued_by(ca)  # self-signed
    node.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not node.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # A node serves and dials other nodes; a client only dials.
    assert _usages(node) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}


def test_validity_is_the_days_asked_and_the_ca_outlives_its_certificates(tmp_path: Path) -> None:
    certs.init_dir(tmp_path, hosts=(), days=30)
    now = datetime.datetime.now(datetime.UTC)
    node, ca = _cert(tmp_path / "node.crt"), _cert(tmp_path / "ca.crt")
    assert node.not_valid_before_utc <= now  # valid at once
    assert abs(node.not_valid_after_utc - (now + datetime.timedelta(days=30))) < datetime.timedelta(
        minutes=10
    )
    assert ca.not_valid_after_utc - now > datetime.timedelta(days=certs.CA_DAYS - 1)


def test_keys_are_private_and_certificates_readable_whatever_the_umask(
    tmp_path: Path, loose_umask: None
) -> None:
    directory = tmp_path / "tls"
    certs.init_dir(directory, hosts=())
    certs.sign_node(directory, "n2", hosts=("n2",))
    assert _mode(directory) == 0o700
    for name in ("ca", "node", "client", "n2"):
        assert _mode(directory / f"{name}.key") == 0o600, name
        assert _mode(directory / f"{name}.crt") == 0o644, name
    assert not list(directory.glob("*.tmp"))


def test_an_existing_ca_is_kept_unless_forced(tmp_path: Path) -> None:
    certs.init_dir(tmp_path, hosts=())
    first = (tmp_path / "ca.crt").read_bytes()
    with pytest.raises(UsageError, match=r"already holds a cluster CA.*--force"):
        certs.init_dir(tmp_path, hosts=())
    assert (tmp_path / "ca.crt").read_bytes() == first
    certs.init_dir(tmp_path, hosts=(), force=True)
    assert (tmp_path / "ca.crt").read_bytes() != first


def test_sign_adds_a_node_certificate_with_the_existing_ca(tmp_path: Path) -> None:
    certs.init_dir(tmp_path, hosts=())
    ca = _cert(tmp_path / "ca.crt")
    issued = certs.sign_node(tmp_path, "node2", hosts=("node2.example", "10.0.0.6"))
    cert = _cert(issued.cert)
    cert.verify_directly_issued_by(ca)
    assert _sans(cert) == ({"node2.example", "localhost"}, {"10.0.0.6", "127.0.0.1"})
    with pytest.raises(UsageError, match="already exists"):
        certs.sign_node(tmp_path, "node2", hosts=())


def test_sign_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no cluster CA.*mpreg tls init"):
        certs.sign_node(tmp_path, "node2", hosts=())


@pytest.mark.parametrize("name", ["ca", "../escape", ".hidden", ""])
def test_sign_refuses_names_that_are_not_plain_files(tmp_path: Path, name: str) -> None:
    certs.init_dir(tmp_path, hosts=())
    with pytest.raises(UsageError, match="--sign NAME"):
        certs.sign_node(tmp_path, name, hosts=())


def test_bad_host_names_and_days_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither an IP address nor a host name"):
        certs.init_dir(tmp_path, hosts=("bad host",))
    with pytest.raises(UsageError, match="--days must be positive"):
        certs.init_dir(tmp_path, hosts=(), days=0)
    assert not (tmp_path / "ca.crt").exists()


def test_split_hosts_drops_blanks_and_repeats() -> None:
    assert certs.split_hosts(" a, 10.0.0.1,,a ") == ("a", "10.0.0.1")
    assert certs.split_hosts(None) == ()


def test_the_default_directory_follows_mpreg_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPREG_HOME", str(tmp_path / "home"))
    assert certs.default_dir() == tmp_path / "home" / "tls"
