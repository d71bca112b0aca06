"""TensorBoard event files for a training job, where SageMaker collects them.

A job created with a ``TensorBoardOutputConfig`` finds ``tensorboardoutputconfig.json`` in
``input/config`` (``{"LocalPath": ..., "S3OutputPath": ...}``, the file SageMaker Debugger's
hooks read too); SageMaker uploads what is written under ``LocalPath`` (default
``/opt/ml/output/tensorboard``) to ``S3OutputPath`` while the job runs. ``sagetext train
--tensorboard DIR`` writes the same file with ``LocalPath`` DIR. Without the file nothing is
written.

The writer is torch's ``SummaryWriter``, which needs the ``tensorboard`` package: the optional
extra ``sagetext[tensorboard]``, which the images include. Without it the job runs and says
once that no event files are written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sagetext.contract.channels import read_json
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10  # TensorBoard (and SageMaker's upload) see new points this often
INSTALL_HINT = "pip install 'sagetext[tensorboard]'"


def directory(paths: Paths) -> Path | None:
    """Where this job's event files go, or None when the job asked for none."""
    config_file = paths.tensorboard_config_file
    if not config_file.exists():
        return None
    config = read_json(config_file)
    local = config.get("LocalPath") if isinstance(config, dict) else None
    if local is not None and not isinstance(local, str):
        raise ClientError(f"{config_file.name}: LocalPath must be a string path, got {local!r}")
    return Path(local) if local else paths.default_tensorboard_dir


def available() -> bool:
    """Whether the writer can be imported (``tensorboard`` installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def tag(name: str) -> str:
    """A metric's TensorBoard tag: ``validation:bleu`` -> ``validation/bleu`` (the part before
    the slash groups the charts)."""
    return name.replace(":", "/")


class EventWriter:
    """Scalars, text and images into one run's event files under ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self._writer: Any = SummaryWriter(str(log_dir), flush_secs=FLUSH_SECONDS)

    def scalar(self, name: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag(name), float(value), step)

    def text(self, name: str, text: str, step: int) -> None:
        self._writer.add_text(tag(name), text, step)

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        self._writer.add_image(tag(name), np.clip(image, 0.0, 1.0), step, dataformats="HWC")

    def close(self) -> None:
        self._writer.close()


def open_writer(log_dir: Path | None) -> EventWriter | None:
    """An ``EventWriter`` for ``log_dir``; None when there is none, or (said once in the log)
    when the ``tensorboard`` package is missing."""
    if log_dir is None:
        return None
    if not available():
        log.warning("TensorBoard output was asked for (%s) but the tensorboard package is not installed "
                    "(%s); no event files are written", log_dir, INSTALL_HINT)
        return None
    log.info("TensorBoard event files go to %s", log_dir)
    return EventWriter(log_dir)


def heat_map(weights: np.ndarray) -> np.ndarray:
    """A (rows, columns) matrix of weights in [0, 1] as an RGB image: each cell a square of at
    least 8 px (the image about 256 px on its long side), white (0) through blue to dark blue (1)."""
    weights = np.clip(np.nan_to_num(np.asarray(weights, dtype=np.float32)), 0.0, 1.0)
    low, mid, high = np.array([1.0, 1.0, 1.0]), np.array([0.26, 0.57, 0.78]), np.array([0.03, 0.19, 0.42])
    w = weights[..., None]
    rgb = np.where(w < 0.5, low + (mid - low) * (w / 0.5), mid + (high - mid) * ((w - 0.5) / 0.5))
    scale = max(8, 256 // max(max(weights.shape, default=1), 1))
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1).astype(np.float32)
