"""Checkpoints for spot restarts: where they go (``checkpointconfig.json``), and the one way every
trainer saves its state and resumes from it.

A trainer supplies only its own state (tensors and plain values), the ``kind`` of that state (a
name with a format version, e.g. ``"ntm/1"``) and where training stands (``Position``: epochs
done and steps of the next one). ``Checkpoints.save`` writes it to ``checkpoint.pt`` atomically
with ``torch.save``, together with what the state depends on:

* the job's hyperparameters, compared one by one, except those the spec in ``configs/`` marks
  ``may_differ_on_resume`` (e.g. a longer ``epochs``);
* fingerprints of the data (``depends_on``, name -> ``fingerprint(...)``), e.g. the trainer's
  vocabulary.

``load`` resumes a checkpoint of this job's kind, hyperparameters and data, logging one line
(``Resuming from checkpoint: epoch E, step S``); any other is refused with a ``ClientError``
naming what differs, and so is a file that cannot be read (nothing is unpickled:
``weights_only=True``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagetext.contract.artifacts import write_atomic
from sagetext.contract.channels import read_json
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

FILE_NAME = "checkpoint.pt"


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
    except Exception as exc:  # a corrupt or foreign file: say so, do not guess
        raise ClientError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                          "remove it to start afresh") from None
    if not isinstance(payload, dict):
        raise ClientError(f"checkpoint {path} cannot be read (it holds a {type(payload).__name__}, not a "
                          "checkpoint); remove it to start afresh")
    return payload


class Checkpoints:
    """The job's checkpoint folder (None: checkpoints are off). ``depends_on`` holds the
    fingerprints every checkpoint of this job depends on; ``writer`` is False on every worker
    but rank 0, which alone saves and logs."""

    def __init__(self, folder: Path | None, hyperparameters: Hyperparameters,
                 depends_on: Mapping[str, str] | None = None, writer: bool = True) -> None:
        self.folder = folder
        self.hyperparameters = hyperparameters
        self.depends_on = dict(depends_on or {})
        self.writer = writer

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
        payload = {"kind": kind, "position": {"epoch": position.epoch, "step": position.step},
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
        log.info("Saved checkpoint to %s", self.path)

    def load(self, kind: str, depends_on: Mapping[str, str] | None = None) -> Resumed | None:
        """The checkpoint to continue, or None when none is saved; one of another kind, other
        hyperparameters or other data is a ClientError naming what differs."""
        if self.path is None or not self.path.exists():
            return None
        payload = read(self.path)
        reasons = self._differences(payload, kind, {**self.depends_on, **(depends_on or {})})
        if reasons:
            raise ClientError(f"checkpoint {self.path} does not fit this job: {'; '.join(reasons)}; use the same "
                              "values and data, or remove the checkpoint")
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

    def _differences(self, payload: Mapping[str, Any], kind: str, depends_on: Mapping[str, str]) -> list[str]:
        """Why the checkpoint is not this job's to continue, one phrase per reason (none: resume)."""
        reasons = []
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
            verb = "differ" if len(data) > 1 else "differs"
            reasons.append(f"it was made from other data (its {' and '.join(data)} {verb})")
        return reasons


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
