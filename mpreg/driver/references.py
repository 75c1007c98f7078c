"""The references of one request: which results, and which fields of them, each command uses.

:class:`Linker` rewrites one command's arguments for the planner
(:mod:`mpreg.driver.planner`, which states the rules): each reference becomes a
:class:`DepRef`, and :class:`Asked` collects, per command, the paths of its
result that others use and whether anyone uses it whole. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mpreg.commands import Ref
from mpreg.errors import PlanError
from mpreg.protocol.refs import DepRef, Path, field_key, rewrite


class Asked:
    """What the commands of one request use of each other's results: fields and wholes."""

    __slots__ = ("by_position", "whole")

    def __init__(self, count: int) -> None:
        self.by_position: list[dict[Path, int]] = [{} for _ in range(count)]
        self.whole: set[int] = set()  # positions some command uses whole

    def field(self, position: int, path: Path) -> int:
        """The index of ``path`` among the fields asked of ``position``'s result."""
        asked = self.by_position[position]
        found = asked.get(path)
        if found is None:
            found = asked[path] = len(asked)
        return found

    def paths(self, position: int) -> tuple[Path, ...]:
        return tuple(self.by_position[position])


class Linker:
    """Rewrites one command's arguments, collecting what it depends on."""

    __slots__ = (
        "asked",
        "external",
        "first_id",
        "futures",
        "index",
        "internal",
        "last_id",
        "name",
        "uses",
        "wholes",
    )

    def __init__(
        self,
        name: str,
        index: Mapping[str, int],
        first_id: int,
        last_id: int,
        futures: Callable[[Any], int | None] | None,
        asked: Asked,
    ) -> None:
        self.name = name
        self.index = index
        self.first_id = first_id
        self.last_id = last_id
        self.futures = futures
        self.asked = asked
        self.internal: set[int] = set()
        self.external: set[int] = set()
        self.uses: dict[tuple[int, int], int] = {}  # (dep task id, field index) -> its key
        self.wholes: set[int] = set()  # task ids used whole

    def uses_table(self) -> tuple[tuple[int, int], ...]:
        """The task's ``uses``: its fields in key order, then its whole deps; () if no field."""
        if not self.uses:
            return ()
        return (*self.uses, *((task_id, -1) for task_id in sorted(self.wholes)))

    def top_level(self, value: Any) -> Any:
        """Rewrite one positional argument or keyword value."""
        if isinstance(value, str):
            # The seed's implicit rule: only top-level strings, never the own name.
            position = self.index.get(value)
            if position is not None and value != self.name:
                return self._whole(position)
            if position is None and "." in value:
                return self._dotted(value)
            return value
        return rewrite(value, self.leaf)

    def _dotted(self, value: str) -> Any:
        """``"NAME.path"`` with the longest prefix that names another command, or ``value``."""
        steps = value.split(".")
        for cut in range(len(steps) - 1, 0, -1):
            target = ".".join(steps[:cut])
            position = self.index.get(target)
            if position is not None and target != self.name:
                path = tuple(steps[cut:])
                return value if "" in path else self._field(position, path)
        return value

    def _whole(self, position: int) -> DepRef:
        self.internal.add(position)
        self.asked.whole.add(position)
        task_id = self.first_id + position
        self.wholes.add(task_id)
        return DepRef(task_id)

    def _field(self, position: int, path: Path) -> DepRef:
        self.internal.add(position)
        task_id = self.first_id + position
        use = (task_id, self.asked.field(position, path))
        key = self.uses.get(use)
        if key is None:
            key = self.uses[use] = field_key(len(self.uses))
        return DepRef(task_id, path, key)

    def leaf(self, value: Any) -> Any:
        """Rewrite one value that is not a walked container."""
        if type(value) is Ref:
            target = value.name
            if target == self.name:
                raise PlanError(
                    f"dependency cycle: command {self.name!r} refers to its own result "
                    f"with Ref({target!r})",
                    command=self.name,
                )
            position = self.index.get(target)
            if position is None:
                raise PlanError(
                    f"command {self.name!r}: Ref({target!r}) names no command in this request",
                    command=self.name,
                )
            return self._field(position, value.path) if value.path else self._whole(position)
        if self.futures is not None:
            task_id = self.futures(value)
            if task_id is not None:
                if self.first_id <= task_id < self.last_id:
                    # Would make a task wait on itself or a sibling it cannot know.
                    raise PlanError(
                        f"command {self.name!r}: a future argument has task id {task_id}, "
                        "which belongs to this same request",
                        command=self.name,
                    )
                self.external.add(task_id)
                self.wholes.add(task_id)
                return DepRef(task_id)
        return value


__all__ = ["Asked", "Linker"]
