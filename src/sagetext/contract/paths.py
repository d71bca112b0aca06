"""Every path of the SageMaker training and serving contract, derived from one root.

The root is ``/opt/ml``, or ``$SAGEMAKER_BASE_DIR`` when set (the training toolkit's name
for it), so a job can run from a checkout against a fake contract root in a temp dir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/opt/ml")
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Paths":
        base = env.get(BASE_DIR_ENV)
        return cls(Path(base) if base else DEFAULT_ROOT)

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def inputdataconfig_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resourceconfig_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def checkpointconfig_file(self) -> Path:
        return self.config_dir / "checkpointconfig.json"

    @property
    def tensorboard_config_file(self) -> Path:
        """Present when the job has a TensorBoardOutputConfig (``contract.tensorboard``)."""
        return self.config_dir / "tensorboardoutputconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    def pipe_path(self, channel: str, epoch: int) -> Path:
        """Pipe mode: one FIFO per channel per pass, ``<channel>_<epoch>``."""
        return self.data_dir / f"{channel}_{epoch}"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def default_tensorboard_dir(self) -> Path:
        """TensorBoardOutputConfig's default LocalPath."""
        return self.output_dir / "tensorboard"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def success_file(self) -> Path:
        return self.output_dir / "success"

    @property
    def default_checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"
