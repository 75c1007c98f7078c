"""Tests for mpreg.driver.planner: Command DAG -> Plan, references, validation, resolve_refs."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from mpreg.commands import Command, Ref
from mpreg.driver.planner import Plan, PlannedTask, plan_request, sink_names
from mpreg.errors import PlanError
from mpreg.protocol.refs import DepRef, resolve_refs


def plan(commands: list[Command], **options: Any) -> Plan:
    return plan_request(commands, first_task_id=options.pop("first_task_id", 1), **options)


def by_name(result: Plan) -> dict[str, PlannedTask]:
    return {task.name: task for task in result.tasks}


def sinks(result: Plan) -> set[str]:
    return set(result.result_names().values())


def run_locally(result: Plan) -> dict[str, Any]:
    """Execute a plan in-process with echo/echos, as the cluster would."""
    funs: dict[str, Any] = {"echo": lambda x: x, "echos": lambda *xs: list(xs)}
    results: dict[int, Any] = {}
    for task in result.tasks:
        assert all(dep in results for dep in task.deps), "plan is not topologically ordered"
        args = resolve_refs(task.args, results)
        kwargs = resolve_refs(task.kwargs, results)
        results[task.task_id] = funs[task.fun](*args, **kwargs)
    return {name: results[task_id] for task_id, name in result.result_names().items()}


# --- the seed README's examples ------------------------------------------------


def test_seed_single_command_is_its_own_sink() -> None:
    result = plan([Command("first", "echo", ["hi there!"], [])])
    (task,) = result.tasks
    assert task == PlannedTask(1, "first", "echo", frozenset(), ("hi there!",), {}, (), True)
    assert run_locally(result) == {"first": "hi there!"}


def test_seed_second_uses_first_by_name() -> None:
    result = plan(
        [Command("first", "echo", ["hi there!"], []), Command("second", "echo", ["first"], [])]
    )
    tasks = by_name(result)
    assert tasks["second"].args == (DepRef(1),)
    assert tasks["second"].deps == (1,)
    assert sinks(result) == {"second"}
    assert tasks["first"].want_result is False
    assert run_locally(result) == {"second": "hi there!"}


def test_seed_pipe_names_return_two_sinks() -> None:
    result = plan(
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "AND ME TOO"], []),
        ]
    )
    tasks = by_name(result)
    assert tasks["|third"].args == (DepRef(1), "AND ME TOO")
    assert tasks["|third"].deps == (1,)
    assert sinks(result) == {"|second", "|third"}
    assert run_locally(result) == {"|second": "hi there!", "|third": ["hi there!", "AND ME TOO"]}


def test_seed_three_returns_one() -> None:
    result = plan(
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
        ]
    )
    tasks = by_name(result)
    assert tasks["|third"].args == (DepRef(1), DepRef(2), "AND ME TOO")
    assert tasks["|third"].deps == (1, 2)
    assert sinks(result) == {"|third"}
    assert run_locally(result) == {"|third": ["hi there!", "hi there!", "AND ME TOO"]}


def test_seed_four_returns_one() -> None:
    result = plan(
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
            Command("|4th", "echo", ["|third"], []),
        ]
    )
    assert by_name(result)["|4th"].deps == (3,)
    assert sinks(result) == {"|4th"}
    assert run_locally(result) == {"|4th": ["hi there!", "hi there!", "AND ME TOO"]}


def test_return_all_wants_every_result() -> None:
    result = plan(
        [Command("a", "echo", ["x"]), Command("b", "echo", ["a"])],
        return_all=True,
    )
    assert result.result_names() == {1: "a", 2: "b"}
    assert run_locally(result) == {"a": "x", "b": "x"}


def test_sink_names_are_the_unreferenced_commands_in_given_order() -> None:
    commands = [
        Command("c", "echos", ["a", {"x": Ref("b")}]),
        Command("a", "echo", ["x"]),
        Command("b", "echo", ["a"]),
        Command("d", "echo", ["d"]),  # its own name is a plain string
    ]
    assert sink_names(commands) == ("c", "d")
    assert set(sink_names(commands)) == sinks(plan(commands))


def test_sink_names_refuses_what_the_planner_refuses() -> None:
    with pytest.raises(PlanError, match="cycle"):
        sink_names([Command("a", "echo", ["b"]), Command("b", "echo", ["a"])])


def test_task_ids_follow_given_order_from_first_task_id() -> None:
    result = plan(
        [Command("late", "echo", ["early"]), Command("early", "echo", [1])],
        first_task_id=100,
    )
    assert {task.name: task.task_id for task in result.tasks} == {"late": 100, "early": 101}
    assert [task.name for task in result.tasks] == ["early", "late"]


# --- the reference rule ----------------------------------------------------------


def test_own_name_string_is_not_a_reference() -> None:
    result = plan([Command("echo", "echo", ["echo"])])
    (task,) = result.tasks
    assert task.args == ("echo",)
    assert task.deps == ()
    assert run_locally(result) == {"echo": "echo"}


def test_top_level_kwarg_string_is_a_reference() -> None:
    result = plan([Command("a", "echo", ["x"]), Command("b", "echo", [], kwargs={"x": "a"})])
    assert by_name(result)["b"].kwargs == {"x": DepRef(1)}
    assert run_locally(result) == {"b": "x"}


def test_nested_plain_strings_are_not_references() -> None:
    nested = ["a", ("a",), {"k": "a"}]
    result = plan([Command("a", "echo", ["x"]), Command("b", "echo", [nested])])
    tasks = by_name(result)
    assert tasks["b"].args[0] is nested
    assert tasks["b"].deps == ()
    assert sinks(result) == {"a", "b"}


def test_unrelated_strings_stay_strings() -> None:
    result = plan([Command("a", "echos", ["b", "c"])])
    assert result.tasks[0].args == ("b", "c")


def test_ref_at_top_level_and_nested_in_dict_list_tuple() -> None:
    result = plan(
        [
            Command("a", "echo", [1]),
            Command("b", "echo", [2]),
            Command(
                "c",
                "echo",
                [Ref("a"), {"key": [1, (Ref("b"), "z")], "keep": "a"}],
                kwargs={"deep": {"x": (Ref("a"),)}},
            ),
        ]
    )
    task = by_name(result)["c"]
    assert task.args == (DepRef(1), {"key": [1, (DepRef(2), "z")], "keep": "a"})
    assert type(task.args[1]["key"]) is list
    assert type(task.args[1]["key"][1]) is tuple
    assert task.kwargs == {"deep": {"x": (DepRef(1),)}}
    assert task.deps == (1, 2)
    assert sinks(result) == {"c"}


def test_ref_keeps_dict_keys_untouched() -> None:
    result = plan([Command("a", "echo", [1]), Command("b", "echo", [{Ref("a"): Ref("a")}])])
    assert by_name(result)["b"].args == ({Ref("a"): DepRef(1)},)


def test_rewritten_containers_are_copies_and_input_is_unchanged() -> None:
    argument = {"x": [Ref("a")]}
    result = plan([Command("a", "echo", [1]), Command("b", "echo", [argument])])
    assert argument == {"x": [Ref("a")]}
    assert by_name(result)["b"].args[0] is not argument


def test_ref_free_containers_are_the_same_object() -> None:
    big = list(range(10_000))
    mixed = {"rows": big, "meta": ("t", 1, None, 2.5)}
    result = plan([Command("a", "echo", [big, mixed], kwargs={"m": mixed})])
    task = result.tasks[0]
    assert task.args[0] is big
    assert task.args[1] is mixed
    assert task.kwargs["m"] is mixed


def test_unchanged_siblings_are_shared_when_one_branch_changes() -> None:
    untouched = [1, 2, 3]
    result = plan([Command("a", "echo", [1]), Command("b", "echo", [[untouched, Ref("a")]])])
    rebuilt = by_name(result)["b"].args[0]
    assert rebuilt == [untouched, DepRef(1)]
    assert rebuilt[0] is untouched


def test_container_subclasses_are_opaque_values() -> None:
    ordered = OrderedDict(x=Ref("a"))
    result = plan([Command("a", "echo", [1]), Command("b", "echo", [ordered])])
    assert by_name(result)["b"].args[0] is ordered
    assert by_name(result)["b"].deps == ()


def test_ref_to_unknown_command_is_a_plan_error_naming_the_user() -> None:
    with pytest.raises(PlanError, match="'missing'") as info:
        plan([Command("a", "echo", [[Ref("missing")]])])
    assert info.value.command == "a"


def test_ref_to_itself_is_a_cycle() -> None:
    with pytest.raises(PlanError, match="cycle") as info:
        plan([Command("a", "echo", [{"x": Ref("a")}])])
    assert info.value.command == "a"


def test_duplicate_reference_gives_one_dep() -> None:
    result = plan([Command("a", "echo", [1]), Command("b", "echos", ["a", Ref("a"), ["a"]])])
    task = by_name(result)["b"]
    assert task.args == (DepRef(1), DepRef(1), ["a"])
    assert task.deps == (1,)


# --- futures (external dependencies) -----------------------------------------------


class FakeFuture:
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id


def future_id(value: Any) -> int | None:
    return value.task_id if isinstance(value, FakeFuture) else None


def test_futures_become_external_deps_anywhere() -> None:
    result = plan(
        [
            Command("a", "echo", [FakeFuture(7)]),
            Command("b", "echos", ["a", [{"k": (FakeFuture(3),)}]], kwargs={"f": FakeFuture(7)}),
        ],
        first_task_id=10,
        futures=future_id,
    )
    tasks = by_name(result)
    assert tasks["a"].args == (DepRef(7),)
    assert tasks["a"].deps == (7,)
    assert tasks["b"].args == (DepRef(10), [{"k": (DepRef(3),)}])
    assert tasks["b"].kwargs == {"f": DepRef(7)}
    assert tasks["b"].deps == (3, 7, 10)
    assert sinks(result) == {"b"}


def test_futures_callback_is_not_asked_about_scalars() -> None:
    asked: list[Any] = []

    def spy(value: Any) -> int | None:
        asked.append(value)
        return None

    marker = object()
    plan([Command("a", "echo", [1, "s", None, 2.0, b"x", [marker]])], futures=spy)
    assert asked == [marker]


def test_future_from_the_same_request_is_refused() -> None:
    with pytest.raises(PlanError, match="same request") as info:
        plan([Command("a", "echo", [FakeFuture(1)])], first_task_id=1, futures=future_id)
    assert info.value.command == "a"


# --- validation ------------------------------------------------------------------


def test_empty_request_is_refused() -> None:
    with pytest.raises(PlanError, match="empty"):
        plan([])


def test_non_command_item_is_refused() -> None:
    with pytest.raises(PlanError, match=r"not an mpreg\.Command"):
        plan([("a", "echo", [], [])])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["", 3, None])
def test_name_must_be_a_non_empty_str(name: Any) -> None:
    with pytest.raises(PlanError, match="name must be a non-empty str"):
        plan([Command(name, "echo", [])])


@pytest.mark.parametrize("fun", ["", 3, None])
def test_fun_must_be_a_non_empty_str(fun: Any) -> None:
    with pytest.raises(PlanError, match="fun must be") as info:
        plan([Command("a", fun, [])])
    assert info.value.command == "a"


def test_bare_str_datasets_suggests_a_list() -> None:
    with pytest.raises(PlanError, match=r"use \['iris'\]") as info:
        plan([Command("a", "predict", [], "iris")])
    assert info.value.command == "a"


@pytest.mark.parametrize("datasets", [["iris", 3], [""], 5, {"iris": 1}])
def test_datasets_must_be_names(datasets: Any) -> None:
    with pytest.raises(PlanError, match="dataset") as info:
        plan([Command("a", "predict", [], datasets)])
    assert info.value.command == "a"


def test_datasets_become_a_frozenset() -> None:
    result = plan([Command("a", "predict", [], ("iris", "wine", "iris"))])
    assert result.tasks[0].datasets == frozenset({"iris", "wine"})


def test_bare_str_args_is_refused() -> None:
    with pytest.raises(PlanError, match=r"use \['hi'\]") as info:
        plan([Command("a", "echo", "hi")])
    assert info.value.command == "a"


def test_args_must_be_list_or_tuple() -> None:
    with pytest.raises(PlanError, match="args must be a list or tuple") as info:
        plan([Command("a", "echo", {1, 2})])  # type: ignore[arg-type]
    assert info.value.command == "a"


def test_kwargs_must_be_a_mapping_with_str_keys() -> None:
    with pytest.raises(PlanError, match="kwargs must be a dict") as info:
        plan([Command("a", "echo", [], kwargs=[("x", 1)])])  # type: ignore[arg-type]
    assert info.value.command == "a"
    with pytest.raises(PlanError, match="keys must be str") as info:
        plan([Command("b", "echo", [], kwargs={1: "x"})])  # type: ignore[dict-item]
    assert info.value.command == "b"


def test_duplicate_names_are_refused_naming_the_duplicate() -> None:
    with pytest.raises(PlanError, match="duplicate command name 'b'") as info:
        plan([Command("a", "echo", [1]), Command("b", "echo", [2]), Command("b", "echo", [3])])
    assert info.value.command == "b"


def test_two_cycle_names_both_commands() -> None:
    with pytest.raises(PlanError, match="cycle") as info:
        plan([Command("a", "echo", ["b"]), Command("b", "echo", ["a"])])
    assert "'a' -> 'b' -> 'a'" in str(info.value)
    assert info.value.command in {"a", "b"}


def test_three_cycle_names_the_commands_on_it_only() -> None:
    with pytest.raises(PlanError, match="cycle") as info:
        plan(
            [
                Command("ok", "echo", [1]),
                Command("x", "echo", ["z", "ok"]),
                Command("y", "echo", [Ref("x")]),
                Command("z", "echo", [{"v": Ref("y")}]),
                Command("after", "echo", ["x"]),
            ]
        )
    message = str(info.value)
    assert "'x' -> 'z' -> 'y' -> 'x'" in message
    assert "'ok'" not in message and "'after'" not in message
    assert info.value.command in {"x", "y", "z"}


def test_deeply_nested_argument_is_a_plan_error() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(PlanError, match="nested too deeply") as info:
        plan([Command("a", "echo", [looped])])
    assert info.value.command == "a"


# --- topological order -----------------------------------------------------------


def test_tasks_are_topological_and_keep_user_order_where_possible() -> None:
    result = plan(
        [
            Command("d", "echos", ["c", "b"]),
            Command("a", "echo", [1]),
            Command("c", "echo", ["a"]),
            Command("b", "echo", [2]),
            Command("e", "echo", [3]),
        ]
    )
    order = [task.name for task in result.tasks]
    assert order == ["a", "c", "b", "d", "e"]
    seen: set[int] = set()
    for task in result.tasks:
        assert set(task.deps) <= seen
        seen.add(task.task_id)


def test_independent_commands_keep_given_order() -> None:
    result = plan([Command(name, "echo", [name]) for name in "qwerty"])
    assert [task.name for task in result.tasks] == list("qwerty")
    assert sinks(result) == set("qwerty")


# --- resolve_refs ------------------------------------------------------------------


def test_resolve_refs_replaces_dep_refs_at_any_depth() -> None:
    value = (DepRef(1), [DepRef(2), {"k": (DepRef(1),), "s": "text"}], "plain")
    resolved = resolve_refs(value, {1: "one", 2: [2]})
    assert resolved == ("one", [[2], {"k": ("one",), "s": "text"}], "plain")
    assert type(resolved) is tuple
    assert type(resolved[1]) is list
    assert resolve_refs(DepRef(2), {2: "top"}) == "top"


def test_resolve_refs_returns_ref_free_containers_unchanged() -> None:
    inner = {"rows": list(range(1000))}
    value = ([inner, (1, "x")], {"k": inner})
    assert resolve_refs(value, {}) is value
    resolved = resolve_refs([inner, DepRef(5)], {5: 5})
    assert resolved[0] is inner


def test_resolve_refs_missing_result_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        resolve_refs([DepRef(9)], {})
