"""User modules: import errors a person can read, file modules served with real tracebacks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mpreg import Client, Command, RemoteError
from mpreg.actors.loader import load_module
from mpreg.errors import ModuleLoadError
from mpreg.testing import node, run_cluster


def test_a_missing_module_is_one_line() -> None:
    with pytest.raises(ModuleLoadError) as info:
        load_module("no_such_package.models")
    assert str(info.value) == (
        "cannot import 'no_such_package.models': No module named 'no_such_package'"
    )


def test_a_module_that_raises_shows_the_users_frames_only(tmp_path: Path) -> None:
    path = tmp_path / "broken_models.py"
    path.write_text("x = 1\nraise RuntimeError('weights file missing')\n")
    with pytest.raises(ModuleLoadError) as info:
        load_module(str(path))
    text = str(info.value)
    assert 'broken_models.py", line 2' in text
    assert "RuntimeError: weights file missing" in text
    assert "importlib" not in text and "loader.py" not in text


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModuleLoadError, match="does not exist"):
        load_module(str(tmp_path / "nope.py"))


@pytest.mark.cluster
async def test_a_file_module_is_served_and_its_tracebacks_point_at_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "file_models.py"
    path.write_text(
        textwrap.dedent(
            """
            import mpreg

            @mpreg.function
            def explode(x):
                raise ValueError(f"bad input {x}")

            @mpreg.actor(datasets=["fm"])
            class Scaler:
                def __init__(self):
                    self.k = 3

                def scale(self, x):
                    return x * self.k
            """
        )
    )
    async with (
        run_cluster(node("files", modules=(str(path),))) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        assert await client.request([Command("s", "scale", [14], ["fm"])]) == {"s": 42}
        with pytest.raises(RemoteError) as info:
            await client.request([Command("e", "explode", [7])])
    assert f'File "{path}", line 6, in explode' in info.value.remote_traceback
    assert 'raise ValueError(f"bad input {x}")' in info.value.remote_traceback
