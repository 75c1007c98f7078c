"""What mpreg.init returns: the address as a str, shown as the cluster behind it."""

from __future__ import annotations

import io
import pickle

from rich.console import Console
from test_status import cluster

from mpreg.driver.display import ClusterInfo
from mpreg.errors import ClusterUnavailable
from mpreg.status import ClusterStatus


def status(timeout: float | None = None) -> ClusterStatus:
    assert timeout is None or timeout <= 5  # a display never waits long
    return cluster()


def info(log: str = "/tmp/embedded.log") -> ClusterInfo:
    return ClusterInfo("127.0.0.1:7773", status=status, log=log)


def test_it_is_the_address() -> None:
    shown = info()
    assert shown == "127.0.0.1:7773"
    assert shown.address == "127.0.0.1:7773" and f"{shown}" == "127.0.0.1:7773"
    assert shown.rpartition(":")[2] == "7773"
    copy = pickle.loads(pickle.dumps(shown))  # it travels as the plain address
    assert type(copy) is str and copy == "127.0.0.1:7773"


def test_in_a_notebook_it_shows_the_cluster_and_its_log() -> None:
    page = info()._repr_html_()
    for text in ("embedded cluster at 127.0.0.1:7773", "/tmp/embedded.log", "IrisModel", "head"):
        assert text in page
    assert isinstance(info().status(), ClusterStatus)


def test_in_a_terminal_it_is_a_rich_table_and_a_plain_repr() -> None:
    console = Console(width=100, file=io.StringIO(), color_system=None, record=True)
    console.print(info(log=""))
    out = console.export_text()
    assert out.startswith("mpreg: connected to the cluster at 127.0.0.1:7773\n")
    assert "WineModel" in out
    assert "IrisModel  head" in repr(info())


def test_a_cluster_that_does_not_answer_still_shows() -> None:
    def unreachable(timeout: float | None = None) -> ClusterStatus:
        raise ClusterUnavailable("lost node 127.0.0.1:7773")

    shown = ClusterInfo("127.0.0.1:7773", status=unreachable)
    assert "no status: lost node 127.0.0.1:7773" in repr(shown)
    assert "no status: lost node" in shown._repr_html_()
