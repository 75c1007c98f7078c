"""How this ``mpreg`` was launched: the prefix its hints need, and whether its Python lasts.

``uv run mpreg start`` sets ``UV`` in the environment of what it runs; the
hints printed then say ``uv run mpreg ...``, the command that works in that
shell (a bare ``mpreg`` is usually not on its PATH).

``uv run --with PKG`` (and ``uvx --with``) run in a temporary environment
under uv's cache (``.../builds-v0/.tmpXXXX``) that uv deletes when the
command exits. A node started detached from it outlives that environment:
each worker it starts later (a replica's restart, a deploy) runs
``sys.executable``, which is gone by then.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def via_uv(environ: dict[str, str] | None = None) -> bool:
    """Whether this process runs under ``uv run`` (which sets ``UV`` to uv's own path)."""
    env = os.environ if environ is None else environ
    return bool(env.get("UV"))


def mpreg_command(environ: dict[str, str] | None = None) -> str:
    """``"uv run mpreg"`` under ``uv run``, else ``"mpreg"``: what a hint tells to type."""
    return "uv run mpreg" if via_uv(environ) else "mpreg"


def temporary_environment(prefix: str | None = None) -> str | None:
    """The environment directory if it is one uv deletes on exit, else None."""
    path = Path(prefix if prefix is not None else sys.prefix)
    parts = path.parts
    for i, part in enumerate(parts[:-1]):
        if part == "builds-v0" and parts[i + 1].startswith(".tmp"):
            return str(path)
    return None


def temporary_environment_warning(prefix: str | None = None) -> str | None:
    """What to tell the user who starts detached nodes from a temporary environment."""
    env = temporary_environment(prefix)
    if env is None:
        return None
    return (
        f"warning: this Python runs in a temporary environment ({env}) that uv deletes "
        "when this command exits; the node keeps running, but cannot start a worker "
        "after that (a replica's restart, a deploy). Make the packages part of an "
        "environment that stays: in the project, `uv add PACKAGE` and then "
        "`uv run mpreg start ...`; or `uv venv` and `uv pip install mpreg PACKAGE` "
        "and start from that venv. Or run the node in the foreground "
        "(`mpreg start --block`), where the environment lasts as long as the node."
    )


__all__ = [
    "mpreg_command",
    "temporary_environment",
    "temporary_environment_warning",
    "via_uv",
]
