"""Field references in the planner: which strings are fields, and what each task is told."""

from __future__ import annotations

import pytest

from mpreg import Command, PlanError, Ref
from mpreg.driver.planner import PlannedTask, plan_request
from mpreg.driver.requests import task_spec
from mpreg.protocol.codec import loads_value
from mpreg.protocol.refs import DepRef


def _plan(*commands: Command) -> dict[str, PlannedTask]:
    return {task.name: task for task in plan_request(commands, first_task_id=1).tasks}


def test_the_issue_example_reads_fields_of_s1() -> None:
    tasks = _plan(
        Command("s1", "first_step", ["x"], []),
        Command("s3", "third_step", ["s1.result", "s1.number"], []),
    )
    s1, s3 = tasks["s1"], tasks["s3"]
    assert s3.args == (DepRef(1, ("result",), -1), DepRef(1, ("number",), -2))
    assert s3.deps == (1,)
    assert s3.uses == ((1, 0), (1, 1))
    assert s1.fields == (("result",), ("number",))
    assert not s1.whole and not s1.want_result  # only fields of it are used
    assert s3.want_result


def test_exact_names_win_then_the_longest_command_prefix() -> None:
    tasks = _plan(
        Command("a", "f"),
        Command("a.b", "f"),
        Command("use", "f", ["a.b", "a.b.c", "a.c", "a.b.", "zz.top"]),
    )
    args = tasks["use"].args
    assert args[0] == DepRef(2)  # the command named "a.b"
    assert args[1] == DepRef(2, ("c",), -1)  # a field of "a.b", not a.b.c of "a"
    assert args[2] == DepRef(1, ("c",), -2)
    assert args[3:] == ("a.b.", "zz.top")  # an empty step or no such command: a string
    assert tasks["a.b"].whole and tasks["a.b"].fields == (("c",),)


def test_own_name_nested_strings_and_plain_values_stay_strings() -> None:
    tasks = _plan(
        Command("s", "f", ["s.x"]),
        Command("t", "f", [["s.x"], {"k": "s.x"}, "3.5"], kwargs={"own": "t.y"}),
    )
    assert tasks["s"].args == ("s.x",)
    assert tasks["t"].args == (["s.x"], {"k": "s.x"}, "3.5")
    assert tasks["t"].kwargs == {"own": "t.y"}
    assert tasks["t"].deps == ()


def test_ref_paths_nest_anywhere_and_keyword_values_read_fields() -> None:
    tasks = _plan(
        Command("rows", "f"),
        Command(
            "use",
            "f",
            [{"first": Ref("rows", 0, "label"), "all": [Ref("rows")]}],
            kwargs={"n": "rows.count", "again": Ref("rows", 0, "label")},
        ),
    )
    use = tasks["use"]
    field = DepRef(1, (0, "label"), -1)
    assert use.args == ({"first": field, "all": [DepRef(1)]},)
    assert use.kwargs == {"n": DepRef(1, ("count",), -2), "again": field}
    assert use.uses == ((1, 0), (1, 1), (1, -1))  # the same field once; the whole too
    assert tasks["rows"].fields == ((0, "label"), ("count",))
    assert tasks["rows"].whole


def test_a_sink_whose_fields_are_used_is_still_returned_whole() -> None:
    tasks = _plan(Command("s", "f"), Command("t", "f", ["s.x"]))
    assert not tasks["s"].whole
    tasks = plan_request(
        [Command("s", "f"), Command("t", "f", ["s.x"])], first_task_id=1, return_all=True
    ).tasks
    assert tasks[0].whole and tasks[0].want_result


def test_ref_paths_are_checked_like_plain_refs() -> None:
    with pytest.raises(TypeError, match="str or int"):
        Ref("s", 1.5)  # type: ignore[arg-type]
    with pytest.raises(PlanError, match="names no command"):
        _plan(Command("s", "f", [Ref("nope", "x")]))
    with pytest.raises(PlanError, match="refers to its own result"):
        _plan(Command("s", "f", [Ref("s", "x")]))
    with pytest.raises(PlanError, match="cycle"):
        _plan(Command("a", "f", ["b.x"]), Command("b", "f", ["a.y"]))


def test_the_paths_travel_with_the_producers_arguments() -> None:
    tasks = _plan(Command("s", "f", [1]), Command("t", "f", ["s.x"]))
    spec = task_spec(tasks["s"], 3, keep=False)
    assert loads_value(spec.args) == ((1,), {}, (("x",),), False)
    assert spec.fields == 1
    kept = task_spec(tasks["s"], 3, keep=True)
    assert loads_value(kept.args)[3] is True  # a kept result stays whole on the node
    plain = task_spec(tasks["t"], 3, keep=False)
    assert plain.uses == ((1, 0),) and plain.fields == 0
    assert len(loads_value(plain.args)) == 2
