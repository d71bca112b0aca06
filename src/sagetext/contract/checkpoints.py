"""Checkpoints for spot restarts: where they go (``checkpointconfig.json``), and the one way every
trainer saves its state and resumes from it.

A trainer supplies only its own state (tensors and plain values), the ``kind`` of that state (a
name with a format version, e.g. ``"ntm/1"``) and where training stands (``Position``: epochs
done and steps of the next one). ``Checkpoints.save`` writes it to ``checkpoint.pt`` atomically
with ``torch.save``, together with what the state depends on:

* the job's hyperparameters, compared one by one, except those the spec in ``configs/`` marks
  ``may_differ_on_resume`` (e.g. a longer ``epochs``);
* fingerprints of the data (``depends_on``, name -> ``fingerprint(...)``): the channels' files
  (``channel_files``, given by ``sagetext.training``) and what the trainer fingerprints from the
  content itself, e.g. its vocabulary (which also covers Pipe mode, where files cannot be listed).

``Checkpoints.finish`` is called when the job has written its model: it marks the checkpoint
left behind as a finished job's (``finished.json`` names the save's id). ``load`` resumes only a
checkpoint of this job's kind, hyperparameters and data whose job has not finished: users reuse
one ``checkpoint_s3_uri`` across jobs, and a restarted spot job is the only one that should
continue a checkpoint. Any other is named in one log line, with what differs, and ignored:
training starts afresh and its own checkpoints replace it. A checkpoint file that cannot be
read is the user's storage gone wrong, a ``ClientError`` naming the file (nothing is unpickled:
``weights_only=True``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagetext.contract.artifacts import write_atomic, write_bytes_atomic
from sagetext.contract.channels import Channel, read_json
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

FILE_NAME = "checkpoint.pt"
FINISHED_FILE = "finished.json"  # {"checkpoint": id of the save a finished job left behind}


def directory(paths: Paths) -> Path | None:
    """The local checkpoint folder, or None when the job has no CheckpointConfig."""
    if not paths.checkpointconfig_file.exists():
        return None
    config = read_json(paths.checkpointconfig_file)
    local = config.get("LocalPath") if isinstance(config, dict) else None
    return Path(local) if local else paths.default_checkpoint_dir


def fingerprint(*parts: Any) -> str:
    """A digest of ``parts`` in order: strings, bytes, numbers, numpy arrays, and lists or
    tuples of these (nested). Each part is framed with its type and length, so that different
    sequences never run together into the same bytes."""
    digest = hashlib.sha256()
    _feed(digest, parts)
    return digest.hexdigest()


def _feed(digest: Any, part: Any) -> None:
    if isinstance(part, (list, tuple)):
        digest.update(b"[%d" % len(part))
        for item in part:
            _feed(digest, item)
        return
    if isinstance(part, str):
        data, tag = part.encode("utf-8", errors="surrogatepass"), b"s"
    elif isinstance(part, bytes):
        data, tag = part, b"b"
    elif isinstance(part, (bool, int, float)):
        data, tag = repr(part).encode(), b"n"
    elif hasattr(part, "tobytes") and hasattr(part, "dtype"):  # a numpy array: its values, not their repr
        data, tag = part.dtype.str.encode() + b":" + part.tobytes(), b"a"
    else:
        raise TypeError(f"cannot fingerprint a {type(part).__name__}")
    digest.update(b"%s%d:" % (tag, len(data)))
    digest.update(data)


def channel_files(channels: Mapping[str, Channel]) -> str:
    """The fingerprint of the channels' data that costs no reading: per channel its input mode
    and, in File and FastFile mode, every file's relative name and size. A spot restart
    downloads the same objects, so it is the same after one; a Pipe channel cannot be looked at
    without consuming it (there the trainer's own fingerprint of the content must do)."""
    parts: list[Any] = []
    for name in sorted(channels):
        channel = channels[name]
        parts.append((name, channel.mode))
        if channel.mode == "Pipe":
            continue
        try:
            files = channel.files()
        except ClientError:  # no folder or no files: the algorithm reports it if it needs the channel
            files = []
        parts.append([(str(path.relative_to(channel.directory)), path.stat().st_size) for path in files])
    return fingerprint(*parts)


@dataclass(frozen=True)
class Position:
    """Where training stands: ``epoch`` epochs done, then ``step`` steps (batches, syncs,
    sentences: the trainer's unit) of the next one."""

    epoch: int
    step: int = 0


@dataclass(frozen=True)
class Resumed:
    """A checkpoint this job continues: where it stood and the trainer's own state."""

    position: Position
    state: dict[str, Any]


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file's whole content; one that cannot be read is a ClientError naming it."""
    import torch  # here, not at the top: `sagetext --help` and the server's master never need it

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: say so, do not guess
        raise ClientError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                          "remove it to start afresh") from None
    if not isinstance(payload, dict):
        raise ClientError(f"checkpoint {path} cannot be read (it holds a {type(payload).__name__}, not a "
                          "checkpoint); remove it to start afresh")
    return payload


