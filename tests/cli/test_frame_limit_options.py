"""``--max-frame-mb`` / ``--frame-stall-timeout`` and their config-file keys reach NodeConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpreg.cli.commands import _apply_options
from mpreg.cli.parser import parse
from mpreg.config import DEFAULT_FRAME_STALL_TIMEOUT, DEFAULT_MAX_FRAME_BYTES, NodeConfig
from mpreg.errors import ConfigError, UsageError
from mpreg.host.config_file import load_config

MiB = 1 << 20


def test_the_flags_reach_the_node_config() -> None:
    ns = parse(["start", "--head", "--max-frame-mb", "256", "--frame-stall-timeout", "5"])
    config = _apply_options(NodeConfig(), ns)
    assert config.max_frame_bytes == 256 * MiB
    assert config.frame_stall_timeout == 5.0


def test_without_flags_the_defaults_hold_well_below_512_mib() -> None:
    config = _apply_options(NodeConfig(), parse(["start", "--head"]))
    assert config.max_frame_bytes == DEFAULT_MAX_FRAME_BYTES == 128 * MiB
    assert config.frame_stall_timeout == DEFAULT_FRAME_STALL_TIMEOUT


def test_max_frame_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPREG_MAX_FRAME_MB", "64")
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).max_frame_bytes == 64 * MiB


@pytest.mark.parametrize("flag", ["--max-frame-mb", "--frame-stall-timeout"])
def test_zero_is_a_usage_error(flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        _apply_options(NodeConfig(), parse(["start", "--head", flag, "0"]))


def test_config_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("max_frame_mb: 32\nframe_stall_timeout: 2.5\n")
    config = load_config(path)
    assert config.max_frame_bytes == 32 * MiB
    assert config.frame_stall_timeout == 2.5


def test_a_bad_config_file_value_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("name: n\nmax_frame_mb: lots\n")
    with pytest.raises(ConfigError, match=r"node.yaml:2: .*max_frame_mb"):
        load_config(path)
