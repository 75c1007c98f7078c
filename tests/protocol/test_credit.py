"""A stream consumer's credit: the producer never runs more than a window ahead."""

from __future__ import annotations

import random

import pytest

from mpreg.protocol.credit import CreditWindow


def _fill(credit: CreditWindow, nbytes: int = 10) -> None:
    while credit.outstanding:
        credit.on_item(nbytes)


def test_a_stream_starts_with_one_item_of_credit_and_gets_its_window_once_that_is_taken() -> None:
    credit = CreditWindow(8, 1 << 20)
    assert credit.outstanding == 1
    credit.on_item(10)
    with pytest.raises(ValueError, match="beyond the credit"):
        credit.on_item(10)
    assert credit.take() == 8
    _fill(credit)
    assert credit.outstanding == 0 and credit.buffered == 8


def test_credit_comes_back_in_batches_of_a_quarter_window() -> None:
    credit = CreditWindow(8, 1 << 20)
    credit.on_item(10)
    credit.take()
    _fill(credit)
    assert credit.take() == 0  # one free slot: not worth a message
    assert credit.take() == 2  # a quarter of the window: granted at once
    assert credit.outstanding == 2 and credit.buffered == 6
    assert credit.take(6) == 6


def test_the_producer_is_never_more_than_a_window_ahead_of_the_consumer() -> None:
    rng = random.Random(7)
    credit = CreditWindow(16, 1 << 30)
    made = 0
    for _ in range(5_000):
        if rng.random() < 0.5 and credit.outstanding:
            credit.on_item(rng.randrange(1, 100))
            made += 1
        elif credit.buffered:
            credit.take(rng.randint(1, credit.buffered))
        assert made <= credit.consumed + credit.window
        assert credit.outstanding + credit.buffered <= credit.window
    assert made == credit.received > 1_000


def test_large_items_shrink_the_window_to_its_bytes_but_never_below_one_item() -> None:
    credit = CreditWindow(64, 1_000_000)
    credit.on_item(250_000)
    assert credit.limit == 4  # four such items make the window's bytes
    assert credit.take() == 4
    huge = CreditWindow(64, 1_000)
    huge.on_item(5_000)
    assert huge.limit == 1
    assert huge.take() == 1  # one at a time, each asked for once the last was taken
    huge.on_item(5_000)
    assert huge.outstanding == 0


def test_taking_more_than_was_received_is_a_bug() -> None:
    credit = CreditWindow(4, 100)
    with pytest.raises(ValueError, match="took 1"):
        credit.take()
    with pytest.raises(ValueError, match="at least 1"):
        CreditWindow(0, 100)
