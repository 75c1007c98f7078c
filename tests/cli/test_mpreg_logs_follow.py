"""``mpreg logs -f`` reads what is appended, across a rotation, and never half a line."""

from __future__ import annotations

from pathlib import Path

from mpreg.cli.logs import _Watched
from mpreg.host.logfiles import LogFile, last_lines


def test_last_lines_and_the_offset_after_them(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(10_000)))
    lines, end = last_lines(path, 3)
    assert lines == [b"line 9997\n", b"line 9998\n", b"line 9999\n"]
    assert end == path.stat().st_size
    assert last_lines(path, 0) == ([], end)


def test_following_waits_for_a_line_s_end_and_crosses_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    path.write_bytes(b"old\n")
    watched = _Watched(LogFile("n", path), offset=4)
    assert watched.read_new() == []
    with path.open("ab") as f:
        f.write(b"one\ntw")
    assert watched.read_new() == [b"one\n"]
    with path.open("ab") as f:
        f.write(b"o\nlast before the rotation\n")
    path.rename(tmp_path / "n.log.1")  # what RotatingFileHandler does, then a new file
    path.write_bytes(b"first after\n")
    assert watched.read_new() == [b"two\n", b"last before the rotation\n", b"first after\n"]
    assert watched.read_new() == []
