"""The ``mpreg top`` keys, sort and filter, sparklines and replica numbers: pure, no terminal."""

from __future__ import annotations

import io
from functools import reduce

from rich.console import Console
from test_widths import recorded, table_rows

from mpreg.dashboard import History, ViewState, press, render_top, sparkline, visible
from mpreg.dashboard.keys import split_keys
from mpreg.dashboard.view import SORTS


def typed(keys: str, state: ViewState | None = None) -> ViewState:
    return reduce(press, keys, state or ViewState())


def draw(state: ViewState, width: int = 200) -> str:
    snapshot, history = recorded()
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(render_top(snapshot, state, history))
    return console.export_text()


def names(text: str) -> list[str]:
    return [row[0] for row in table_rows(text, "Actors and workers")]


def test_q_quits_and_other_keys_do_not() -> None:
    assert typed("q").quit
    assert not typed("sx?").quit
    assert typed("fq").prompt == "q"  # typed into the filter, not a quit


def test_s_cycles_through_every_sort_column_and_back() -> None:
    titles = [typed("s" * n).sort_title for n in range(len(SORTS) + 1)]
    assert titles == [*[title for title, _ in SORTS], "name"]
    assert typed("S").sort_title == SORTS[-1][0]


def test_f_types_a_filter_enter_applies_it_and_escape_clears_it() -> None:
    state = typed("fsydx\x7f")
    assert (state.prompt, state.filter) == ("syd", "")
    state = press(state, "\r")
    assert (state.prompt, state.filter) == (None, "syd")
    assert typed("f", state).prompt == "syd"  # editing starts from the filter in use
    assert press(typed("f", state), "\x1b").filter == ""
    assert typed("f\x1b[A\r").filter == ""  # an arrow key types nothing


def test_question_mark_toggles_the_keys() -> None:
    assert typed("?").help
    assert not typed("??").help
    assert "filter actors by name or dataset" in draw(typed("?"))


def test_the_filter_matches_names_and_datasets() -> None:
    snapshot, _ = recorded()
    assert {e.label for e in visible(snapshot.endpoints, typed("fSYD\r"))} == {"Sydney"}
    assert {e.label for e in visible(snapshot.endpoints, typed("fasia\r"))} == {
        "WeatherForecastModel"
    }
    # While typing, the rows already follow the prompt.
    assert {e.label for e in visible(snapshot.endpoints, typed("fcai"))} == {"Cairo"}


def test_sorting_and_filtering_change_the_drawn_view() -> None:
    assert names(draw(ViewState())) == [
        "Cairo",
        "Sydney",
        "Sydney",
        "WeatherForecastModel",
        "(functions)",
    ]
    by_rate = draw(typed("s"))
    assert "sorted by calls/s" in by_rate
    assert names(by_rate)[:2] == ["Cairo", "WeatherForecastModel"]
    assert names(draw(typed("sss")))[0] == "Cairo"  # errors: 37
    filtered = draw(typed("fsyd\r"))
    assert names(filtered) == ["Sydney", "Sydney"]
    assert "filter: syd" in filtered
    assert "filter: ca▏" in draw(typed("fca"))


def test_replicas_are_numbered_per_actor_and_node_not_by_endpoint_index() -> None:
    snapshot, _ = recorded()
    numbers = {(e.label, e.pid): (e.replica, e.replicas) for e in snapshot.endpoints}
    assert numbers[("Cairo", 4006)] == (1, 1)  # endpoint "Cairo-6"
    assert numbers[("Sydney", 5002)] == (1, 2)
    assert numbers[("Sydney", 5003)] == (2, 2)
    assert "#6" not in draw(ViewState(), 60)


def test_errors_per_second_make_the_error_rate() -> None:
    snapshot, _ = recorded()
    assert [e.errors_per_s for e in snapshot.endpoints] == [0.0] * 5
    assert "errors: 0.0%" in " ".join(draw(ViewState()).split())


def test_sparklines_scale_to_their_largest_value() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 2, 4, 8]) == "▁▂▄█"
    assert len(sparkline(range(100), width=12)) == 12


def test_history_keeps_the_last_figures_and_skips_failed_samples() -> None:
    snapshot, _ = recorded()
    history = History(size=3)
    for _ in range(5):
        history.add(snapshot)
    assert list(history.total) == [370.0] * 3
    assert list(history.nodes["head-1a2b3c"]) == [310.0] * 3


def test_an_escape_sequence_is_one_key() -> None:
    assert split_keys("\x1b[A") == ["\x1b[A"]
    assert split_keys("\x1b") == ["\x1b"]
    assert split_keys("sq") == ["s", "q"]
    assert split_keys("\x1b?") == ["\x1b", "?"]  # Esc, then ?, in one read
    assert split_keys("\x1bOAq\x1b[1;5Cf") == ["\x1bOA", "q", "\x1b[1;5C", "f"]
