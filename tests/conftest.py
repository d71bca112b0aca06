"""Shared fixtures: where the shared data sets are, and a fake SageMaker contract root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


class FakeOptMl:
    """Writes the files SageMaker puts under /opt/ml before it runs ``train``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "input" / "config").mkdir(parents=True)
        (root / "model").mkdir()
        (root / "output").mkdir()

    def hyperparameters(self, values: dict[str, str]) -> None:
        self._config("hyperparameters.json", values)

    def channel(self, name: str, files: dict[str, str | bytes], mode: str = "File") -> Path:
        folder = self.root / "input" / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            path = folder / file_name
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        config_file = self.root / "input" / "config" / "inputdataconfig.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        config[name] = {"TrainingInputMode": mode, "S3DistributionType": "FullyReplicated",
                        "RecordWrapperType": "None", "ContentType": "text/plain"}
        self._config("inputdataconfig.json", config)
        return folder

    def resources(self, hosts: list[str], current: str, interface: str | None = None) -> None:
        config: dict[str, object] = {"current_host": current, "hosts": hosts}
        if interface:
            config["network_interface_name"] = interface
        self._config("resourceconfig.json", config)

    def checkpoints(self, local_path: Path) -> None:
        self._config("checkpointconfig.json", {"LocalPath": str(local_path), "S3Uri": "s3://bucket/ckpt"})

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def model(self) -> Path:
        return self.root / "model"

    def _config(self, name: str, content: object) -> None:
        (self.root / "input" / "config" / name).write_text(json.dumps(content))


@pytest.fixture
def opt_ml(tmp_path: Path) -> FakeOptMl:
    return FakeOptMl(tmp_path / "opt_ml")
