"""Command DAG -> Plan: validate a request and turn names into task dependencies.

The planner runs in the driver, before anything is sent: it checks the whole
request (names, functions, datasets, argument shapes, duplicates, cycles),
gives every command a task id, and replaces each reference to another command's
result with a :class:`DepRef` placeholder. The cluster then resolves the
placeholders itself (:func:`resolve_refs` on the executing worker), so a chain
of k commands costs one driver round trip, not k.

What counts as a reference (SPEC section 1, kept exactly as the seed had it):

- a top-level positional argument or keyword value that is a ``str`` equal to
  the name of *another* command in the request (a command's own name is just a
  string, so ``Command("echo", "echo", ["echo"])`` echoes ``"echo"``);
- an explicit :class:`~mpreg.commands.Ref`, anywhere inside lists, tuples and
  dict values, at any depth;
- a client-side future (recognised by the ``futures`` callback), anywhere.

Field access (SPEC 7b): a top-level ``str`` that is no command name but reads
``"NAME.path.to.field"`` with ``NAME`` another command (the longest such
prefix: names may hold dots), and ``Ref(NAME, *path)``, refer to a field of
``NAME``'s result. The producing task is told which paths its consumers use
(``fields``) and whether anyone needs its whole result (``whole``); each
consumer lists what it takes (``uses``), so only fields travel to it.

Only exact ``list``, ``tuple`` and ``dict`` instances are walked; subclasses
(named tuples, ``OrderedDict``...) are opaque values, so rebuilding never has
to guess a constructor. A container holding no reference is kept as the very
same object, so a big argument costs one walk and no copy.

Pure: no sockets, no asyncio, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from mpreg.commands import Command
from mpreg.driver.references import Asked, Linker
from mpreg.errors import PlanError
from mpreg.protocol.refs import ATOMS, Path


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One command of a request, ready to submit.

    ``args`` and ``kwargs`` hold :class:`DepRef` where the command used another
    result; ``deps`` lists every task id it waits for (in this request or an
    earlier submitted future), sorted and unique. A task with no ``deps`` has
    nothing to resolve. ``want_result`` says whether the driver wants the
    value back (sinks, or every task with ``return_all``).

    ``fields`` are the paths of this task's result that consumers use; when
    there are any, the worker answers with a bundle holding them, and the
    whole result too only if ``whole`` (a sink, or a plain reference uses
    it). ``uses`` is empty unless this task uses fields: then it lists every
    (dep task id, field index) it takes, index -1 meaning the whole result;
    the i-th entry, if a field, is found under ``field_key(i)``.
    """

    task_id: int
    name: str
    fun: str
    datasets: frozenset[str]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: tuple[int, ...]
    want_result: bool
    fields: tuple[Path, ...] = ()
    whole: bool = True
    uses: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated request: its tasks in a topological order (deps first)."""

    tasks: tuple[PlannedTask, ...]

    def result_names(self) -> dict[int, str]:
        """Map task id -> command name for the tasks whose result goes back."""
        return {task.task_id: task.name for task in self.tasks if task.want_result}


def plan_request(
    commands: Sequence[Command],
    *,
    first_task_id: int,
    return_all: bool = False,
    futures: Callable[[Any], int | None] | None = None,
) -> Plan:
    """Validate ``commands`` and build their :class:`Plan`.

    Task ids are ``first_task_id``, ``first_task_id + 1``, ... in the order the
    commands are given. ``futures``, when given, is asked about every value
    that is not a plain scalar or walked container; it returns the task id of
    an already submitted future (which becomes a :class:`DepRef` and a dep) or
    ``None``.

    Raises :class:`PlanError` (with ``.command`` naming the offender where
    there is one) for an empty request, a malformed command, a duplicate name,
    a reference to an unknown command, or a dependency cycle. Nothing is
    planned partially: the request is either valid as a whole or refused.
    """
    if isinstance(commands, Command):
        raise PlanError("a request is a list of commands; wrap the one command in [...]")
    if not commands:
        raise PlanError("empty request: give at least one Command")
    checked = [_validate(command, position) for position, command in enumerate(commands)]
    if len(checked) == 1:
        single = _plan_plain_single(checked[0], first_task_id)
        if single is not None:
            return single

    index: dict[str, int] = {}
    for position, command in enumerate(checked):
        if command.name in index:
            raise PlanError(
                f"duplicate command name {command.name!r}: names in a request must be unique",
                command=command.name,
            )
        index[command.name] = position

    first_id = first_task_id
    last_id = first_task_id + len(checked)
    internal: list[set[int]] = []  # positions each command depends on
    external: list[set[int]] = []  # task ids of earlier futures it depends on
    args_out: list[tuple[Any, ...]] = []
    kwargs_out: list[dict[str, Any]] = []
    uses_out: list[tuple[tuple[int, int], ...]] = []
    asked = Asked(len(checked))
    for command in checked:
        linker = Linker(command.name, index, first_id, last_id, futures, asked)
        try:
            args = tuple(linker.top_level(arg) for arg in command.args)
            kwargs = {key: linker.top_level(value) for key, value in command.kwargs.items()}
        except RecursionError:
            raise PlanError(
                f"command {command.name!r}: an argument is nested too deeply or contains itself",
                command=command.name,
            ) from None
        internal.append(linker.internal)
        external.append(linker.external)
        args_out.append(args)
        kwargs_out.append(kwargs)
        uses_out.append(linker.uses_table())

    order = _topological_order(checked, internal)
    referenced: set[int] = set().union(*internal)
    wanted = [return_all or position not in referenced for position in range(len(checked))]
    tasks = tuple(
        PlannedTask(
            task_id=first_id + position,
            name=checked[position].name,
            fun=checked[position].fun,
            datasets=checked[position].datasets,
            args=args_out[position],
            kwargs=kwargs_out[position],
            deps=tuple(sorted({first_id + dep for dep in internal[position]} | external[position])),
            want_result=wanted[position],
            fields=asked.paths(position),
            whole=wanted[position] or position in asked.whole,
            uses=uses_out[position],
        )
        for position in order
    )
    return Plan(tasks=tasks)


def sink_names(commands: Sequence[Command]) -> tuple[str, ...]:
    """The names of the commands no other command references, in the order given.

    These are the results a request returns (without ``return_all``). Raises
    :class:`PlanError` for a request :func:`plan_request` would refuse.
    """
    wanted = {
        task.task_id for task in plan_request(commands, first_task_id=0).tasks if task.want_result
    }
    return tuple(command.name for position, command in enumerate(commands) if position in wanted)


def _plan_plain_single(command: _Checked, task_id: int) -> Plan | None:
    """The plan of a lone command whose arguments are all scalars, or None.

    The most common request (one call, plain arguments) can hold no
    reference and no future, so linking and ordering are skipped: about
    half of a small call's cost in the driver.
    """
    atoms = ATOMS
    for value in command.args:
        if type(value) not in atoms:
            return None
    for value in command.kwargs.values():
        if type(value) not in atoms:
            return None
    task = PlannedTask(
        task_id=task_id,
        name=command.name,
        fun=command.fun,
        datasets=command.datasets,
        args=tuple(command.args),
        kwargs=dict(command.kwargs),
        deps=(),
        want_result=True,
    )
    return Plan(tasks=(task,))


@dataclass(frozen=True, slots=True)
class _Checked:
    """A command after validation, with normalised field types."""

    name: str
    fun: str
    datasets: frozenset[str]
    args: Sequence[Any]
    kwargs: Mapping[str, Any]


def _validate(command: object, position: int) -> _Checked:
    """Check one command's shape; raise PlanError naming it if malformed."""
    if not isinstance(command, Command):
        raise PlanError(
            f"request item {position} is a {type(command).__name__}, not an mpreg.Command"
        )
    name = command.name
    if not isinstance(name, str) or not name:
        raise PlanError(
            f"command {position}: name must be a non-empty str, got {name!r}",
            command=name if isinstance(name, str) else repr(name),
        )
    fun = command.fun
    if not isinstance(fun, str) or not fun:
        raise PlanError(
            f"command {name!r}: fun must be a non-empty function name (str), got {fun!r}",
            command=name,
        )
    return _Checked(
        name=name,
        fun=fun,
        datasets=_check_datasets(name, command.datasets),
        args=_check_args(name, command.args),
        kwargs=_check_kwargs(name, command.kwargs),
    )


