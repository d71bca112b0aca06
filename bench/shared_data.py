"""Where the benchmarks find the real data sets: ``shared/data`` beside the checkout, or beside a
folder above it (a git worktree inside the workspace). Never copied into the repository."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = next((p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data").is_dir()),
              REPO.parent / "shared" / "data")
