"""Fixtures shared by unit tests of several modules."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from sagetext.contract.metrics import MetricLogger
from tests.conftest import SHARED_DATA

TEXT8_LIKE = SHARED_DATA / "wiki_en_text8like" / "wiki2015_text8like.xz"
SLICE_CHARS = 12_000_000  # about 2M words


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12M characters (about 2M words) of the text8-like corpus, decompressed once per module."""
    if not TEXT8_LIKE.is_file():
        pytest.skip(f"text8-like corpus not found at {TEXT8_LIKE} (needs ../shared/data beside the checkout)")
    path = tmp_path_factory.mktemp("text8like") / "slice.txt"
    with lzma.open(TEXT8_LIKE, "rb") as f:
        path.write_bytes(f.read(SLICE_CHARS))
    return path


class Recording(MetricLogger):
    """A metric logger that keeps every (name, value) it is given, for tests to read."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.lines: list[tuple[str, float]] = []

    def log(self, name: str, value: float, step: int | None = None) -> None:
        self.lines.append((name, value))

    def values(self, name: str) -> list[float]:
        return [v for n, v in self.lines if n == name]
