"""Tests for mpreg.node.routing: matching by (function, datasets), load balancing, check()."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import pytest

from mpreg.commands import Command
from mpreg.driver.planner import plan_request
from mpreg.errors import NoRouteError, UnknownFunctionError
from mpreg.node.routing import RoutingTable
from mpreg.protocol.messages import Endpoint, EndpointKind, ErrorInfo


def endpoint(
    endpoint_id: str,
    functions: Iterable[str],
    datasets: Iterable[str] = (),
    *,
    node: str = "nodeA",
    kind: EndpointKind = "actor",
) -> Endpoint:
    return Endpoint(endpoint_id, node, kind, frozenset(functions), frozenset(datasets))


def table(*endpoints: Endpoint, seed: int = 0) -> RoutingTable:
    routes = RoutingTable(random.Random(seed))
    for each in endpoints:
        routes.add(each)
    return routes


IRIS = frozenset({"iris"})


def test_routing_skips_actor_missing_a_dataset() -> None:
    routes = table(
        endpoint("a/iris", {"predict"}, {"iris"}),
        endpoint("a/both", {"predict"}, {"iris", "wine"}),
    )
    assert [ep.endpoint_id for ep in routes.candidates("predict", frozenset({"iris", "wine"}))] == [
        "a/both"
    ]
    assert routes.choose("predict", frozenset({"iris", "wine"})) == routes.get("a/both")


def test_routing_accepts_superset_of_requested_datasets() -> None:
    routes = table(endpoint("a/1", {"predict"}, {"iris", "wine", "mnist"}))
    assert routes.choose("predict", IRIS) is not None
    assert routes.choose("predict", frozenset({"iris", "mnist"})) is not None


def test_routing_with_no_datasets_accepts_any_endpoint_offering_fun() -> None:
    routes = table(
        endpoint("a/worker", {"echo"}, kind="worker"),
        endpoint("a/iris", {"echo", "predict"}, {"iris"}),
        endpoint("a/other", {"other"}),
    )
    ids = {ep.endpoint_id for ep in routes.candidates("echo", frozenset())}
    assert ids == {"a/worker", "a/iris"}


def test_routing_ignores_endpoints_without_the_function() -> None:
    routes = table(endpoint("a/iris", {"train"}, {"iris"}))
    assert routes.candidates("predict", IRIS) == []
    assert routes.choose("predict", IRIS) is None
    assert not routes.offers("predict")
    assert routes.offers("train")


def test_choose_skips_excluded_endpoints() -> None:
    routes = table(endpoint("a/1", {"f"}), endpoint("a/2", {"f"}))
    for _ in range(20):
        chosen = routes.choose("f", frozenset(), exclude=frozenset({"a/1"}))
        assert chosen is not None and chosen.endpoint_id == "a/2"
    assert routes.choose("f", frozenset(), exclude=frozenset({"a/1", "a/2"})) is None


def test_choose_prefers_least_outstanding_calls() -> None:
    routes = table(endpoint("a/1", {"f"}), endpoint("a/2", {"f"}), endpoint("b/3", {"f"}))
    routes.begin("a/1")
    routes.begin("a/1")
    routes.begin("b/3")
    chosen = routes.choose("f", frozenset())
    assert chosen is not None and chosen.endpoint_id == "a/2"
    routes.begin("a/2")
    routes.begin("a/2")
    chosen = routes.choose("f", frozenset())
    assert chosen is not None and chosen.endpoint_id == "b/3"


def test_choose_balances_when_each_call_is_counted() -> None:
    routes = table(*(endpoint(f"n/{i}", {"f"}) for i in range(4)))
    for _ in range(40):
        chosen = routes.choose("f", frozenset())
        assert chosen is not None
        routes.begin(chosen.endpoint_id)
    assert [routes.outstanding(f"n/{i}") for i in range(4)] == [10, 10, 10, 10]


def test_choose_breaks_ties_at_random_across_all_replicas() -> None:
    routes = table(*(endpoint(f"n/{i}", {"f"}) for i in range(3)), seed=1234)
    picks: Counter[str] = Counter()
    for _ in range(3000):
        chosen = routes.choose("f", frozenset())
        assert chosen is not None
        picks[chosen.endpoint_id] += 1
    assert set(picks) == {"n/0", "n/1", "n/2"}
    assert all(800 < count < 1200 for count in picks.values())


def test_a_tie_goes_to_the_node_holding_the_calls_big_argument() -> None:
    routes = table(endpoint("a/1", {"f"}, node="A"), endpoint("b/1", {"f"}, node="B"), seed=7)
    for _ in range(50):
        chosen = routes.choose("f", frozenset(), near="B")
        assert chosen is not None and chosen.endpoint_id == "b/1"
    routes.begin("b/1")  # but not at any load: the less busy replica still wins
    chosen = routes.choose("f", frozenset(), near="B")
    assert chosen is not None and chosen.endpoint_id == "a/1"
    unknown = {routes.choose("f", frozenset(), near="Z").endpoint_id for _ in range(50)}  # type: ignore[union-attr]
    assert unknown == {"a/1"}


def test_choose_is_reproducible_with_a_seeded_rng() -> None:
    def picks(seed: int) -> list[str]:
        routes = table(*(endpoint(f"n/{i}", {"f"}) for i in range(5)), seed=seed)
        chosen = [routes.choose("f", frozenset()) for _ in range(50)]
        return [each.endpoint_id for each in chosen if each is not None]

    assert picks(7) == picks(7)


def test_outstanding_never_goes_below_zero() -> None:
    routes = table(endpoint("a/1", {"f"}))
    routes.begin("a/1")
    routes.end("a/1")
    routes.end("a/1")
    assert routes.outstanding("a/1") == 0


def test_begin_and_end_on_unknown_endpoint_are_ignored() -> None:
    routes = table()
    routes.begin("ghost")
    routes.end("ghost")
    assert routes.outstanding("ghost") == 0


def test_add_replaces_endpoint_with_same_id_and_keeps_its_load() -> None:
    routes = table(endpoint("a/1", {"old"}, {"iris"}))
    routes.begin("a/1")
    routes.add(endpoint("a/1", {"new"}, {"wine"}))
    assert not routes.offers("old")
    assert routes.candidates("new", frozenset({"wine"})) == [routes.get("a/1")]
    assert routes.outstanding("a/1") == 1
    assert len(routes.endpoints()) == 1


def test_remove_drops_endpoint_and_its_functions() -> None:
    routes = table(endpoint("a/1", {"f", "g"}), endpoint("a/2", {"f"}))
    routes.begin("a/1")
    routes.remove("a/1")
    assert routes.get("a/1") is None
    assert routes.outstanding("a/1") == 0
    assert not routes.offers("g")
    assert [ep.endpoint_id for ep in routes.candidates("f", frozenset())] == ["a/2"]
    routes.remove("a/1")  # absent: no error
    routes.remove("never-there")


def test_remove_node_drops_every_endpoint_of_that_node() -> None:
    routes = table(
        endpoint("a/1", {"f"}, node="a"),
        endpoint("b/1", {"f"}, node="b"),
        endpoint("a/2", {"g"}, node="a"),
    )
    assert routes.remove_node("a") == ["a/1", "a/2"]
    assert [ep.endpoint_id for ep in routes.endpoints()] == ["b/1"]
    assert not routes.offers("g")
    assert routes.remove_node("a") == []


def test_check_passes_when_every_task_has_a_route() -> None:
    routes = table(endpoint("a/w", {"echo", "echos"}, kind="worker"))
    routes.check(
        plan_request(
            [Command("|first", "echo", ["hi"]), Command("|second", "echos", ["|first"])],
            first_task_id=1,
        ).tasks
    )


def test_check_unknown_function_names_command_and_function() -> None:
    routes = table(endpoint("a/w", {"echo"}, kind="worker"))
    plan = plan_request(
        [Command("|ok", "echo", ["x"]), Command("|a", "nope", ["|ok"])], first_task_id=1
    )
    with pytest.raises(UnknownFunctionError) as info:
        routes.check(plan.tasks)
    assert str(info.value) == "command '|a': no process in the cluster serves function 'nope'"
    assert info.value.command == "|a"
    assert info.value.fun == "nope"


def test_check_missing_dataset_lists_what_is_offered() -> None:
    routes = table(
        endpoint("a/1", {"predict"}, {"iris"}),
        endpoint("b/1", {"predict"}, {"iris"}, node="b"),
        endpoint("a/2", {"predict"}, {"wine"}),
    )
    plan = plan_request([Command("p", "predict", [[1, 2]], ["iris", "mnist"])], first_task_id=1)
    with pytest.raises(NoRouteError) as info:
        routes.check(plan.tasks)
    error = info.value
    assert not isinstance(error, UnknownFunctionError)
    assert error.command == "p"
    assert error.fun == "predict"
    assert error.datasets == ("iris", "mnist")
    message = str(error)
    assert "'p'" in message and "'predict'" in message and "['iris', 'mnist']" in message
    assert "['iris'] (x2)" in message and "['wine']" in message


def test_check_reports_first_unroutable_task_in_plan_order() -> None:
    routes = table(endpoint("a/w", {"echo"}))
    plan = plan_request(
        [Command("b", "missing_b", ["a"]), Command("a", "missing_a", [1])], first_task_id=1
    )
    with pytest.raises(UnknownFunctionError) as info:
        routes.check(plan.tasks)
    assert info.value.command == "a"


# --- suspended endpoints (restarting replicas) ----------------------------------------

CRASH = ErrorInfo(kind="user", message="dataset file missing", exc_type="RuntimeError")


def test_a_suspended_endpoint_is_known_but_never_chosen() -> None:
    routes = table(endpoint("a/1", {"predict"}, {"iris"}), endpoint("a/2", {"predict"}, {"iris"}))
    assert routes.suspend("a/1")
    assert not routes.suspend("a/1")  # already suspended
    for _ in range(20):
        chosen = routes.choose("predict", IRIS)
        assert chosen is not None and chosen.endpoint_id == "a/2"
    routes.suspend("a/2")
    assert routes.choose("predict", IRIS) is None
    routes.check(
        plan_request([Command("p", "predict", [], ["iris"])], first_task_id=1).tasks
    )  # still routable
    assert routes.resume("a/1") and not routes.resume("a/1")
    assert routes.choose("predict", IRIS) == routes.get("a/1")


def test_adding_an_endpoint_again_resumes_it_and_removing_forgets_it() -> None:
    routes = table(endpoint("a/1", {"f"}))
    routes.suspend("a/1")
    routes.add(endpoint("a/1", {"f"}))
    assert not routes.is_suspended("a/1") and routes.choose("f", frozenset()) is not None
    routes.suspend("a/1")
    routes.remove("a/1")
    assert not routes.is_suspended("a/1")
    assert not routes.suspend("a/1")  # unknown ids are ignored
    with pytest.raises(UnknownFunctionError):
        routes.check(plan_request([Command("x", "f", [])], first_task_id=1).tasks)


def test_suspended_ids_are_listed_per_node() -> None:
    routes = table(endpoint("a/1", {"f"}), endpoint("b/1", {"f"}, node="nodeB"))
    routes.suspend("a/1")
    routes.suspend("b/1")
    assert routes.suspended("nodeA") == ["a/1"]
    assert routes.suspended("nodeB") == ["b/1"]


def test_crash_is_given_only_when_every_match_is_crash_looping() -> None:
    routes = table(endpoint("a/1", {"f"}, {"iris"}), endpoint("a/2", {"f"}, {"iris"}))
    assert routes.crash("f", IRIS) is None  # both live
    routes.suspend("a/1", CRASH)
    assert routes.crash("f", IRIS) is None  # a/2 serves
    routes.suspend("a/2")
    assert routes.crash("f", IRIS) is None  # a/2 is only restarting: wait for it
    routes.suspend("a/2", CRASH)  # suspending again updates the reason
    assert routes.crash("f", IRIS) == CRASH
    assert routes.crash("g", IRIS) is None  # nothing matches at all


def test_routing_prefers_a_running_worker_over_a_cold_one_at_equal_load() -> None:
    routes = table(endpoint("w1", ["f"], kind="worker"), endpoint("w2", ["f"], kind="worker"))
    routes.set_cold("w1", True)
    assert {routes.choose("f", frozenset()).endpoint_id for _ in range(50)} == {"w2"}  # type: ignore[union-attr]
    routes.begin("w2")  # busier: the cold one is chosen (and will be started)
    assert routes.choose("f", frozenset()).endpoint_id == "w1"  # type: ignore[union-attr]
    routes.remove("w1")
    assert not routes.is_cold("w1")
