"""Node log lines: key=value or JSON, with the node's name and a task's request id; rotation."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from mpreg.host.logs import JsonFormatter, KeyValueFormatter, NodeLogFile, NodeName, actor_dir


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("mpreg.node.session")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None, extra=extra)
    name = NodeName()
    name.name_now = lambda: "vm-7773"
    name.filter(record)
    return record


def test_key_value_lines_quote_what_needs_it() -> None:
    line = KeyValueFormatter().format(
        _record("task %r failed: %s", "f", "ValueError", request_id=4)
    )
    assert line.startswith("ts=")
    fields = line.split(" ", 3)
    assert fields[1:3] == ["level=INFO", "node=vm-7773"]
    assert "logger=mpreg.node.session" in line
    assert "msg=\"task 'f' failed: ValueError\"" in line
    assert line.endswith(" request_id=4")
    assert "\n" not in line


def test_json_lines_carry_the_same_fields() -> None:
    fields = json.loads(JsonFormatter().format(_record("boom\nline two", request_id=9)))
    assert fields["node"] == "vm-7773"
    assert fields["msg"] == "boom\nline two"
    assert fields["request_id"] == 9
    assert fields["ts"].endswith("Z")


def test_a_traceback_follows_a_key_value_line_and_is_a_json_field() -> None:
    try:
        raise ValueError("inner")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    assert "\nTraceback" in KeyValueFormatter().format(record)
    assert "ValueError: inner" in json.loads(JsonFormatter().format(record))["exc"]


def test_the_file_rotates_by_size_and_keeps_its_backups(tmp_path: Path) -> None:
    path = tmp_path / "node.log"
    handler = NodeLogFile(path, max_bytes=1000, backups=2, own_std=False)
    handler.setFormatter(KeyValueFormatter())
    try:
        for i in range(100):
            handler.emit(_record("line %d", i))
    finally:
        handler.close()
    assert path.stat().st_size <= 1000
    assert (tmp_path / "node.log.1").is_file() and (tmp_path / "node.log.2").is_file()
    assert not (tmp_path / "node.log.3").exists()
    assert 'msg="line 99"' in path.read_text()


def test_actors_print_beside_the_node_log() -> None:
    assert actor_dir(Path("/x/vm-1.log")) == Path("/x/vm-1.actors")
