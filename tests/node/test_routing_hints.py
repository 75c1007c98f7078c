"""check() suggests the name a misspelt function or dataset probably meant."""

from __future__ import annotations

import random

import pytest

from mpreg.commands import Command
from mpreg.driver.planner import plan_request
from mpreg.errors import NoRouteError, UnknownFunctionError
from mpreg.node.routing import RoutingTable
from mpreg.protocol.messages import Endpoint


def routes() -> RoutingTable:
    table = RoutingTable(random.Random(0))
    table.add(Endpoint("a/1", "a", "actor", frozenset({"predict", "score"}), frozenset({"iris"})))
    table.add(Endpoint("a/2", "a", "actor", frozenset({"predict"}), frozenset({"wine"})))
    table.add(Endpoint("a/w", "a", "worker", frozenset({"echo", "echos"}), frozenset()))
    return table


def check(fun: str, datasets: list[str]) -> str:
    plan = plan_request([Command("c", fun, [1], datasets)], first_task_id=1)
    with pytest.raises(NoRouteError) as info:
        routes().check(plan.tasks)
    return str(info.value)


def test_a_misspelt_function_gets_a_did_you_mean() -> None:
    plan = plan_request([Command("c", "predcit", [1], [])], first_task_id=1)
    with pytest.raises(UnknownFunctionError) as info:
        routes().check(plan.tasks)
    assert str(info.value) == (
        "command 'c': no process in the cluster serves function 'predcit' (did you mean 'predict'?)"
    )


def test_a_name_like_nothing_served_gets_no_guess() -> None:
    assert "did you mean" not in check("train_everything", [])


def test_a_misspelt_dataset_gets_a_did_you_mean() -> None:
    message = check("predict", ["irsi"])
    assert message.endswith("no process anywhere has dataset 'irsi' (did you mean 'iris'?)")


def test_a_known_dataset_the_function_lacks_gets_no_guess() -> None:
    message = check("score", ["wine"])  # wine exists; score is just not served with it
    assert "did you mean" not in message and "no process anywhere" not in message
