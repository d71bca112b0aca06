"""IMDB sentiment (25k train / 25k test): BlazingText supervised here vs the official fastText.

Both tools train on the same prepared files (``imdb_data.py``) in the same run, with
dim=10, lr=0.5, wordNgrams=2, epoch=5, bucket=2,000,000 and minCount=1 (fastText's default
for supervised; SageMaker's default ``min_count`` is 5, so it is passed explicitly), fastText
with 2 threads. Times are wall-clock seconds:

- end to end: from the training call until ``model.bin`` is on disk, reading the corpus
  included (fastText: ``train_supervised`` + ``save_model``; ours: ``ALGORITHM.train`` on a
  contract root whose ``train`` channel links to the file);
- training only: fastText's ``train_supervised(epoch=5)`` minus ``train_supervised(epoch=0)``
  (which reads the corpus and allocates the model but does no SGD); ours: the SGD loop as
  the trainer reports it (``SGD time in seconds``).

Accuracy is precision@1 on the test file (fastText: ``model.test``; ours: our predictor).
Writes ``bench/results/imdb_supervised-<time>.json`` and prints a table.
Usage: ``python bench/imdb_supervised.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fasttext
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imdb_data import prepare  # noqa: E402

from sagetext.algorithms import get  # noqa: E402
from sagetext.contract.channels import Channel  # noqa: E402
from sagetext.contract.checkpoints import Checkpoints  # noqa: E402
from sagetext.contract.context import TrainingContext  # noqa: E402
from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402
from sagetext.contract.paths import Paths  # noqa: E402
from sagetext.contract.settings import Settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {"dim": 10, "lr": 0.5, "wordNgrams": 2, "epoch": 5, "minCount": 1, "bucket": 2_000_000}
HYPERPARAMETERS = {"mode": "supervised", "vector_dim": "10", "learning_rate": "0.5", "word_ngrams": "2",
                   "epochs": "5", "min_count": "1", "buckets": "2000000"}
FASTTEXT_THREADS = 2


def run_fasttext(train: Path, test: Path, folder: Path) -> dict:
    start = time.perf_counter()
    model = fasttext.train_supervised(str(train), thread=FASTTEXT_THREADS, verbose=0, **SETTINGS)
    model.save_model(str(folder / "fasttext.bin"))
    end_to_end = time.perf_counter() - start
    start = time.perf_counter()
    fasttext.train_supervised(str(train), thread=FASTTEXT_THREADS, verbose=0, **{**SETTINGS, "epoch": 0})
    setup = time.perf_counter() - start
    _, precision, _ = model.test(str(test))
    return {"accuracy": precision, "end_to_end_s": end_to_end, "training_only_s": end_to_end - setup}


class _SgdTime(logging.Handler):
    seconds = float("nan")

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("SGD time in seconds: "):
            self.seconds = float(record.getMessage().rsplit(" ", 1)[1])


def run_ours(train: Path, test: Path, folder: Path) -> dict:
    root = folder / "opt_ml"
    channel_dir = root / "input" / "data" / "train"
    channel_dir.mkdir(parents=True, exist_ok=True)
    link = channel_dir / train.name
    if not link.exists():
        link.symlink_to(train)
    hp = parse(HYPERPARAMETERS, Spec.load("blazingtext"))
    ctx = TrainingContext(hp, {"train": Channel("train", paths=Paths(root))}, root / "model", root / "output",
                          Checkpoints(None, hp), settings=Settings.from_env())  # e.g. SAGETEXT_TRAIN_THREADS
    handler = _SgdTime()
    logging.getLogger("sagetext").addHandler(handler)
    logging.getLogger("sagetext").setLevel(logging.INFO)
    algorithm = get("blazingtext")
    try:
        start = time.perf_counter()
        algorithm.train(ctx)
        end_to_end = time.perf_counter() - start
    finally:
        logging.getLogger("sagetext").removeHandler(handler)
    return {"accuracy": _our_accuracy(algorithm.load(ctx.model_dir), test), "end_to_end_s": end_to_end,
            "training_only_s": handler.seconds}


def _our_accuracy(predictor, test: Path) -> float:
    lines = test.read_text("utf-8").splitlines()
    labels = [line.split(" ", 1)[0] for line in lines]
    answers = predictor.classify([line.split(" ", 1)[1] for line in lines], [1] * len(lines))
    return sum(a["label"][:1] == [label] for a, label in zip(answers, labels)) / len(lines)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                  if line.startswith("Model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "fasttext": getattr(fasttext, "__version__", "0.9.2 (fasttext-wheel)")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool (medians are reported)")
    args = parser.parse_args()
    train, test = prepare()
    runs: dict[str, list[dict]] = {"fasttext": [], "sagetext": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="imdb-bench-") as tmp:
        for _ in range(args.repeat):
            runs["fasttext"].append(run_fasttext(train, test, Path(tmp)))
            runs["sagetext"].append(run_ours(train, test, Path(tmp)))
    summary = {tool: {key: statistics.median(r[key] for r in results) for key in results[0]}
               for tool, results in runs.items()}
    result = {"benchmark": "imdb_supervised", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
              "settings": SETTINGS, "fasttext_threads": FASTTEXT_THREADS, "repeat": args.repeat,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "median": summary, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"imdb_supervised-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"IMDB supervised, median of {args.repeat} run(s); {result['machine']['cpu']}, "
          f"{result['machine']['cores']} cores; load average before {load_before[0]:.2f}")
    print(f"{'tool':<22}{'test accuracy':>15}{'end to end (s)':>16}{'training only (s)':>19}")
    for tool, name in (("fasttext", f"fastText 0.9.2 ({FASTTEXT_THREADS} thr)"), ("sagetext", "sagetext")):
        s = summary[tool]
        print(f"{name:<22}{s['accuracy']:>15.4f}{s['end_to_end_s']:>16.2f}{s['training_only_s']:>19.2f}")
    print(f"result: {path}")


if __name__ == "__main__":
    main()
