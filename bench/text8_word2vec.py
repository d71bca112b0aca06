"""Benchmark: BlazingText word2vec modes on CPU (through ``train_word2vec``) against plain gensim.

Corpus: ../shared/data/wiki_en_text8like (a text8 stand-in, 16.9M words), decompressed once
into a cache folder outside the repository ($SAGETEXT_CACHE, default ~/.cache/sagetext).
Settings for both: vector_dim=100 window=5 negative=5 sample=1e-4 min_count=5 epochs=5
alpha=0.05 (BlazingText's default; gensim's own default is 0.025), 2 worker threads.

Reported per run: Google analogy accuracy (gensim's questions-words.txt, restricted to the 30k
most frequent words, the usual word2vec convention; unanswerable questions are skipped), WS-353
(all) and SimLex-999 Spearman rho, training throughput in raw words/s (words before
subsampling, as BlazingText counts them) and training seconds.

    python bench/text8_word2vec.py [cbow] [skipgram]

Writes bench/results/text8_word2vec.json and prints a table.
"""

from __future__ import annotations

import json
import logging
import lzma
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gensim
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import LineSentence
from gensim.test.utils import datapath

from sagetext.algorithms.blazingtext.word2vec import evaluation
from sagetext.algorithms.blazingtext.word2vec.gensim_engine.trainer import train_word2vec
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.metrics import configure_logging
from sagetext.contract.paths import Paths

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CORPUS_XZ = SHARED / "wiki_en_text8like" / "wiki2015_text8like.xz"
SIMLEX = SHARED / "word_similarity" / "EN-SIMLEX-999.txt"
RESULT = REPO / "bench" / "results" / "text8_word2vec.json"
SETTINGS = {"vector_dim": "100", "window_size": "5", "negative_samples": "5", "sampling_threshold": "0.0001",
            "min_count": "5", "epochs": "5", "learning_rate": "0.05"}
WORKERS = 2


def corpus_file() -> Path:
    cache = Path(os.environ.get("SAGETEXT_CACHE", Path.home() / ".cache" / "sagetext")) / "text8like"
    target = cache / "wiki2015_text8like.txt"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with lzma.open(CORPUS_XZ, "rb") as src, open(target.with_suffix(".part"), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        target.with_suffix(".part").rename(target)
    return target


def scores(kv: KeyedVectors, simlex_file: Path = SIMLEX) -> dict[str, float]:
    """Analogies (gensim's set and method), WS-353 all and SimLex-999 of gensim KeyedVectors."""
    analogy, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)
    lookup = lambda w: kv[w] if w in kv else None  # noqa: E731
    ws = evaluation.similarity_score(evaluation.WORDSIM_DIR / "EN-WS-353-ALL.txt", lookup)
    simlex = evaluation.similarity_score(simlex_file, lookup)
    return {"analogy_accuracy": analogy, "ws353_all_rho": ws["spearmans_rho"],
            "simlex999_rho": simlex["spearmans_rho"], "vocab": len(kv)}


class LogLines(logging.Handler):
    """Collects the messages of the loggers it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_ours(mode: str, corpus: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "input" / "data" / "train").mkdir(parents=True)
        (root / "input" / "data" / "train" / corpus.name).symlink_to(corpus)
        hp = parse({"mode": mode, **SETTINGS}, Spec.load("blazingtext"))
        ctx = TrainingContext(hp, {"train": Channel("train", paths=Paths(root))}, root / "model",
                              root / "output", Checkpoints(None, hp))
        capture = LogLines()
        logging.getLogger("sagetext").addHandler(capture)
        try:
            start = time.monotonic()
            train_word2vec(ctx)
            wall = time.monotonic() - start
        finally:
            logging.getLogger("sagetext").removeHandler(capture)
        text = "\n".join(capture.lines)
        tokens = int(re.search(r"out of (\d+) tokens", text).group(1))
        seconds = float(re.search(r"Total training time in seconds: (\S+)", text).group(1))
        rate = tokens * int(SETTINGS["epochs"]) / seconds  # the logged average, unrounded
        eval_json = json.loads((ctx.model_dir / "eval.json").read_text())
        kv = KeyedVectors.load_word2vec_format(str(ctx.model_dir / "vectors.txt"), binary=False)
        return {"words_per_sec": rate, "train_seconds": seconds, "wall_seconds": wall,
                "mean_rho_eval_json": eval_json["mean_rho"], **scores(kv)}


def run_gensim(mode: str, corpus: Path, workers: int = WORKERS, simlex_file: Path = SIMLEX) -> dict[str, object]:
    """Plain gensim with the benchmark's settings, the anchor."""
    model = Word2Vec(sg=0 if mode == "cbow" else 1, vector_size=100, window=5, negative=5, sample=1e-4,
                     min_count=5, epochs=5, alpha=0.05, min_alpha=0.05 * 1e-4, workers=workers, seed=0)
    sentences = LineSentence(str(corpus))
    model.build_vocab(sentences)
    start = time.monotonic()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    seconds = time.monotonic() - start
    return {"words_per_sec": model.corpus_total_words * model.epochs / seconds, "train_seconds": seconds,
            "workers": workers, **scores(model.wv, simlex_file)}


def main(modes: list[str]) -> None:
    configure_logging()
    corpus = corpus_file()
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    results["machine"] = {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": os.cpu_count(), "gensim": gensim.__version__, "workers": WORKERS}
    results["settings"] = SETTINGS
    results["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    for mode in modes:
        results[mode] = {"sagetext": run_ours(mode, corpus), "gensim": run_gensim(mode, corpus)}
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'mode':9} {'run':9} {'analogy':>8} {'WS353':>7} {'SimLex':>7} {'Mwords/s':>9} {'train s':>8}")
    for mode in [m for m in ("cbow", "skipgram") if m in results]:
        for run in ("sagetext", "gensim"):
            r = results[mode][run]
            print(f"{mode:9} {run:9} {r['analogy_accuracy']:8.4f} {r['ws353_all_rho']:7.4f} "
                  f"{r['simlex999_rho']:7.4f} {r['words_per_sec'] / 1e6:9.3f} {r['train_seconds']:8.1f}")
    print(f"\nwritten: {RESULT}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["cbow", "skipgram"])
