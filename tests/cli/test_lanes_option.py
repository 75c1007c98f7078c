"""Direct lanes are on by default; `--no-lanes`, `MPREG_LANES=0`, `lanes: false` turn them off."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpreg.cli.commands import _apply_options
from mpreg.cli.parser import parse
from mpreg.config import LANES_ENV, NodeConfig
from mpreg.errors import ConfigError
from mpreg.host.config_file import load_config


def test_lanes_are_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LANES_ENV, raising=False)
    assert NodeConfig().lanes
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).lanes


def test_the_flag_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LANES_ENV, raising=False)
    assert not _apply_options(NodeConfig(), parse(["start", "--head", "--no-lanes"])).lanes


@pytest.mark.parametrize(
    ("setting", "on"), [("0", False), ("off", False), ("False", False), ("1", True)]
)
def test_the_environment_decides_the_default(
    monkeypatch: pytest.MonkeyPatch, setting: str, on: bool
) -> None:
    """MPREG_LANES reaches every NodeConfig made here: `mpreg start`, mpreg.init, tests."""
    monkeypatch.setenv(LANES_ENV, setting)
    assert NodeConfig().lanes is on
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).lanes is on


def test_the_config_file_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LANES_ENV, raising=False)
    path = tmp_path / "node.yaml"
    path.write_text("name: n\nlanes: false\n")
    assert not load_config(path).lanes
    path.write_text("name: n\nlanes: maybe\n")
    with pytest.raises(ConfigError, match=r"node.yaml:2: lanes must be true or false"):
        load_config(path)
