"""A node's start-up failure is typed where it is raised and stays typed across the pipe."""

from __future__ import annotations

import errno

from mpreg.config import NodeConfig
from mpreg.errors import AddressInUse, ClusterUnavailable, JoinFailed, NodeStartError
from mpreg.host.announce import Announce
from mpreg.host.start_failures import failure_announce, start_error

HEAD = NodeConfig(name="head", host="127.0.0.1", port=7773)
JOINER = NodeConfig(name="second", peers=("127.0.0.1:9",))


def across_the_pipe(exc: BaseException, config: NodeConfig) -> NodeStartError:
    return start_error(config, Announce.parse(failure_announce(exc, config).line()))


def test_a_port_in_use_is_typed_by_its_errno_not_its_text() -> None:
    error = across_the_pipe(OSError(errno.EADDRINUSE, "some localized text"), HEAD)
    assert isinstance(error, AddressInUse)
    assert (error.node, error.host, error.port) == ("head", "127.0.0.1", 7773)
    assert str(error) == "node 'head' failed to start: OSError: [Errno 98] some localized text"


def test_a_failed_join_carries_its_reason_and_peers() -> None:
    error = across_the_pipe(ClusterUnavailable("cannot reach 127.0.0.1:9"), JOINER)
    assert isinstance(error, JoinFailed)
    assert (error.reason, error.peers) == ("cannot reach 127.0.0.1:9", ("127.0.0.1:9",))


def test_anything_else_is_a_plain_start_error_with_the_nodes_text() -> None:
    for exc, config in [
        (OSError(errno.EADDRNOTAVAIL, "cannot assign"), HEAD),
        (ClusterUnavailable("not a join: no peers"), HEAD),
        (RuntimeError("boom"), JOINER),
    ]:
        error = across_the_pipe(exc, config)
        assert type(error) is NodeStartError
        assert str(error) == f"node {config.name!r} failed to start: {type(exc).__name__}: {exc}"


def test_an_old_or_silent_node_still_gives_a_start_error() -> None:
    martian = Announce.parse('{"error": "x", "reason": "martian"}')
    assert type(start_error(HEAD, martian)) is NodeStartError
    silent = start_error(HEAD, None, "the node exited with code 1")
    assert str(silent) == "node 'head' failed to start: the node exited with code 1"
