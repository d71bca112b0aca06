"""Benchmark: BlazingText word2vec on CPU (our native engine) against gensim, measured in one run.

Corpus: ../shared/data/wiki_en_text8like (a text8 stand-in, 16.9M words), decompressed once
into a cache folder outside the repository ($SAGETEXT_CACHE, default ~/.cache/sagetext).
Settings for both: vector_dim=100 window_size=5 negative_samples=5 sampling_threshold=1e-4
min_count=5 epochs=5 learning_rate=0.05 (BlazingText's default; gensim's own default is 0.025),
``--threads`` threads for both (default 2).

Parts (all by default, in this order):

- ``engines``: per mode, our engine through its ``train_word2vec`` and plain gensim (Word2Vec,
  or FastText for the ``+subwords`` modes, with BlazingText's min_char=3 max_char=6
  buckets=2000000) in the same process, one after the other. Reported: Google analogy accuracy
  (gensim's questions-words.txt, restricted to the 30k most frequent words; questions with an
  unknown word skipped), WS-353 (all) and SimLex-999 Spearman rho (subword models answer
  unknown words from their n-grams), raw words/s over the training passes (words before
  subsampling, as BlazingText counts them) and training seconds; ours is scored on the
  artifacts it wrote. batch_skipgram (batch_size=11) is compared with gensim's skip-gram.
- ``train``: the real ``./train`` executable end to end (reading the channel, vocabulary,
  training, vectors.txt / vectors.bin, eval.json) for each mode, wall seconds against
  gensim's training seconds of the same mode from the ``engines`` part.
- ``hosts``: batch_skipgram on two simulated hosts on loopback (two resourceconfig.json, gloo,
  one thread each so that both fit the cores of one machine), against one host with those
  threads together: both hosts' shard and words/s lines, and the quality of rank 0's model,
  once for each number of model combinations an epoch in ``--host-syncs`` (default 64, the engine's).

    python bench/text8_word2vec.py [--parts engines,train,hosts] [--modes cbow,skipgram,...] [--threads 2]
                                   [--epochs 5] [--host-syncs 16,64] [--seed 0] [--no-gensim]

Writes bench/results/text8_word2vec.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import lzma
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gensim
from gensim.models import FastText, KeyedVectors, Word2Vec
from gensim.models.word2vec import LineSentence
from gensim.test.utils import datapath
from shared_data import SHARED

from sagetext.algorithms.blazingtext.word2vec import evaluation
from sagetext.algorithms.blazingtext.word2vec.native_engine.trainer import EngineSettings, train_word2vec
from sagetext.algorithms.blazingtext.word2vec.vectors import read_vectors
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.metrics import configure_logging
from sagetext.contract.paths import Paths

REPO = Path(__file__).resolve().parents[1]
CORPUS_XZ = SHARED / "wiki_en_text8like" / "wiki2015_text8like.xz"
SIMLEX = SHARED / "word_similarity" / "EN-SIMLEX-999.txt"
RESULT = REPO / "bench" / "results" / "text8_word2vec.json"
SETTINGS = {"vector_dim": "100", "window_size": "5", "negative_samples": "5", "sampling_threshold": "0.0001",
            "min_count": "5", "epochs": "5", "learning_rate": "0.05"}
SUBWORDS = {"subwords": "true", "min_char": "3", "max_char": "6", "buckets": "2000000"}
MODES = ["cbow", "skipgram", "batch_skipgram", "cbow+subwords", "skipgram+subwords"]
PARTS = ["engines", "train", "hosts"]


def corpus_file() -> Path:
    cache = Path(os.environ.get("SAGETEXT_CACHE", Path.home() / ".cache" / "sagetext")) / "text8like"
    target = cache / "wiki2015_text8like.txt"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with lzma.open(CORPUS_XZ, "rb") as src, open(target.with_suffix(".part"), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        target.with_suffix(".part").rename(target)
    return target


def scores(kv: KeyedVectors, lookup: Any = None) -> dict[str, float]:
    """Analogies over the vocabulary (gensim's set and method), WS-353 all and SimLex-999 with
    ``lookup`` (default: the vocabulary's vectors; subword models answer unknown words too)."""
    analogy, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)
    lookup = lookup or (lambda w: kv[w] if w in kv.key_to_index else None)
    ws = evaluation.similarity_score(evaluation.WORDSIM_DIR / "EN-WS-353-ALL.txt", lookup)
    simlex = evaluation.similarity_score(SIMLEX, lookup)
    return {"analogy_accuracy": analogy, "ws353_all_rho": ws["spearmans_rho"],
            "simlex999_rho": simlex["spearmans_rho"], "vocab": len(kv.key_to_index)}


def hyperparameters(mode: str) -> dict[str, str]:
    base, _, extra = mode.partition("+")
    return {"mode": base, **SETTINGS, **(SUBWORDS if extra == "subwords" else {})}


class LogLines(logging.Handler):
    """Collects the messages of the loggers it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def channel_root(root: Path, corpus: Path) -> Path:
    (root / "input" / "data" / "train").mkdir(parents=True)
    (root / "input" / "data" / "train" / corpus.name).symlink_to(corpus)
    return root


def run_ours(mode: str, corpus: Path, threads: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = channel_root(Path(tmp), corpus)
        hp = parse(hyperparameters(mode), Spec.load("blazingtext"))
        ctx = TrainingContext(hp, {"train": Channel("train", paths=Paths(root))}, root / "model",
                              root / "output", Checkpoints(None, hp))
        capture = LogLines()
        logging.getLogger("sagetext").addHandler(capture)
        try:
            start = time.monotonic()
            train_word2vec(ctx, EngineSettings(threads=threads))
            wall = time.monotonic() - start
        finally:
            logging.getLogger("sagetext").removeHandler(capture)
        text = "\n".join(capture.lines)
        tokens = int(re.search(r"out of (\d+) tokens", text).group(1))
        seconds = float(re.search(r"Total training time in seconds: (\S+)", text).group(1))
        eval_json = json.loads((ctx.model_dir / "eval.json").read_text())
        kv = KeyedVectors.load_word2vec_format(str(ctx.model_dir / "vectors.txt"), binary=False)
        vectors = read_vectors(ctx.model_dir / "vectors.bin")
        return {"words_per_sec": tokens * int(SETTINGS["epochs"]) / seconds, "train_seconds": seconds,
                "wall_seconds": wall, "threads": threads, "mean_rho_eval_json": eval_json["mean_rho"],
                **scores(kv, vectors.vector)}


def run_gensim(mode: str, corpus: Path, workers: int, seed: int) -> dict[str, object]:
    """Plain gensim with the benchmark's settings, the anchor (FastText for subword modes)."""
    base, _, extra = mode.partition("+")
    common = dict(sg=0 if base == "cbow" else 1, vector_size=100, window=5, negative=5, sample=1e-4, min_count=5,
                  epochs=int(SETTINGS["epochs"]), alpha=0.05, min_alpha=0.05 * 1e-4, workers=workers, seed=seed)
    model = FastText(min_n=3, max_n=6, bucket=2_000_000, **common) if extra else Word2Vec(**common)
    sentences = LineSentence(str(corpus))
    model.build_vocab(sentences)
    start = time.monotonic()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    seconds = time.monotonic() - start
    kv = model.wv
    lookup = (lambda w: kv[w]) if extra else None
    return {"words_per_sec": model.corpus_total_words * model.epochs / seconds, "train_seconds": seconds,
            "workers": workers, "model": type(model).__name__, **scores(kv, lookup)}


def train_env(root: Path, threads: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "SAGEMAKER_BASE_DIR": str(root), "SAGETEXT_ALGORITHM": "blazingtext",
            "SAGETEXT_DEVICE": "cpu", "SAGETEXT_TRAIN_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **extra}


def opt_ml(root: Path, corpus: Path, hp: dict[str, str]) -> Path:
    channel_root(root, corpus)
    (root / "input" / "config").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hp))
    (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}}))
    return root


