"""How a node process logs: one line per event, key=value or JSON, in a file that rotates.

Every line carries the node's name, and the request id of the client's batch
when the event is about one of its tasks (``extra={"request_id": ...}``)::

    ts=2026-12-01T00:05:00.123Z level=INFO node=vm-7773 logger=mpreg.node.session
    msg="task 'fail' failed: ValueError: no" request_id=4        (one line)

``--log-format json`` writes the same fields as one JSON object per line.
The node owns its log file (a :class:`RotatingFileHandler`, ``MAX_BYTES`` x
``BACKUPS`` by default): the starter's redirect of its stdout and stderr to
the same file only catches what Python prints before logging starts, or a
crash, and is moved to the new file at every rollover.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

FORMATS = ("kv", "json")
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
# Fields of a LogRecord that are its own, not ``extra`` context worth printing.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "node"}


class NodeName(logging.Filter):
    """Adds ``node`` to every record: the node's name as it is now (see :func:`set_node_name`)."""

    def __init__(self) -> None:
        super().__init__()
        self.name_now: Callable[[], str] = str

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.name_now()
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields: dict[str, object] = {
        "ts": f"{ts}.{int(record.msecs):03d}Z",
        "level": record.levelname,
        "node": getattr(record, "node", ""),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    return fields


def _kv_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``key=value`` pairs, quoted where needed; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_kv_value(v)}" for k, v in _fields(record).items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is its ``exc`` field."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False, default=str)


class NodeLogFile(logging.handlers.RotatingFileHandler):
    """A rotating log file that also takes this process's stdout and stderr along."""

    def __init__(self, path: Path, max_bytes: int, backups: int, *, own_std: bool) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._own_std = own_std

    def doRollover(self) -> None:
        super().doRollover()
        if self._own_std and self.stream is not None:
            # fds 1 and 2 still point at the file just renamed away: follow the new one.
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)


_name = NodeName()


def configure(
    *,
    level: str = "WARNING",
    fmt: str = "kv",
    path: Path | None = None,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> logging.Handler:
    """Send this process's log records to ``path`` (rotating) or stderr, in ``fmt``.

    With ``path``, stdout and stderr are expected to be redirected to the
    same file by the starter and follow it across rotations.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = NodeLogFile(path, max_bytes, backups, own_std=True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(_name)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def actor_dir(log_path: Path) -> Path:
    """Where the workers of the node logging to ``log_path`` print: ``X.log`` -> ``X.actors/``."""
    return log_path.with_suffix(".actors")


def set_node_name(name: str | Callable[[], str]) -> None:
    """Name the node in every line from now on: a name, or how to read it when a line is written.

    A callable follows a node that names itself once it binds its port.
    """
    _name.name_now = name if callable(name) else (lambda: name)
