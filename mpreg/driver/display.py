"""What ``mpreg.init()`` returns: the node address, shown as the cluster behind it.

:class:`ClusterInfo` is a ``str`` (``mpreg.init(...) == "host:port"`` keeps
working, and it can be passed wherever an address goes); shown in a
notebook or a terminal it asks the cluster for a status snapshot and
renders it: nodes, actors, datasets, load, and where the embedded cluster logs.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mpreg.errors import MpregError
from mpreg.status import ClusterStatus

if TYPE_CHECKING:
    from rich.console import RenderableType

SHOW_TIMEOUT = 5.0  # seconds a display waits for the status: a repr must not hang a cell


class ClusterInfo(str):
    """The address of the node this process talks to, with a view of its cluster.

    ``log`` is the embedded cluster's log file ("" for a cluster started
    elsewhere); ``status()`` a fresh :class:`~mpreg.status.ClusterStatus`
    (``status`` given is called with a ``timeout=`` keyword, or none).
    """

    log: str
    _status: Callable[..., ClusterStatus]

    def __new__(cls, address: str, *, status: Callable[..., ClusterStatus], log: str = "") -> Any:
        info = super().__new__(cls, address)
        info.log = log
        info._status = status
        return info

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (self.address,))  # it travels as the plain address it is

    @property
    def address(self) -> str:
        return str.__str__(self)

    def status(self) -> ClusterStatus:
        return self._status()

    def _snapshot(self) -> ClusterStatus | str:
        """The snapshot, or why there is none (a repr must not raise)."""
        try:
            return self._status(timeout=SHOW_TIMEOUT)
        except MpregError as exc:
            return f"no status: {exc}"

    def _header(self) -> str:
        where = "embedded cluster" if self.log else "cluster"
        text = f"connected to the {where} at {self.address}"
        return text + (f" (its log: {self.log})" if self.log else "")

    def __repr__(self) -> str:
        snapshot = self._snapshot()
        return (
            f"mpreg: {self._header()}\n{snapshot if isinstance(snapshot, str) else repr(snapshot)}"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # IPython's own printer would show only the string

    def _repr_html_(self) -> str:
        snapshot = self._snapshot()
        body = (
            f"<p>{html.escape(snapshot)}</p>"
            if isinstance(snapshot, str)
            else snapshot._repr_html_()
        )
        return f"<div class='mpreg-init'><p>mpreg: {html.escape(self._header())}</p>{body}</div>"

    def __rich__(self) -> RenderableType:
        from rich.console import Group  # rich is loaded where it draws, not in every driver
        from rich.text import Text

        snapshot = self._snapshot()
        return Group(Text(f"mpreg: {self._header()}"), snapshot)


__all__ = ["ClusterInfo"]
