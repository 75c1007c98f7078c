"""Field paths and result bundles: what a worker takes out and what a node splits."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.refs import (
    DepRef,
    FieldMiss,
    FieldMissing,
    extract,
    pack_bundle,
    resolve_refs,
    unpack_bundle,
)


@dataclass
class Point:
    x: int
    keys: str = "attribute"


def test_steps_are_keys_then_attributes_then_indexes() -> None:
    value = {"rows": [{"label": "r0"}, Point(3)], "keys": "key", 0: "int key", "t": (5, 6)}
    assert extract(value, ("rows", "0", "label")) == "r0"
    assert extract(value, ("rows", 1, "x")) == 3
    assert extract(value, ("rows", "-1", "keys")) == "attribute"
    assert extract(value, ("keys",)) == "key"  # a dict key before the dict's attribute
    assert extract(value, ("0",)) == "int key"  # a digit step also finds an int key
    assert extract(value, ("t", 1)) == 6
    assert extract(value, ()) is value


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("nope",), "has no field 'nope' (stopped at dict with keys ['rows', 'n'])"),
        (("rows", "2"), "has no field '2' at 'rows' (stopped at list of length 1)"),
        (("rows", "0", "y"), "has no field 'y' at 'rows.0' (stopped at Point)"),
        (("n", "real", "z"), "has no field 'z' at 'n.real' (stopped at int)"),
    ],
)
def test_a_missing_step_names_itself_the_path_before_it_and_the_type(
    path: tuple[str, ...], text: str
) -> None:
    with pytest.raises(FieldMissing) as caught:
        extract({"rows": [Point(1)], "n": 4}, path)
    assert str(caught.value) == text


def test_a_bundle_splits_back_into_its_members_without_unpickling() -> None:
    whole, field = dumps_value({"a": b"x" * 100}), dumps_value("small")
    miss = FieldMiss("s.nope", "'s' result has no field 'nope'")
    got_whole, fields = unpack_bundle(pack_bundle(whole, [field, miss]))
    assert got_whole is not None and loads_value(got_whole) == {"a": b"x" * 100}
    assert loads_value(fields[0]) == "small"  # type: ignore[arg-type]
    assert fields[1] == miss
    without, only = unpack_bundle(pack_bundle(None, [field]))
    assert without is None and loads_value(only[0]) == "small"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "parts",
    [[b"not json"], [b'{"whole": 2, "fields": []}', b"one"], [b'{"whole": null}'], []],
)
def test_anything_else_is_not_a_bundle(parts: list[bytes]) -> None:
    with pytest.raises(ValueError, match="not a result bundle"):
        unpack_bundle(Blob(parts))


def test_a_field_placeholder_is_found_under_its_key() -> None:
    args = [DepRef(1), {"f": DepRef(1, ("a",), -1)}]
    assert resolve_refs(args, {1: "whole", -1: "field"}) == ["whole", {"f": "field"}]
