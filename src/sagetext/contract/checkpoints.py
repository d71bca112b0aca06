"""Checkpoints for spot restarts: where they go (``checkpointconfig.json``), and saving and
resuming a training state safely.

A checkpoint is a ``torch.save`` dict of tensors and plain values, written atomically and
read back with ``weights_only=True`` (nothing is unpickled). It carries the job's
hyperparameters; resuming with different ones is refused, naming them, except those the spec in
``configs/`` marks ``may_differ_on_resume`` (e.g. a longer ``epochs``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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


class Checkpoints:
    def __init__(self, folder: Path | None, hyperparameters: Hyperparameters) -> None:
        self.folder = folder
        self.hyperparameters = hyperparameters

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    @property
    def path(self) -> Path | None:
        return self.folder / FILE_NAME if self.folder is not None else None

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        payload = dict(state, hyperparameters=self.hyperparameters.as_strings())
        for stale in self.path.parent.glob(f".{FILE_NAME}.*.tmp"):  # left by a kill mid-write
            stale.unlink(missing_ok=True)
        import torch  # here, not at the top: `sagetext --help` and the server's master never need it

        try:
            write_atomic(self.path, lambda f: torch.save(payload, f))
        except OSError as exc:
            raise ClientError(f"cannot write the checkpoint to {self.path} ({exc.strerror}); check the "
                              "CheckpointConfig LocalPath") from None
        log.info("Saved checkpoint to %s", self.path)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None; a state from incompatible hyperparameters is a ClientError."""
        if self.path is None or not self.path.exists():
            return None
        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt or foreign file: say so, do not guess
            raise ClientError(f"checkpoint {self.path} cannot be read ({type(exc).__name__}: {exc}); "
                              "remove it to start afresh") from None
        saved = state.get("hyperparameters", {}) if isinstance(state, dict) else {}
        current = self.hyperparameters.as_strings()
        differ = sorted(k for k in saved.keys() | current.keys()
                        if k not in self.hyperparameters.may_differ_on_resume and saved.get(k) != current.get(k))
        if differ:
            detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs job {current.get(k)!r}" for k in differ)
            raise ClientError(f"checkpoint {self.path} was written with different hyperparameters ({detail}); "
                              "use the same values or remove the checkpoint")
        return state


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

