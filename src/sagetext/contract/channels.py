"""Input channels from ``inputdataconfig.json`` (spec §1.4): File, FastFile and Pipe modes.

A channel gives its data as a sequence of binary streams for one pass (epoch): in File and
FastFile mode every regular file under ``input/data/<channel>/`` in name order, gzip
decompressed on the fly; in Pipe mode the FIFO ``input/data/<channel>_<epoch>``, waited for
until it appears (at most ``pipe_wait_seconds``, the ``SAGETEXT_PIPE_WAIT_SECONDS`` setting).
"""

from __future__ import annotations

import gzip
import io
import json
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.errors import ClientError

INPUT_MODES = ("File", "FastFile", "Pipe")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Channel:
    name: str
    mode: str = "File"
    content_type: str | None = None
    distribution: str = "FullyReplicated"
    record_wrapper: str | None = None
    paths: Paths = Paths(Path("/opt/ml"))
    pipe_wait_seconds: float = Settings.pipe_wait_seconds

    @property
    def directory(self) -> Path:
        return self.paths.channel_dir(self.name)

    def files(self) -> list[Path]:
        """File/FastFile mode: the channel's regular files, recursively, in name order.

        Hidden files (``.`` prefix, e.g. S3 sync leftovers) are skipped.
        """
        if not self.directory.is_dir():
            raise ClientError(f"channel '{self.name}': directory {self.directory} does not exist")
        found = [p for p in sorted(self.directory.rglob("*"))
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.directory).parts)]
        if not found:
            raise ClientError(f"channel '{self.name}': no files in {self.directory}")
        return found

    def streams(self, epoch: int = 0) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(name, binary stream)`` for each file of one pass; gzip is undone."""
        if self.mode == "Pipe":
            fifo = self._wait_for_pipe(epoch)
            with open(fifo, "rb") as raw:
                yield fifo.name, _maybe_gunzip(raw, f"channel '{self.name}', pipe {fifo.name}")
            return
        for path in self.files():
            with open(path, "rb") as raw:
                name = str(path.relative_to(self.directory))
                yield name, _maybe_gunzip(raw, f"channel '{self.name}', file {name}")

    def _wait_for_pipe(self, epoch: int) -> Path:
        fifo = self.paths.pipe_path(self.name, epoch)
        deadline = time.monotonic() + self.pipe_wait_seconds
        while not fifo.exists():
            if time.monotonic() > deadline:
                raise ClientError(f"channel '{self.name}' is in Pipe mode but {fifo} never appeared")
            time.sleep(0.1)
        return fifo


def _maybe_gunzip(raw: BinaryIO, name: str) -> BinaryIO:
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type,type-var]
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return _CheckedGzip(buffered, name)  # type: ignore[return-value]
    return buffered


def _gzip_errors_are_the_users(method: Any) -> Any:
    def call(self: "_CheckedGzip", *args: Any) -> Any:
        try:
            return method(self, *args)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ClientError(f"{self.channel_file}: starts like a gzip file but cannot be decompressed "
                              f"({exc}); upload it again, or uncompressed") from None
    return call


class _CheckedGzip(gzip.GzipFile):
    """A gzip stream whose corrupt or truncated data is reported as the user's mistake, naming
    the file, wherever a reader meets it (the first read, or the middle of a pass)."""

    def __init__(self, fileobj: BinaryIO, channel_file: str) -> None:
        super().__init__(fileobj=fileobj)
        self.channel_file = channel_file

    read = _gzip_errors_are_the_users(gzip.GzipFile.read)
    read1 = _gzip_errors_are_the_users(gzip.GzipFile.read1)
    peek = _gzip_errors_are_the_users(gzip.GzipFile.peek)
    readline = _gzip_errors_are_the_users(gzip.GzipFile.readline)
    readinto = _gzip_errors_are_the_users(gzip.GzipFile.readinto)
    readinto1 = _gzip_errors_are_the_users(gzip.GzipFile.readinto1)


def parse(config: Mapping[str, Any], paths: Paths,
          pipe_wait_seconds: float = Settings.pipe_wait_seconds) -> dict[str, Channel]:
    """Channels from the parsed ``inputdataconfig.json``."""
    channels = {}
    for name, spec in config.items():
        if not isinstance(spec, Mapping):
            raise ClientError(f"inputdataconfig.json: channel '{name}' must be an object")
        mode = spec.get("TrainingInputMode", "File")
        if mode not in INPUT_MODES:
            raise ClientError(f"channel '{name}': TrainingInputMode={mode!r}; expected one of {', '.join(INPUT_MODES)}")
        wrapper = spec.get("RecordWrapperType")
        channels[name] = Channel(
            name=name,
            mode=mode,
            content_type=spec.get("ContentType"),
            distribution=spec.get("S3DistributionType", "FullyReplicated"),
            record_wrapper=None if wrapper in (None, "None") else wrapper,
            paths=paths,
            pipe_wait_seconds=pipe_wait_seconds,
        )
    return channels


def load(paths: Paths, pipe_wait_seconds: float = Settings.pipe_wait_seconds) -> dict[str, Channel]:
    """Channels of the job; without ``inputdataconfig.json``, every folder under input/data in File mode."""
    if paths.inputdataconfig_file.exists():
        return parse(read_json(paths.inputdataconfig_file), paths, pipe_wait_seconds)
    if not paths.data_dir.is_dir():
        return {}
    return {d.name: Channel(d.name, paths=paths) for d in sorted(paths.data_dir.iterdir()) if d.is_dir()}


def read_json(path: Path) -> Any:
    """Read one of the contract's JSON config files; a broken file is the user's error."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientError(f"{path.name}: cannot be read as JSON ({exc})") from None
