"""The IMDB review corpus as fastText ``__label__`` files, or as raw review files, prepared once
and cached.

Extracts ``aclImdb_v1_text_only.tar.xz`` from the shared data folder into a cache folder
outside the repository (``$SAGETEXT_BENCH_DIR`` or ``/tmp/sagetext-bench``) and writes
``imdb.train`` and ``imdb.test``: one review a line, ``__label__pos`` / ``__label__neg``
first, then the text normalised with the recipe of fastText's classification examples
(lowercase, ``<br />`` removed, ``. , ( ) ! ? '`` split off as tokens, ``" ; :`` dropped).
The training lines are shuffled with a fixed seed (the files are sorted by class in the
archive); both tools read the same files.
"""

from __future__ import annotations

import os
import random
import re
import tarfile
from pathlib import Path

from shared_data import SHARED

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = SHARED / "imdb" / "aclImdb_v1_text_only.tar.xz"
CACHE_ENV = "SAGETEXT_BENCH_DIR"
SHUFFLE_SEED = 0

_SPLIT_OFF = re.compile(r"([.,()!?'])")
_DROP = re.compile(r"[\";:]")
_SPACES = re.compile(r"\s+")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, "/tmp/sagetext-bench"))


def normalise(text: str) -> str:
    """One review as one line of space-separated tokens (fastText's example recipe)."""
    text = text.lower().replace("<br />", " ")
    text = _DROP.sub(" ", _SPLIT_OFF.sub(r" \1 ", text))
    return _SPACES.sub(" ", text).strip()


def prepare(labels: str = "sentiment") -> tuple[Path, Path]:
    """Paths of the train and test files, building them on the first call. ``labels``:
    "sentiment" (``__label__pos`` / ``__label__neg``) or "rating" (``__label__1`` to
    ``__label__10``, the star rating in each review's file name: 8 classes, 5 and 6 absent)."""
    folder = cache_dir() / "imdb"
    prefix = "imdb" if labels == "sentiment" else f"imdb_{labels}"
    train, test = folder / f"{prefix}.train", folder / f"{prefix}.test"
    if train.exists() and test.exists():
        return train, test
    if not ARCHIVE.exists():
        raise SystemExit(f"IMDB archive not found at {ARCHIVE}; the benchmark needs ../shared/data")
    folder.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "test": []}
    with tarfile.open(ARCHIVE, "r:xz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in splits or parts[2] not in ("pos", "neg"):
                continue
            data = tar.extractfile(member)
            assert data is not None
            text = data.read().decode("utf-8", errors="replace")
            label = parts[2] if labels == "sentiment" else parts[3].rsplit(".", 1)[0].split("_")[1]
            splits[parts[1]].append(f"__label__{label} {normalise(text)}\n")
    random.Random(SHUFFLE_SEED).shuffle(splits["train"])
    for name, path in (("train", train), ("test", test)):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(splits[name]), encoding="utf-8")
        tmp.replace(path)
    return train, test


def raw_reviews() -> Path:
    """A folder ``aclImdb`` with ``train`` and ``test``, each ``pos``/``neg``/``<id>_<rating>.txt``:
    the 50,000 labelled reviews as the archive holds them (one review a file), extracted once."""
    folder = cache_dir() / "imdb" / "aclImdb"
    done = folder / ".complete"
    if done.exists():
        return folder
    if not ARCHIVE.exists():
        raise SystemExit(f"IMDB archive not found at {ARCHIVE}; the benchmark needs ../shared/data")
    with tarfile.open(ARCHIVE, "r:xz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in ("pos", "neg"):
                target = folder / parts[1] / parts[2] / parts[3]
                target.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(member)
                assert data is not None
                target.write_bytes(data.read())
    done.touch()
    return folder


if __name__ == "__main__":
    for path in prepare():
        print(path, sum(1 for _ in path.open("rb")), "lines")
