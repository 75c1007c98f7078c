"""A node's config crosses to its process through the codec, names and by-value objects alike."""

from __future__ import annotations

import io

import pytest

from mpreg.actors.loader import load_served, pack_served, served_fields
from mpreg.config import NodeConfig
from mpreg.host.handoff import encode_config, read_config


def double(x: int) -> int:
    return 2 * x


class Owl:
    def hoot(self) -> str:
        return "hoo"


def test_a_config_with_objects_round_trips_and_the_node_gets_them_back() -> None:
    config = NodeConfig(
        name="n", token="t", modules=("pkg.mod",), **served_fields([Owl, "zoo:Lion"], [double])
    )
    assert config.actors == ("zoo:Lion",)
    back = read_config(io.BytesIO(encode_config(config)))
    assert back == config
    assert back.by_value == config.by_value
    functions, actors = load_served(NodeConfig(by_value=back.by_value))
    assert (functions, actors) == ([double], [Owl])


def test_no_objects_no_blob() -> None:
    assert pack_served() == ()
    assert NodeConfig().by_value == ()


@pytest.mark.parametrize("data", [b"", b"nonsense\n", b"5\nabc", b"4\n\x80\x05N."])
def test_stdin_without_a_config_is_refused(data: bytes) -> None:
    with pytest.raises(SystemExit, match="did not carry a NodeConfig"):
        read_config(io.BytesIO(data))


def test_a_truncated_config_is_refused() -> None:
    with pytest.raises(SystemExit, match="cannot unpickle the node config"):
        read_config(io.BytesIO(b"3\n\x80\x05N"))
