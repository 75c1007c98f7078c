"""What a parent process hands its children: token, TLS files, import path, a death pact."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mpreg.actors.loader import FILE_MODULES, import_file
from mpreg.transport.tls import TLSFiles

TOKEN_ENV = "MPREG_WORKER_TOKEN"
SYS_PATH_ENV = "MPREG_WORKER_SYS_PATH"
FILE_MODULES_ENV = "MPREG_FILE_MODULES"
# The node's TLS files, which its workers dial it with: its own, never the user's MPREG_TLS_*.
TLS_ENV = "MPREG_WORKER_TLS"


# glibc returns freed memory to the kernel eagerly and serves big buffers with
# fresh mmaps, so every large message pays 100-1,000 page faults per MiB
# (docs/design.md, "Measured facts"). Nodes and workers keep up to this much freed heap.
MALLOC_TUNING = {
    "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
    "MALLOC_MMAP_THRESHOLD_": str(256 * 1024 * 1024),
    "MALLOC_TOP_PAD_": str(64 * 1024 * 1024),
}


def child_env(token: str | None = None, tls: TLSFiles | None = None) -> dict[str, str]:
    """This process's environment plus its import path (and a token, TLS files) for a child.

    Also tunes glibc's allocator for large messages unless the user set it.
    """
    env = {**MALLOC_TUNING, **os.environ}
    env[SYS_PATH_ENV] = json.dumps([p for p in sys.path if p])
    env[FILE_MODULES_ENV] = json.dumps(FILE_MODULES)
    if token is not None:
        env[TOKEN_ENV] = token
    if tls is not None:
        env[TLS_ENV] = json.dumps([tls.cert, tls.key, tls.ca])
    return env


def worker_tls() -> TLSFiles:
    """The TLS files :func:`child_env` handed this worker (none: its node has no TLS)."""
    cert, key, ca = json.loads(os.environ.get(TLS_ENV) or '["", "", ""]')
    return TLSFiles(cert, key, ca)


def adopt_parent_path() -> None:
    """Import what the parent could: classes pickled by reference must resolve here.

    Takes the parent's import path, and imports the files it loaded as modules
    under the same names.
    """
    extra = json.loads(os.environ.get(SYS_PATH_ENV, "[]"))
    sys.path[:0] = [p for p in extra if p not in sys.path]
    for name, path in json.loads(os.environ.get(FILE_MODULES_ENV, "{}")).items():
        import_file(Path(path), name)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies: no orphans, even after kill -9."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except OSError:
        pass