def run_train_executable(mode: str, corpus: Path, threads: int) -> dict[str, object]:
    """``./train`` as the image runs it, end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        root = opt_ml(Path(tmp) / "opt_ml", corpus, hyperparameters(mode))
        start = time.monotonic()
        done = subprocess.run([sys.executable, str(REPO / "train")], env=train_env(root, threads),
                              capture_output=True, text=True)
        wall = time.monotonic() - start
        if done.returncode != 0:
            raise RuntimeError(f"./train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        rho = json.loads((root / "model" / "eval.json").read_text())["mean_rho"]
        return {"wall_seconds": wall, "mean_rho_eval_json": rho, "threads": threads}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_hosts(corpus: Path, threads: int, syncs: int) -> dict[str, object]:
    """batch_skipgram on two hosts on loopback, ``threads // 2`` threads each (at least 1), the
    models combined ``syncs`` times an epoch."""
    hosts, port = ["127.0.0.1", "127.0.0.2"], str(free_port())
    per_host = max(1, threads // 2)
    with tempfile.TemporaryDirectory() as tmp:
        processes, roots = [], []
        start = time.monotonic()
        for host in hosts:
            root = opt_ml(Path(tmp) / host, corpus, {"mode": "batch_skipgram", **SETTINGS})
            (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
                {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}))
            roots.append(root)
            processes.append(subprocess.Popen([sys.executable, str(REPO / "train")],
                                              env=train_env(root, per_host, SAGETEXT_MASTER_PORT=port,
                                                            SAGETEXT_WORD2VEC_SYNCS=str(syncs)),
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [p.communicate()[0] for p in processes]
        wall = time.monotonic() - start
        if any(p.returncode != 0 for p in processes):
            raise RuntimeError("two-host run failed:\n" + "\n----\n".join(o[-3000:] for o in outputs))
        kv = KeyedVectors.load_word2vec_format(str(roots[0] / "model" / "vectors.txt"), binary=False)
        hosts_lines = [[line for line in out.splitlines() if re.search(r"Worker \d of \d", line)] for out in outputs]
        speeds = [float(m.group(1)) for lines in hosts_lines for line in lines
                  if (m := re.search(r"([0-9.]+) million words/sec", line))]
        return {"wall_seconds": wall, "threads_per_host": per_host, "syncs_per_epoch": syncs, "host_lines": hosts_lines,
                "host_million_words_per_sec": speeds, **scores(kv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", default=SETTINGS["epochs"], help="5, as the figures; fewer for a quick check")
    parser.add_argument("--seed", type=int, default=0, help="the seed hyperparameter for ours, seed= for gensim")
    parser.add_argument("--no-gensim", action="store_true", help="engines part: our runs only (seed spread)")
    parser.add_argument("--host-syncs", default="64", help="hosts part: model combinations an epoch, e.g. 16,64")
    args = parser.parse_args()
    SETTINGS["epochs"] = args.epochs
    SETTINGS["seed"] = str(args.seed)
    parts, modes = args.parts.split(","), args.modes.split(",")
    configure_logging()
    corpus = corpus_file()
    results: dict[str, Any] = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    if "wall_seconds" in results.get("hosts", {}):  # written before --host-syncs: one run at 16
        results["hosts"] = {"syncs=16": results["hosts"]}
    results.update(machine={"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "gensim": gensim.__version__, "threads": args.threads},
                   settings=SETTINGS, date=time.strftime("%Y-%m-%d %H:%M:%S"))

    def save() -> None:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=2) + "\n")

    if "engines" in parts:
        anchors: dict[str, dict[str, object]] = {}  # gensim runs of this invocation, by gensim mode
        for mode in modes:
            results.setdefault("engines", {})[mode] = {"sagetext": run_ours(mode, corpus, args.threads)}
            save()
            if args.no_gensim:
                continue
            anchor = "skipgram" if mode == "batch_skipgram" else mode
            if anchor not in anchors:
                anchors[anchor] = run_gensim(anchor, corpus, args.threads, args.seed)
            results["engines"][mode]["gensim"] = anchors[anchor]
            save()
    if "train" in parts:
        for mode in modes:
            results.setdefault("train", {})[mode] = run_train_executable(mode, corpus, args.threads)
            save()
    if "hosts" in parts:
        results["hosts"] = {}
        for syncs in [int(n) for n in args.host_syncs.split(",")]:
            results["hosts"][f"syncs={syncs}"] = run_two_hosts(corpus, args.threads, syncs)
            save()
    print_tables(results)
    print(f"\nwritten: {RESULT}")


def print_tables(results: dict[str, Any]) -> None:
    engines = results.get("engines", {})
    print(f"\n{'mode':18} {'run':9} {'analogy':>8} {'WS353':>7} {'SimLex':>7} {'Mwords/s':>9} {'train s':>8} "
          f"{'speed-up':>8}")
    for mode in [m for m in MODES if m in engines]:
        for run in [r for r in ("sagetext", "gensim") if r in engines[mode]]:
            r = engines[mode][run]
            ratio = r["words_per_sec"] / engines[mode].get("gensim", r)["words_per_sec"]
            print(f"{mode:18} {run:9} {r['analogy_accuracy']:8.4f} {r['ws353_all_rho']:7.4f} "
                  f"{r['simlex999_rho']:7.4f} {r['words_per_sec'] / 1e6:9.3f} {r['train_seconds']:8.1f} {ratio:7.2f}x")
    for mode, r in results.get("train", {}).items():
        gensim_seconds = engines.get(mode, {}).get("gensim", {}).get("train_seconds", float("nan"))
        print(f"./train {mode}: {r['wall_seconds']:.1f} s end to end (eval.json mean_rho "
              f"{r['mean_rho_eval_json']:.4f}); gensim's training alone {gensim_seconds:.1f} s: "
              f"{r['wall_seconds'] / gensim_seconds:.2f} of it")
    for label, hosts in results.get("hosts", {}).items():
        print(f"two hosts, batch_skipgram ({hosts['threads_per_host']} thread(s) each, {label}): analogy "
              f"{hosts['analogy_accuracy']:.4f} WS353 {hosts['ws353_all_rho']:.4f} "
              f"SimLex {hosts['simlex999_rho']:.4f}, {hosts['wall_seconds']:.1f} s end to end; "
              f"host words/s (millions): {hosts['host_million_words_per_sec']}")
    one = engines.get("batch_skipgram", {}).get("sagetext")
    if results.get("hosts") and one:
        print(f"one host, batch_skipgram: analogy {one['analogy_accuracy']:.4f} WS353 {one['ws353_all_rho']:.4f} "
                  f"SimLex {one['simlex999_rho']:.4f}")


if __name__ == "__main__":
    main()