def _check_datasets(name: str, datasets: object) -> frozenset[str]:
    if isinstance(datasets, str):
        raise PlanError(
            f"command {name!r}: datasets must be a list of names, not a bare str; "
            f"use [{datasets!r}] instead of {datasets!r}",
            command=name,
        )
    # list/tuple first: the ABC checks below cost more than the rest of a small plan.
    if type(datasets) not in (list, tuple) and (
        isinstance(datasets, (bytes, bytearray, Mapping)) or not isinstance(datasets, Iterable)
    ):
        raise PlanError(
            f"command {name!r}: datasets must be a list of dataset names, "
            f"got {type(datasets).__name__}",
            command=name,
        )
    names: list[str] = []
    for item in cast("Iterable[object]", datasets):
        if not isinstance(item, str) or not item:
            raise PlanError(
                f"command {name!r}: every dataset must be a non-empty str, got {item!r}",
                command=name,
            )
        names.append(item)
    return frozenset(names)


def _check_args(name: str, args: object) -> Sequence[Any]:
    if isinstance(args, str):
        raise PlanError(
            f"command {name!r}: args must be a list or tuple, not a bare str; "
            f"use [{args!r}] to pass one string argument",
            command=name,
        )
    if not isinstance(args, (list, tuple)):
        raise PlanError(
            f"command {name!r}: args must be a list or tuple, got {type(args).__name__}",
            command=name,
        )
    return args


