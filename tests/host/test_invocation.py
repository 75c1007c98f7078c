"""How mpreg was launched: ``uv run`` in the hints, and a temporary uv environment spotted."""

from __future__ import annotations

from mpreg.host.invocation import (
    mpreg_command,
    temporary_environment,
    temporary_environment_warning,
)


def test_hints_say_uv_run_when_uv_ran_it() -> None:
    assert mpreg_command({"UV": "/usr/local/bin/uv"}) == "uv run mpreg"
    assert mpreg_command({"PATH": "/usr/bin"}) == "mpreg"
    assert mpreg_command({"UV": ""}) == "mpreg"


def test_a_uv_run_with_environment_is_temporary() -> None:
    tmp = "/root/.cache/uv/builds-v0/.tmpHOxUbY"
    assert temporary_environment(tmp) == tmp
    warning = temporary_environment_warning(tmp)
    assert warning is not None
    assert tmp in warning and "uv add PACKAGE" in warning and "--block" in warning


def test_lasting_environments_are_not() -> None:
    for prefix in (
        "/work/project/.venv",
        "/root/.cache/uv/archive-v0/cLCJAhJIhrs2BF9g",  # uvx's cached tool environments stay
        "/usr",
        "/home/me/builds-v0/stable",
    ):
        assert temporary_environment(prefix) is None
        assert temporary_environment_warning(prefix) is None
