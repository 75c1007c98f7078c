"""Progress bars in a terminal: rich on stderr, counting to the total (notebook bars: the
notebook tests, on a real kernel)."""

from __future__ import annotations

import pytest

from mpreg.driver.bars import TerminalBar, bar


def test_outside_a_kernel_the_bar_is_rich_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    shown = bar(3, "results")
    assert isinstance(shown, TerminalBar)
    for _ in range(3):
        shown.advance()
    shown.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "results" in captured.err and "3/3" in captured.err
