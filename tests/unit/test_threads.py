"""``data.threads.ahead``: map in a background thread, in order, errors where they belong."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sagetext.data.threads import ahead


def test_results_come_in_order_and_are_computed_in_another_thread() -> None:
    threads: set[str] = set()

    def square(x: int) -> int:
        threads.add(threading.current_thread().name)
        return x * x

    assert list(ahead(square, iter(range(100)), depth=3)) == [x * x for x in range(100)]
    assert len(threads) == 1 and threads.pop().startswith("ahead")


def test_an_error_in_the_function_is_raised_after_the_results_before_it() -> None:
    def failing(x: int) -> int:
        if x == 5:
            raise ValueError("item 5")
        return x

    got: list[int] = []
    with pytest.raises(ValueError, match="item 5"):
        for value in ahead(failing, iter(range(10))):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_an_error_while_drawing_items_is_raised_too() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise OSError("the channel went away")

    with pytest.raises(OSError, match="went away"):
        list(ahead(lambda x: x, items()))


def test_a_caller_that_stops_early_stops_the_thread() -> None:
    drawn: list[int] = []

    def items() -> Iterator[int]:
        for x in range(1_000_000):
            drawn.append(x)
            yield x

    results = ahead(lambda x: x, items(), depth=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()  # what a `break` out of a for loop does
    assert not any(t.name.startswith("ahead") and t.is_alive() for t in threading.enumerate())
    assert len(drawn) <= 3 + 2 + 2  # taken, queued, and one in hand at most
