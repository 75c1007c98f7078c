"""What a worker answers with, for one call or a fused chain's step: fields, deadlines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mpreg.errors import DeadlineExceeded, SerializationError
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.refs import Bundled, FieldMiss, FieldMissing, Path, extract


def asked_field(command: str, result: Any, path: Path) -> Bundled:
    """One asked field of ``result``, pickled; or why it cannot be had."""
    reference = ".".join([command, *map(str, path)])
    try:
        return dumps_value(extract(result, path), what=f"field {reference!r}")
    except FieldMissing as exc:
        return FieldMiss(reference, f"{command!r} result {exc}")
    except SerializationError as exc:
        return FieldMiss(reference, str(exc))


def expired(command: str, deadline: float) -> DeadlineExceeded:
    """The error of ``command``, which passed its wall-clock ``deadline``."""
    late = time.time() - deadline
    return DeadlineExceeded(f"{command!r} passed its deadline ({late:.3f}s ago)")


def loop_time(deadline: float) -> float:
    """The running loop's clock reading at the wall-clock ``deadline``."""
    return asyncio.get_running_loop().time() + (deadline - time.time())
