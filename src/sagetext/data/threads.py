"""Work on a stream's next items in a background thread while the caller handles this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

_END = object()
_POLL_SECONDS = 0.1


def ahead(function: Callable[[In], Out], items: Iterator[In], depth: int = 2) -> Iterator[Out]:
    """``map(function, items)`` with the items drawn and ``function`` applied in a background
    thread, up to ``depth`` results before the caller asks for them.

    Worth it when both sides spend their time in code that releases the GIL (file reads, numpy
    on whole arrays): reading and hashing a block overlaps numbering the previous one. Results
    come in order; an exception raised by ``items`` or ``function`` is raised here, where its
    result would have been; if the caller stops early, the thread stops after its current item.
    """
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                results.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, function(item))):
                    return
            put((True, _END))
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))

    thread = threading.Thread(target=produce, name="ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = results.get()
            if not ok:
                assert isinstance(value, BaseException)
                raise value
            if value is _END:
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
