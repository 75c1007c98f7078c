"""TLS files, contexts and failure words, with in-memory handshakes (no sockets)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from mpreg.errors import TLSError, UsageError
from mpreg.host import certs
from mpreg.protocol.frames import FrameKind, encode_frame
from mpreg.transport import tls
from mpreg.transport.tls import TLSFiles


def _files(directory: Path, who: str, ca: Path | None = None) -> TLSFiles:
    return TLSFiles(
        str(directory / f"{who}.crt"),
        str(directory / f"{who}.key"),
        str((ca or directory) / "ca.crt"),
    )


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours, other = tmp_path_factory.mktemp("ours"), tmp_path_factory.mktemp("other")
    certs.init_dir(ours, hosts=("node1",))
    certs.init_dir(other, hosts=("node1",))
    return ours, other


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> None:
    """Drive both ends of a TLS handshake through memory; raises the first SSLError.

    Also has the client read once: under TLS 1.3 a refused client certificate
    only shows on the client's first read after the handshake.
    """
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="node1")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            s.write(b"x")
            c_in.write(s_out.read())
            assert c.read(1) == b"x"
            return
    raise AssertionError("the handshake did not finish")


def test_cluster_members_complete_mutual_tls(dirs: tuple[Path, Path]) -> None:
    ours, _ = dirs
    server = tls.server_context(_files(ours, "node"))
    _handshake(server, tls.client_context(_files(ours, "client")))
    _handshake(server, tls.client_context(_files(ours, "node")))  # node to node


def test_a_server_of_another_ca_is_not_trusted(dirs: tuple[Path, Path]) -> None:
    ours, other = dirs
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        _handshake(
            tls.server_context(_files(ours, "node")),
            tls.client_context(_files(other, "client")),
        )
    explained = tls.explain(info.value, "h:1")
    assert isinstance(explained, TLSError)
    assert "does not vouch for" in str(explained)


def test_a_client_certificate_of_another_ca_is_refused(dirs: tuple[Path, Path]) -> None:
    ours, other = dirs
    with pytest.raises(ssl.SSLError):
        _handshake(
            tls.server_context(_files(ours, "node")),
            tls.client_context(_files(other, "client", ca=ours)),
        )


def test_a_client_without_a_certificate_is_refused(dirs: tuple[Path, Path]) -> None:
    ours, _ = dirs
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.load_verify_locations(cafile=str(ours / "ca.crt"))
    with pytest.raises(ssl.SSLError):
        _handshake(tls.server_context(_files(ours, "node")), bare)


def test_contexts_require_certificates_both_ways_and_tls_1_2(dirs: tuple[Path, Path]) -> None:
    ours, _ = dirs
    for context in (
        tls.server_context(_files(ours, "node")),
        tls.client_context(_files(ours, "client")),
    ):
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
        assert not context.check_hostname  # the chain is checked; see mpreg.transport.tls


def test_files_come_from_the_environment_unless_given(tmp_path: Path) -> None:
    env = {"MPREG_TLS_CERT": "c.crt", "MPREG_TLS_KEY": "c.key", "MPREG_TLS_CA": "ca.crt"}
    assert TLSFiles.resolve(environ=env) == TLSFiles("c.crt", "c.key", "ca.crt")
    assert TLSFiles.resolve(cert=tmp_path / "x.crt", environ=env).cert == str(tmp_path / "x.crt")
    off = TLSFiles.resolve("", "", "", environ=env)  # explicitly none: no environment
    assert not off.enabled
    assert not TLSFiles.resolve(environ={}).enabled


def test_partial_or_missing_files_are_usage_errors(dirs: tuple[Path, Path]) -> None:
    ours, _ = dirs
    with pytest.raises(UsageError, match="missing: --tls-key, --tls-ca"):
        TLSFiles(cert=str(ours / "node.crt")).check()
    with pytest.raises(UsageError, match=re.escape("--tls-ca /nonexistent/ca.crt: no such file")):
        TLSFiles(str(ours / "node.crt"), str(ours / "node.key"), "/nonexistent/ca.crt").check()
    mismatched = TLSFiles(str(ours / "node.crt"), str(ours / "client.key"), str(ours / "ca.crt"))
    with pytest.raises(UsageError, match="cannot use --tls-cert"):
        tls.server_context(mismatched)
    assert TLSFiles().check() == TLSFiles()


def test_a_tls_hello_is_told_apart_from_an_mpreg_frame(dirs: tuple[Path, Path]) -> None:
    ours, _ = dirs
    out = ssl.MemoryBIO()
    hello = tls.client_context(_files(ours, "client")).wrap_bio(ssl.MemoryBIO(), out)
    with pytest.raises(ssl.SSLWantReadError):
        hello.do_handshake()
    assert tls.looks_like_tls(out.read())
    frame = b"".join(bytes(p) for p in encode_frame(FrameKind.HANDSHAKE, b'{"type":"hello"}'))
    assert not tls.looks_like_tls(frame)
    assert not tls.looks_like_tls(b"\x16")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.9", "::1", "localhost"])
def test_loopback_binds_need_no_warning(host: str) -> None:
    assert tls.clear_text_warning(host, f"{host}:7773") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "node1.example"])
def test_other_binds_are_warned_about_with_the_way_out(host: str) -> None:
    warning = tls.clear_text_warning(host, "10.1.2.3:7773")
    assert warning is not None
    assert "clear text" in warning
    assert "mpreg tls init" in warning
    assert "--tls-cert/--tls-key/--tls-ca" in warning
