"""Every example of the seed README, verbatim, with the exact result it shows."""

from __future__ import annotations

import pytest

from mpreg import Client, Command

pytestmark = pytest.mark.cluster

SEED_EXAMPLES = [
    (
        [Command("first", "echo", ["hi there!"], [])],
        {"first": "hi there!"},
    ),
    (
        [Command("first", "echo", ["hi there!"], []), Command("second", "echo", ["first"], [])],
        {"second": "hi there!"},
    ),
    (
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "AND ME TOO"], []),
        ],
        {"|second": "hi there!", "|third": ["hi there!", "AND ME TOO"]},
    ),
    (
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
        ],
        {"|third": ["hi there!", "hi there!", "AND ME TOO"]},
    ),
    (
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
            Command("|4th", "echo", ["|third"], []),
        ],
        {"|4th": ["hi there!", "hi there!", "AND ME TOO"]},
    ),
]


@pytest.mark.parametrize(
    ("commands", "expected"),
    SEED_EXAMPLES,
    ids=["call", "use-previous", "named", "3-returns-1", "4-returns-1"],
)
async def test_seed_example_returns_exactly_what_the_readme_shows(
    client: Client, commands: list[Command], expected: dict[str, object]
) -> None:
    assert await client.request(commands) == expected


async def test_return_all_returns_every_command(client: Client) -> None:
    commands, _ = SEED_EXAMPLES[2]
    assert await client.request(commands, return_all=True) == {
        "|first": "hi there!",
        "|second": "hi there!",
        "|third": ["hi there!", "AND ME TOO"],
    }


async def test_keyword_values_and_nested_refs_are_resolved(client: Client) -> None:
    from mpreg import Ref

    result = await client.request(
        [
            Command("x", "add", [1, 2]),
            Command("y", "add", [], kwargs={"a": "x", "b": 10}),
            Command("z", "echo", [{"nested": [Ref("x"), (Ref("y"), "y")]}]),
        ]
    )
    assert result == {"z": {"nested": [3, (13, "y")]}}
