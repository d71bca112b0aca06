"""``sagetext predict``: a model's answers for a whole file, as the server would give them.

The input is cut into requests of at most ``batch_size`` instances, and each request goes
through ``serving.invocation``, the code behind ``POST /invocations``; the answers are written
in order as they come, so a large file streams through in the memory of one request. How a
file is cut depends on its type:

``application/jsonlines``, ``text/csv``
    a request per ``batch_size`` non-blank lines; the answers (JSON Lines, CSV) follow one
    another as one file.
``application/x-recordio-protobuf``
    a request per ``batch_size`` records.
``application/json``
    the whole file is one request (a JSON document cannot be cut); use JSON Lines for large
    inputs. So is any input whose answers are JSON (NTM's default for CSV and RecordIO), as
    JSON answers cannot follow one another in one file: ask for JSON Lines (``--accept``).
``text/plain`` (ours, for files of sentences as fastText and Sockeye read them)
    each line, blank ones included, is the JSON Lines object ``{"source": line}`` that
    BlazingText and Seq2Seq read, so the answers are JSON Lines, one per input line.

A progress line goes to stderr every few seconds: instances answered, the rate, and for a
file of known size the share read and the time left.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from sagetext.contract.progress import Progress
from sagetext.data import media_types, recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO, TEXT
from sagetext.errors import ClientError
from sagetext.serving import invocation

if TYPE_CHECKING:
    from sagetext.algorithms.base import Predictor

LINE_TYPES = (JSONLINES, CSV)


@dataclass(frozen=True)
class Summary:
    instances: int
    requests: int
    seconds: float


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes read through it (for the progress line)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self.stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        self.count += len(data)
        return len(data)


def predict_stream(predictor: Predictor, source: BinaryIO, sink: BinaryIO, content_type: str | None = None,
                   accept: str | None = None, configuration: Mapping[str, Any] | None = None,
                   batch_size: int = 1000, name: str = "-", progress_to: TextIO | None = sys.stderr) -> Summary:
    """Answer every instance of ``source`` into ``sink`` (see the module docstring)."""
    given = media_types.media_type(content_type) if content_type else ""
    as_text = given == TEXT
    request_type = JSONLINES if as_text else (given or default_type(predictor))
    types = invocation.negotiate(predictor, request_type, accept)
    counted = _Counting(source)
    reader = io.BufferedReader(counted, 1 << 20)
    progress = Progress(_size(source) or 0)
    instances = requests = 0
    whole = types.request == JSON or types.response == JSON
    for body, count in _requests(reader, types.request, as_text, max(1, batch_size), whole):
        sink.write(invocation.answer(predictor, types, body, configuration=configuration))
        instances, requests = instances + count, requests + 1
        progress.update(counted.count)
        if progress_to is not None and progress.due():
            print(_progress_line(name, instances, progress), file=progress_to, flush=True)
    sink.flush()
    return Summary(instances, requests, progress.seconds)


def default_type(predictor: Predictor) -> str:
    """JSON Lines when the model takes it (it streams), else the first type it declares."""
    return JSONLINES if JSONLINES in predictor.answers else next(iter(predictor.answers))


def _requests(stream: BinaryIO, request_type: str, as_text: bool, batch_size: int,
              whole: bool) -> Iterator[tuple[bytes, int]]:
    """(request body, instances in it) for each request the input is cut into; one when ``whole``."""
    if whole and not as_text:
        body = stream.read()
        yield body, _count(request_type, body)
    elif as_text:
        yield from _batches((_source_line(line) for line in _lines(stream, keep_blank=True)), batch_size)
    elif request_type in LINE_TYPES:
        yield from _batches(_lines(stream, keep_blank=False), batch_size)
    else:
        yield from _record_batches(stream, batch_size)


def _count(request_type: str, body: bytes) -> int:
    """Instances in a whole-file request, for the summary line (a JSON document counts as one)."""
    if request_type in LINE_TYPES:
        return sum(1 for line in body.splitlines() if line.strip())
    if request_type == RECORDIO:
        return sum(1 for _ in recordio.read_payloads(io.BytesIO(body)))
    return 1


def _lines(stream: BinaryIO, keep_blank: bool) -> Iterator[bytes]:
    for line in stream:
        line = line.rstrip(b"\r\n")
        if keep_blank or line.strip():
            yield line + b"\n"


def _source_line(line: bytes) -> bytes:
    """A line of text as BlazingText's and Seq2Seq's JSON Lines request object."""
    try:
        text = line.rstrip(b"\n").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClientError(f"{TEXT} input is not valid UTF-8: byte 0x{line[e.start]:02x} of the line "
                          f"{line[:60]!r}") from None
    return (json.dumps({"source": text}, ensure_ascii=False) + "\n").encode("utf-8")


def _batches(lines: Iterator[bytes], batch_size: int) -> Iterator[tuple[bytes, int]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == batch_size:
            yield b"".join(batch), len(batch)
            batch = []
    if batch:
        yield b"".join(batch), len(batch)


def _record_batches(stream: BinaryIO, batch_size: int) -> Iterator[tuple[bytes, int]]:
    body, count = io.BytesIO(), 0
    for payload in recordio.read_payloads(stream):
        recordio.write_payload(body, payload)
        count += 1
        if count == batch_size:
            yield body.getvalue(), count
            body, count = io.BytesIO(), 0
    if count:
        yield body.getvalue(), count


def _size(stream: BinaryIO) -> int | None:
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) and status.st_size > 0 else None


def _progress_line(name: str, instances: int, progress: Progress) -> str:
    line = f"sagetext predict: {instances:,} instances, {instances / progress.seconds:,.0f}/s"
    if progress.fraction is not None:
        line += f", {100 * progress.fraction:.1f}% of {name} read, ETA {progress.eta_text()}"
    return line
