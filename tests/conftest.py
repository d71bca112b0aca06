"""Shared fixtures: where the shared data sets are, a fake SageMaker contract root, and the real
``train`` executable run on it (``run_train``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout, or beside a folder above it (a worktree under /work/wt/NAME)
SHARED_DATA = next((p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data").is_dir()),
                   REPO.parent / "shared" / "data")


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

    def channel(self, name: str, files: dict[str, str | bytes], mode: str = "File",
                distribution: str = "FullyReplicated", content_type: str = "text/plain") -> Path:
        folder = self.root / "input" / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            path = folder / file_name
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        config_file = self.root / "input" / "config" / "inputdataconfig.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        config[name] = {"TrainingInputMode": mode, "S3DistributionType": distribution,
                        "RecordWrapperType": "None", "ContentType": content_type}
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


def train_command() -> list[str]:
    return [sys.executable, str(REPO / "train")]


def train_env(opt_ml: FakeOptMl, algorithm: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment SageMaker gives ``train`` for ``opt_ml``, on CPU with one OpenMP thread, plus ``extra``."""
    return {**os.environ, "SAGEMAKER_BASE_DIR": str(opt_ml.root), "SAGETEXT_ALGORITHM": algorithm,
            "SAGETEXT_DEVICE": "cpu", "OMP_NUM_THREADS": "1", **(extra or {})}


class RunTrain(Protocol):
    def __call__(self, opt_ml: FakeOptMl, algorithm: str, env: Mapping[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]: ...


def run_train_executable(opt_ml: FakeOptMl, algorithm: str, env: Mapping[str, str] | None = None,
                         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real ``train`` executable as a subprocess on the fake /opt/ml (``train_env``), output captured."""
    return subprocess.run(train_command(), env=train_env(opt_ml, algorithm, env), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def run_train() -> RunTrain:
    """``run_train(opt_ml, algorithm, env=None, timeout=300)``: ``run_train_executable``."""
    return run_train_executable


def imdb_lines(shared: Path, per_class: dict[str, int]) -> dict[str, list[str]]:
    """``__label__pos``/``__label__neg`` lines from the IMDB archive, tokenized the usual way
    (lowercase, ``<br />`` removed, punctuation split off); ``per_class`` maps split → reviews per class."""
    import re
    import tarfile

    token = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
    lines: dict[str, list[str]] = {split: [] for split in per_class}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(shared / "imdb" / "aclImdb_v1_text_only.tar.xz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in per_class:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= per_class[parts[1]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            text = archive.extractfile(member).read().decode("utf-8").lower().replace("<br />", " ")
            lines[parts[1]].append(f"__label__{parts[2]} " + " ".join(token.findall(text)))
    for split in lines:  # interleave the classes, as a shuffled file would be
        half = len(lines[split]) // 2
        neg, pos = lines[split][:half], lines[split][half:]
        lines[split] = [line for pair in zip(neg, pos) for line in pair]
    return lines


@pytest.fixture(scope="session")
def imdb_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files ``train.txt`` (3,000 reviews) and ``test.txt`` (2,000) cut from the real IMDB set."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    folder = tmp_path_factory.mktemp("imdb")
    files = {}
    for split, lines in imdb_lines(SHARED_DATA, {"train": 1500, "test": 1000}).items():
        files[split] = folder / f"{split}.txt"
        files[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files
