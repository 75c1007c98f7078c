"""Address forms a user may type: host:port, tcp://, mpreg://, the seed's ws://, IPv6."""

from __future__ import annotations

import pytest

from mpreg.transport.connection import parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7773", ("127.0.0.1", 7773)),
        ("tcp://10.0.0.5:9000", ("10.0.0.5", 9000)),
        ("mpreg://example.org:1234/", ("example.org", 1234)),
        ("ws://127.0.0.1:7773", ("127.0.0.1", 7773)),
        ("[::1]:7000", ("::1", 7000)),
        ("localhost", ("localhost", 7773)),
    ],
)
def test_address_forms_parse_to_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", [":7773", "host:notaport", "host:0", "host:70000"])
def test_bad_addresses_are_value_errors_that_quote_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="address"):
        parse_address(text)