def _check_kwargs(name: str, kwargs: object) -> Mapping[str, Any]:
    if kwargs is None:
        return {}
    if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        raise PlanError(
            f"command {name!r}: kwargs must be a dict (or None), got {type(kwargs).__name__}",
            command=name,
        )
    for key in kwargs:
        if not isinstance(key, str):
            raise PlanError(f"command {name!r}: kwargs keys must be str, got {key!r}", command=name)
    return kwargs


def _topological_order(commands: Sequence[_Checked], internal: Sequence[set[int]]) -> list[int]:
    """Order positions deps-first, keeping user order where possible (Kahn + min-heap).

    Raises PlanError naming the commands on a cycle if there is one.
    """
    count = len(commands)
    waiting = [len(deps) for deps in internal]
    dependents: list[list[int]] = [[] for _ in range(count)]
    for position, deps in enumerate(internal):
        for dep in deps:
            dependents[dep].append(position)
    ready = [position for position in range(count) if waiting[position] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        position = heapq.heappop(ready)
        order.append(position)
        for dependent in dependents[position]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) < count:
        cycle = _find_cycle(set(range(count)) - set(order), internal)
        names = [commands[position].name for position in cycle]
        shown = " -> ".join(repr(name) for name in [*names, names[0]])
        raise PlanError(
            f"dependency cycle between commands {shown} (each uses the result of the next)",
            command=names[0],
        )
    return order


def _find_cycle(stuck: set[int], internal: Sequence[set[int]]) -> list[int]:
    """Return one cycle among ``stuck`` positions, starting at its earliest member.

    Every stuck command waits on at least one other stuck command, so following
    deps inside ``stuck`` must revisit a position: that loop is the cycle.
    """
    seen: dict[int, int] = {}
    path: list[int] = []
    position = min(stuck)
    while position not in seen:
        seen[position] = len(path)
        path.append(position)
        position = min(dep for dep in internal[position] if dep in stuck)
    cycle = path[seen[position] :]
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


__all__ = ["Plan", "PlannedTask", "plan_request"]
