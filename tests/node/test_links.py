"""The link table: the newest open link carries messages; losing one of two loses nothing."""

from __future__ import annotations

from mpreg.node.links import LinkTable


def test_a_link_is_found_by_node_and_the_node_by_link() -> None:
    table: LinkTable[str] = LinkTable("me")
    table.opened("b", "link-b")
    assert table.link_for("b") == "link-b"
    assert table.node_of("link-b") == "b"
    assert table.linked() == ["b"] and len(table) == 1


def test_two_links_to_one_node_the_newest_carries_and_one_closing_keeps_the_other() -> None:
    table: LinkTable[str] = LinkTable("me")
    table.opened("b", "old")
    table.opened("b", "new")
    assert table.link_for("b") == "new"
    assert table.closed("new") is None  # "old" still reaches b
    assert table.link_for("b") == "old"
    assert table.closed("old") == "b"  # now b has no link
    assert table.link_for("b") is None and table.linked() == []


def test_closing_an_unknown_link_is_ignored() -> None:
    table: LinkTable[str] = LinkTable("me")
    assert table.closed("never-opened") is None


def test_an_address_is_dialled_once_at_a_time() -> None:
    table: LinkTable[str] = LinkTable("me")
    assert table.dialling("h:1")
    assert not table.dialling("h:1")
    table.dialled("h:1")
    assert table.dialling("h:1")


def test_own_address_and_aliases_are_self() -> None:
    table: LinkTable[str] = LinkTable("me")
    table.own_address = "127.0.0.1:5"
    table.own_aliases.add("localhost:5")
    assert table.is_self("127.0.0.1:5") and table.is_self("localhost:5")
    assert not table.is_self("127.0.0.1:6")
