"""How a node process receives its NodeConfig: through the codec, on its stdin.

The parent writes one line of part sizes, then the parts of the config's
codec blob; ``python -m mpreg.host.server`` reads them back. The config is
plain data; objects served by value ride inside it already packed
(:attr:`NodeConfig.by_value`), so nothing here pickles anything itself.
"""

from __future__ import annotations

from typing import BinaryIO

from mpreg.config import NodeConfig
from mpreg.errors import SerializationError
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import dumps_value, loads_value


def encode_config(config: NodeConfig) -> bytes:
    """The bytes a node process reads from its stdin (see :func:`read_config`)."""
    parts = [bytes(part) for part in dumps_value(config, what="the node config").parts]
    sizes = b" ".join(b"%d" % len(part) for part in parts)
    return b"".join([sizes, b"\n", *parts])


def read_config(stream: BinaryIO) -> NodeConfig:
    """Read what :func:`encode_config` wrote; SystemExit if it is not a NodeConfig."""
    try:
        sizes = [int(size) for size in stream.readline().split()]
    except ValueError:
        sizes = []
    parts = [stream.read(size) for size in sizes]
    if not parts or any(len(p) != n for p, n in zip(parts, sizes, strict=True)):
        raise SystemExit("mpreg.host.server: stdin did not carry a NodeConfig")
    try:
        config = loads_value(Blob(parts), what="the node config")
    except SerializationError as exc:
        raise SystemExit(f"mpreg.host.server: {exc}") from None
    if not isinstance(config, NodeConfig):
        raise SystemExit("mpreg.host.server: stdin did not carry a NodeConfig")
    return config
