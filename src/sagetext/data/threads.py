"""Work on a stream's next items in a background thread while the caller handles this one."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

_END = object()


def ahead(function: Callable[[In], Out], items: Iterator[In], depth: int = 2) -> Iterator[Out]:
    """``map(function, items)`` with the items drawn and ``function`` applied in a background
    thread, up to ``depth`` results before the caller asks for them.

    Worth it when both sides spend their time in code that releases the GIL (file reads, numpy
    on whole arrays): reading and hashing a block overlaps numbering the previous one. Results
    come in order (one worker thread runs the tasks in the order given); an exception raised by
    ``items`` or ``function`` is raised here, where its result would have been; if the caller
    stops early, the tasks not started are cancelled and the thread stops after its current one.
    """
    def next_result() -> object:
        item = next(items, _END)
        return _END if item is _END else function(item)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ahead") as pool:
        pending: deque[Future[object]] = deque(pool.submit(next_result) for _ in range(max(depth, 1)))
        try:
            while (result := pending.popleft().result()) is not _END:
                pending.append(pool.submit(next_result))
                yield result  # type: ignore[misc]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
