"""Fixtures for the per-host tests: a private state directory for each test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``MPREG_HOME`` (not yet created) and no ``MPREG_TOKEN`` from outside."""
    path = tmp_path / "mpreg-home"
    monkeypatch.setenv("MPREG_HOME", str(path))
    monkeypatch.delenv("MPREG_TOKEN", raising=False)
    return path
