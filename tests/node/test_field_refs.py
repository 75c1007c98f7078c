"""Field references across two real nodes: the field is taken out where the result is.

Node A serves the functions with dataset ``near``, node B with ``far``; the
client talks to A. A command pinned to ``far`` runs on B, so its result is
made on B and a consumer pinned to ``near`` runs on A.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpreg import Client, Command, FieldError, Ref
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

FUNCTIONS = (
    "field_support:produce",
    "field_support:take",
    "field_support:size",
    "field_support:pair",
    "field_support:produce_later",
)
BULK = 50 * 1024 * 1024


@pytest.fixture
async def two_nodes() -> AsyncIterator[LocalCluster]:
    async with run_cluster(
        node("A", resources=("near",), functions=FUNCTIONS),
        node("B", resources=("far",), functions=FUNCTIONS),
    ) as cluster:
        yield cluster


async def _run(cluster: LocalCluster, *commands: Command) -> dict[str, object]:
    async with Client(cluster.address, token=cluster.token) as client:
        return await client.request(list(commands), timeout=30)


def _io(pid: int) -> int:
    """Bytes a process read and wrote through system calls (sockets included), so far."""
    counters = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(counters["rchar"]) + int(counters["wchar"])


async def test_nested_paths_indexes_objects_and_kwargs_resolve_across_nodes(
    two_nodes: LocalCluster,
) -> None:
    result = await _run(
        two_nodes,
        Command("src", "produce", [], ["far"]),
        Command(
            "use",
            "take",
            [
                "src.label",
                "src.rows.1.label",
                "src.reading.rows.0.label",
                {"inside": Ref("src", "rows", 0, "label"), "list": [Ref("src", "pair")]},
                "src.rows.1.tags",
                "src",  # the whole result as well
            ],
            ["near"],
            {"kw": "src.rows.0", "deep": "src.reading.label"},
        ),
    )
    use = result["use"]
    assert isinstance(use, dict)
    args = use["args"]
    assert args[:3] == ["small", "r1", "deep"]
    assert args[3] == {"inside": "r0", "list": [(1, 2)]}
    assert args[4] == ("a", "b")
    assert args[5]["label"] == "small"
    assert use["types"][4] == "tuple"  # a tuple from another node is still a tuple
    assert use["kwargs"] == {"kw": {"label": "r0"}, "deep": "obj"}
    assert use["pid"] != args[5]["pid"]  # it really crossed nodes


async def test_fields_of_a_coroutine_functions_result_resolve_too(two_nodes: LocalCluster) -> None:
    result = await _run(
        two_nodes,
        Command("src", "produce_later", [], ["far"]),
        Command("use", "take", ["src.rows.1.tags", Ref("src", "reading", "label")], ["near"]),
    )
    assert result["use"]["args"] == [("a", "b"), "obj"]  # type: ignore[index]


async def test_a_missing_path_fails_the_consumer_with_a_field_error(
    two_nodes: LocalCluster,
) -> None:
    with pytest.raises(FieldError) as caught:
        await _run(
            two_nodes,
            Command("src", "produce", [], ["far"]),
            Command("use", "take", ["src.rows.5.label"], ["near"]),
        )
    error = caught.value
    assert error.command == "use"
    assert error.reference == "src.rows.5.label"
    text = str(error)
    assert "command 'use'" in text and "'src.rows.5.label'" in text
    assert "no field '5' at 'rows'" in text and "list of length 2" in text
    with pytest.raises(FieldError, match=r"no field 'nope' \(stopped at dict with keys \['bulk'"):
        await _run(
            two_nodes,
            Command("src", "produce", [], ["far"]),
            Command("use", "take", [], ["near"], {"x": Ref("src", "nope")}),
        )


async def test_a_command_named_with_a_dot_is_referenced_by_its_full_name(
    two_nodes: LocalCluster,
) -> None:
    result = await _run(
        two_nodes,
        Command("a", "produce", [], ["near"]),
        Command("a.label", "take", ["exact"], ["far"]),
        Command("use", "take", ["a.label", "a.pair"], ["near"]),
    )
    use = result["use"]
    assert isinstance(use, dict)
    assert use["args"][0]["args"] == ["exact"]  # the command "a.label", not a's field
    assert use["args"][1] == (1, 2)


async def test_only_the_field_of_a_50_mb_result_travels_between_nodes(
    two_nodes: LocalCluster,
) -> None:
    pids = [n.pid for n in two_nodes.nodes]
    async with Client(two_nodes.address, token=two_nodes.token) as client:
        await client.request([Command("warm", "take", [], ["far"])], timeout=30)
        before = sum(_io(pid) for pid in pids)
        field = await client.request(
            [
                Command("big", "produce", [BULK], ["far"]),
                Command("use", "take", ["big.label"], ["near"]),
            ],
            timeout=60,
        )
        moved_field = sum(_io(pid) for pid in pids) - before
        before = sum(_io(pid) for pid in pids)
        whole = await client.request(
            [
                Command("big", "produce", [BULK], ["far"]),
                Command("use", "size", ["big"], ["near"]),
            ],
            timeout=60,
        )
        moved_whole = sum(_io(pid) for pid in pids) - before
    assert field["use"]["args"] == ["small"]  # type: ignore[index]
    assert whole["use"] == 6  # the dict's length: the whole result did arrive
    # Everything both node processes read and wrote, worker links included.
    assert moved_field < BULK // 50, f"{moved_field:,} bytes moved for one small field"
    assert moved_whole > BULK, f"only {moved_whole:,} bytes for the whole result"


async def test_a_tuple_stays_a_tuple_whether_its_command_ran_here_or_on_another_node(
    two_nodes: LocalCluster,
) -> None:
    result = await _run(
        two_nodes,
        Command("here", "pair", [], ["near"]),
        Command("there", "pair", [], ["far"]),
        Command("use", "take", ["here", "there", Ref("there"), {"in": Ref("here")}], ["near"]),
        Command("sink_here", "pair", [], ["near"]),
        Command("sink_there", "pair", [], ["far"]),
    )
    use = result["use"]
    assert isinstance(use, dict)
    assert use["args"] == [(1, 2), (1, 2), (1, 2), {"in": (1, 2)}]
    assert result["sink_here"] == result["sink_there"] == (1, 2)
    assert type(result["sink_there"]) is tuple
