"""The text-classification data sets of the supervised benchmark, as fastText ``__label__`` files.

Each is prepared once into a cache folder outside the repository (``imdb_data.cache_dir()``)
with the normalisation of fastText's classification examples (``imdb_data.normalise``), so
both tools read the same files:

- ``imdb``: IMDB polarity, 25,000 train / 25,000 test reviews (``imdb_data``);
- ``imdb_rating``: the same reviews labelled with their star rating (8 classes);
- ``ag_news``: AG News, only its official test split is in ``../shared/data``: its 7,600
  lines (title and description, 4 classes) shuffled with a fixed seed and split 80/20 into
  6,080 train / 1,520 test;
- each with the suffix ``_10pct``: the first 10 % of its (shuffled) training lines, the same
  test file (small data).
"""

from __future__ import annotations

import csv
import io
import lzma
import random
from pathlib import Path

from imdb_data import SHUFFLE_SEED, cache_dir, normalise
from imdb_data import prepare as prepare_imdb
from shared_data import SHARED

AG_NEWS = SHARED / "text_classification" / "ag_news" / "test.csv.xz"
AG_TRAIN_SHARE = 0.8
SMALL_SUFFIX = "_10pct"
SMALL_SHARE = 0.1
DATASETS = ("imdb", "imdb_rating", "ag_news")


def prepare(name: str) -> tuple[Path, Path]:
    """Paths of the train and test files of data set ``name`` (``DATASETS``, optionally + ``_10pct``)."""
    base = name.removesuffix(SMALL_SUFFIX)
    if base == "imdb":
        train, test = prepare_imdb()
    elif base == "imdb_rating":
        train, test = prepare_imdb("rating")
    elif base == "ag_news":
        train, test = _prepare_ag_news()
    else:
        raise SystemExit(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)} (+ {SMALL_SUFFIX})")
    if base == name:
        return train, test
    small = train.with_name(f"{train.stem}{SMALL_SUFFIX}{train.suffix}")
    if not small.exists():
        lines = train.read_bytes().splitlines(keepends=True)
        _write(small, b"".join(lines[:round(len(lines) * SMALL_SHARE)]).decode("utf-8"))
    return small, test


def _prepare_ag_news() -> tuple[Path, Path]:
    folder = cache_dir() / "ag_news"
    train, test = folder / "ag_news.train", folder / "ag_news.test"
    if train.exists() and test.exists():
        return train, test
    if not AG_NEWS.exists():
        raise SystemExit(f"AG News not found at {AG_NEWS}; the benchmark needs ../shared/data")
    folder.mkdir(parents=True, exist_ok=True)
    with lzma.open(AG_NEWS, "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    # The CSV writes line breaks inside a description as a backslash.
    lines = [f"__label__{label} {normalise(' '.join(fields).replace(chr(92), ' '))}\n" for label, *fields in rows]
    random.Random(SHUFFLE_SEED).shuffle(lines)
    cut = round(len(lines) * AG_TRAIN_SHARE)
    _write(train, "".join(lines[:cut]))
    _write(test, "".join(lines[cut:]))
    return train, test


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    for dataset in DATASETS:
        for variant in (dataset, dataset + SMALL_SUFFIX):
            for path in prepare(variant):
                print(variant, path, sum(1 for _ in path.open("rb")), "lines")
