"""Input channels from ``inputdataconfig.json``: File, FastFile and Pipe modes.

A channel gives its data as a sequence of binary streams for one pass (epoch): in File and
FastFile mode every regular file under ``input/data/<channel>/`` in name order; in Pipe mode
the FIFO ``input/data/<channel>_<epoch>``, waited for until it appears (at most
``pipe_wait_seconds``, the ``SAGETEXT_PIPE_WAIT_SECONDS`` setting). Either way gzip, bzip2
and xz are undone on the fly and other binary content is refused (``data.compression``).

The channel names a job may use come from the algorithm's spec in ``configs/`` (``check_names``):
a name the algorithm does not know is refused, with the closest accepted one suggested, as
SageMaker's built-ins refuse it, instead of being silently ignored.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.data import compression
from sagetext.errors import ClientError

INPUT_MODES = ("File", "FastFile", "Pipe")


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
        """Yield ``(name, binary stream)`` for each file of one pass, uncompressed (``data.compression``)."""
        if self.mode == "Pipe":
            fifo = self._wait_for_pipe(epoch)
            with open(fifo, "rb") as raw:
                yield fifo.name, compression.open_stream(raw, f"channel '{self.name}', pipe {fifo.name}")
            return
        for path in self.files():
            with open(path, "rb") as raw:
                name = str(path.relative_to(self.directory))
                yield name, compression.open_stream(raw, f"channel '{self.name}', file {name}")

    def _wait_for_pipe(self, epoch: int) -> Path:
        fifo = self.paths.pipe_path(self.name, epoch)
        deadline = time.monotonic() + self.pipe_wait_seconds
        while not fifo.exists():
            if time.monotonic() > deadline:
                raise ClientError(f"channel '{self.name}' is in Pipe mode but {fifo} never appeared")
            time.sleep(0.1)
        return fifo


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


def check_names(given: Iterable[str], accepted: Sequence[str], who: str) -> None:
    """Refuse channels that ``who`` (e.g. ``BlazingText in mode skipgram``) does not read: one
    ``ClientError`` naming each, with the closest accepted name when one is close."""
    unknown = sorted(set(given) - set(accepted))
    if not unknown:
        return
    named = [f"'{name}'" + (f" (did you mean '{match}'?)" if (match := closest(name, accepted)) else "")
             for name in unknown]
    noun = "channel" if len(unknown) == 1 else "channels"
    raise ClientError(f"unknown {noun} {', '.join(named)}: {who} reads only {', '.join(accepted)}; "
                      "rename the channel or remove it from the job's input data configuration")


def closest(name: str, accepted: Sequence[str]) -> str | None:
    """The accepted name ``name`` most likely meant: the same but for case, one of them a
    prefix of the other (``val``, ``training``), or a near spelling (``valid``, ``trian``)."""
    lowered = {a.lower(): a for a in accepted}
    key = name.lower()
    if key in lowered:
        return lowered[key]
    prefixed = [a for low, a in lowered.items() if len(key) >= 3 and (low.startswith(key) or key.startswith(low))]
    if len(prefixed) == 1:
        return prefixed[0]
    matches = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


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