class Checkpoints:
    """The job's checkpoint folder (None: checkpoints are off). ``depends_on`` holds the
    fingerprints every checkpoint of this job depends on (the channels' files); ``writer`` is
    False on every worker but rank 0, which alone saves, marks finished and logs."""

    def __init__(self, folder: Path | None, hyperparameters: Hyperparameters,
                 depends_on: Mapping[str, str] | None = None, writer: bool = True) -> None:
        self.folder = folder
        self.hyperparameters = hyperparameters
        self.depends_on = dict(depends_on or {})
        self.writer = writer
        self._on_disk: str | None = None  # id of the save in the folder, as far as this process knows

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    @property
    def path(self) -> Path | None:
        return self.folder / FILE_NAME if self.folder is not None else None

    def save(self, kind: str, position: Position, state: Mapping[str, Any],
             depends_on: Mapping[str, str] | None = None) -> None:
        """Write ``state`` as the checkpoint (rank 0; nothing without a checkpoint folder).
        ``depends_on``: the trainer's own fingerprints, the same as it gives ``load``."""
        if self.path is None or not self.writer:
            return
        save_id = uuid.uuid4().hex
        payload = {"kind": kind, "id": save_id, "position": {"epoch": position.epoch, "step": position.step},
                   "hyperparameters": self.hyperparameters.as_strings(),
                   "depends_on": {**self.depends_on, **(depends_on or {})}, "state": dict(state)}
        for stale in self.path.parent.glob(f".{FILE_NAME}.*.tmp"):  # left by a kill mid-write
            stale.unlink(missing_ok=True)
        import torch

        try:
            write_atomic(self.path, lambda f: torch.save(payload, f))
        except OSError as exc:
            raise ClientError(f"cannot write the checkpoint to {self.path} ({exc.strerror}); check the "
                              "CheckpointConfig LocalPath") from None
        self._on_disk = save_id
        log.info("Saved checkpoint to %s", self.path)

    def load(self, kind: str, depends_on: Mapping[str, str] | None = None) -> Resumed | None:
        """The checkpoint to continue, or None: none saved, or one of another job (logged,
        naming what differs; training starts afresh). An unreadable file is a ClientError."""
        if self.path is None or not self.path.exists():
            return None
        payload = read(self.path)
        self._on_disk = payload.get("id") if isinstance(payload.get("id"), str) else None
        reasons = self._differences(payload, kind, {**self.depends_on, **(depends_on or {})})
        if reasons:
            if self.writer:
                log.info("Not resuming the checkpoint in %s: %s; training afresh (this job's checkpoints replace "
                         "it)", self.folder, "; ".join(reasons))
            return None
        try:
            where = payload["position"]
            position = Position(int(where["epoch"]), int(where["step"]))
            state = dict(payload["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ClientError(f"checkpoint {self.path} is incomplete ({type(exc).__name__}: {exc}); "
                              "remove it to start afresh") from None
        if self.writer:
            log.info("Resuming from checkpoint: epoch %d, step %d", position.epoch + 1, position.step)
        return Resumed(position, state)

    def finish(self) -> None:
        """Mark the checkpoint in the folder as a finished job's, so that no later job resumes
        it (called once the model is written; rank 0)."""
        if self.folder is None or self._on_disk is None or not self.writer:
            return
        try:
            write_bytes_atomic(self.folder / FINISHED_FILE, json.dumps({"checkpoint": self._on_disk}).encode())
        except OSError as exc:
            raise ClientError(f"cannot write {self.folder / FINISHED_FILE} ({exc.strerror}); check the "
                              "CheckpointConfig LocalPath") from None
        log.info("Marked the checkpoint in %s finished: a job that reuses the folder trains afresh", self.folder)

    def _differences(self, payload: Mapping[str, Any], kind: str, depends_on: Mapping[str, str]) -> list[str]:
        """Why the checkpoint is not this job's to continue, one phrase per reason (none: resume)."""
        reasons = []
        if self._on_disk is not None and self._finished_id() == self._on_disk:
            reasons.append("its job finished")
        if payload.get("kind") != kind:
            reasons.append(f"it holds {payload.get('kind')!r} state, this job {kind!r}")
        saved = payload.get("hyperparameters")
        saved = saved if isinstance(saved, dict) else {}
        current = self.hyperparameters.as_strings()
        differ = sorted(k for k in saved.keys() | current.keys()
                        if k not in self.hyperparameters.may_differ_on_resume and saved.get(k) != current.get(k))
        if differ:
            detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs job {current.get(k)!r}" for k in differ)
            reasons.append(f"it was written with other hyperparameters ({detail})")
        fingerprints = payload.get("depends_on")
        fingerprints = fingerprints if isinstance(fingerprints, dict) else {}
        data = sorted(k for k in fingerprints.keys() | depends_on.keys() if fingerprints.get(k) != depends_on.get(k))
        if data:
            reasons.append(f"it was made from other data (different {' and '.join(data)})")
        return reasons

    def _finished_id(self) -> str | None:
        assert self.folder is not None
        marker = self.folder / FINISHED_FILE
        if not marker.exists():
            return None
        content = read_json(marker)
        if not isinstance(content, dict) or not isinstance(content.get("checkpoint"), str):
            raise ClientError(f"{marker} cannot be read (expected {{\"checkpoint\": ID}}); remove it")
        return content["checkpoint"]


def generator_state(device: str) -> dict[str, Any]:
    """This process's global torch generators (``rng``, and ``cuda_rng`` on a GPU), to be saved
    with a checkpoint so that a restarted job draws the same numbers (dropout, sampling)."""
    import torch

    state: dict[str, Any] = {"rng": torch.get_rng_state()}
    if device.startswith("cuda"):
        state["cuda_rng"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def restore_generator_state(saved: Mapping[str, Any], device: str) -> None:
    """Put back what ``generator_state`` saved (the GPU's part only on a GPU)."""
    import torch

    torch.set_rng_state(saved["rng"])
    if "cuda_rng" in saved and device.startswith("cuda"):
        torch.cuda.set_rng_state(saved["cuda_rng"], torch.device(device))
