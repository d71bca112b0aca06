"""Benchmark: sagetext NTM vs gensim LDA, topic quality and training time, side by side.

Corpora (../shared/data):
* ``20news``: 20 Newsgroups as ProdLDA's bag of words (11,258 train / 7,487 test documents,
  1,994 words), converted to sparse RecordIO-protobuf with the SageMaker SDK's writer;
* ``imdb``: the 50,000 IMDB reviews (train and test folders, all used for training) through
  ``sagetext ntm-prepare --vocab-size 2000``, cached outside the repository (``bench/imdb_data.py``);
* ``imdb10k``: 10,000 of those reviews, ``numpy.random.default_rng(0).choice(50000, 10000)``
  (the slice of the exploration runs in BENCHMARKS.md).

NTM trains through its real channel reader (``vocab.txt`` in the auxiliary channel, the test
channel when there is one), with one of three settings:
* ``defaults``: ``feature_dim`` and ``num_topics`` only, everything else SageMaker's default;
* ``free``: the same with ``SAGETEXT_NTM_DECODER=free`` (the free decoder matrix, NTM's default
  before the embedding decoder);
* ``recipe``: the tuned recipe of BENCHMARKS.md (adam 0.002, batch 64, 100 epochs, relu [100, 100],
  no early stopping).
Anchor, in the same run: gensim ``LdaModel(num_topics=K, passes=10, random_state=0)``.

Scored with the same code for both: NPMI of each topic's top 10 words from document
co-occurrence on the training corpus (averaged), TU of the top 10 words, test perplexity where
there is a test set (NTM exp(ELBO loss / words), gensim exp(-log_perplexity); both upper bounds),
wall seconds of the training call (NTM: reading, training, evaluation and topic scoring), and the
peak RSS of that call: each model trains in a fresh child process, which loads the corpus, resets
its high-water mark (``/proc/self/clear_refs``) and reads ``VmHWM`` when training returns (the
resident corpus, the same for every model, is included; ``rss_before_mb`` gives it).

Run:  python bench/ntm_topics.py [--corpus 20news imdb imdb10k] [--k 20 50 100]
      [--settings defaults free recipe] [--seed 0] [--threads 1] [--skip-lda]
Writes bench/results/ntm_topics.json and prints a table last.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import gzip
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

import imdb_data  # noqa: E402
from shared_data import SHARED  # noqa: E402

from sagetext.algorithms.ntm import coherence, prepare, trainer  # noqa: E402
from sagetext.algorithms.ntm import model as ntm_model  # noqa: E402
from sagetext.contract.channels import Channel  # noqa: E402
from sagetext.contract.checkpoints import Checkpoints  # noqa: E402
from sagetext.contract.context import TrainingContext  # noqa: E402
from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402
from sagetext.contract.metrics import MetricLogger, configure_logging  # noqa: E402
from sagetext.contract.paths import Paths  # noqa: E402
from sagetext.contract.settings import Settings  # noqa: E402
from sagetext.data import bow  # noqa: E402
from sagetext.distributed import runtime  # noqa: E402

NEWS = SHARED / "20newsgroups" / "prodlda_20news_clean"
RESULTS = REPO / "bench" / "results" / "ntm_topics.json"
IMDB_VOCAB = 2000
LDA_PASSES = 10
RECIPE = {"optimizer": "adam", "learning_rate": "0.002", "mini_batch_size": "64", "epochs": "100",
          "encoder_layers": "[100, 100]", "encoder_layers_activation": "relu", "num_patience_epochs": "101",
          "batch_norm": "false"}
RECORDIO = "application/x-recordio-protobuf"

Docs = list[list[tuple[int, int]]]


def read_ldac(path: Path, vocab_size: int) -> Docs:
    """LDA-C lines ``1 id:count ...`` (ids 1-based) as gensim bag-of-words lists (0-based)."""
    docs = []
    with gzip.open(path, "rt") as f:
        for line in f:
            pairs = [p.split(":") for p in line.split()[1:]]
            doc = sorted((int(i) - 1, int(c)) for i, c in pairs)
            assert all(0 <= i < vocab_size for i, _ in doc)
            docs.append(doc)
    return docs


def to_recordio(docs: Docs, vocab_size: int) -> bytes:
    """The SageMaker SDK's sparse float32 Records of ``docs``."""
    import scipy.sparse as sp
    from sagemaker_training import recordio as sdk

    rows = [r for r, doc in enumerate(docs) for _ in doc]
    cols = [i for doc in docs for i, _ in doc]
    vals = [c for doc in docs for _, c in doc]
    matrix = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(docs), vocab_size))
    out = io.BytesIO()
    sdk._write_spmatrix_to_sparse_tensor(out, matrix)
    return out.getvalue()


def news_corpus() -> tuple[list[str], Docs, Docs | None]:
    vocab = [line.split()[0] for line in (NEWS / "vocab.txt").read_text().splitlines()]
    return vocab, read_ldac(NEWS / "train.feat.gz", len(vocab)), read_ldac(NEWS / "test.feat.gz", len(vocab))


def imdb_corpus() -> tuple[list[str], Docs, Docs | None]:
    """All 50,000 reviews through ntm-prepare (cached); read back with NTM's own reader."""
    folder = imdb_data.raw_reviews()
    out = imdb_data.cache_dir() / "imdb" / f"ntm{IMDB_VOCAB}"
    if not (out / prepare.TRAIN_FILE).exists():
        code = prepare.main(["--train", str(folder / "train"), str(folder / "test"), "--vocab-size",
                             str(IMDB_VOCAB), "--output-dir", str(out)])
        assert code == 0
    vocab = (out / bow.VOCAB_FILE).read_text("utf-8").splitlines()
    with open(out / prepare.TRAIN_FILE, "rb") as f:
        docs = [list(zip(d.ids.tolist(), d.counts.astype(int).tolist()))
                for d in bow.read_stream(io.BufferedReader(f), "train.rec", len(vocab), RECORDIO)]
    return vocab, docs, None


def corpus_named(name: str) -> tuple[list[str], Docs, Docs | None]:
    if name == "20news":
        return news_corpus()
    vocab, docs, _ = imdb_corpus()
    if name == "imdb10k":
        picked = np.random.default_rng(0).choice(len(docs), 10000, replace=False)
        docs = [docs[i] for i in picked if docs[i]]
    return vocab, docs, None


class RecordingMetrics(MetricLogger):
    def __init__(self) -> None:
        super().__init__(enabled=True)
        self.values: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def log(self, name: str, value: float, step: int | None = None) -> None:
        super().log(name, value, step)
        self.values[name] = value
        self.counts[name] = self.counts.get(name, 0) + 1


def run_ntm(root: Path, train_docs: Docs, test_docs: Docs | None, vocab: list[str], hyperparameters: dict[str, str]
            ) -> dict:
    paths = Paths(root)
    channels = {}
    for name, docs in (("train", train_docs), ("test", test_docs)):
        if docs is None:
            continue
        folder = paths.channel_dir(name)
        folder.mkdir(parents=True)
        (folder / f"{name}.rec").write_bytes(to_recordio(docs, len(vocab)))
        channels[name] = Channel(name, content_type=RECORDIO, paths=paths)
    aux = paths.channel_dir("auxiliary")
    aux.mkdir(parents=True)
    (aux / bow.VOCAB_FILE).write_text("\n".join(vocab) + "\n")
    channels["auxiliary"] = Channel("auxiliary", content_type="text/plain", paths=paths)
    hp = parse(hyperparameters, Spec.load("ntm"))
    metrics = RecordingMetrics()
    torch.manual_seed(hp["seed"])
    ctx = TrainingContext(hyperparameters=hp, channels=channels, model_dir=root / "model",
                          output_data_dir=root / "output", checkpoints=Checkpoints(None, hp), metrics=metrics,
                          device=runtime.choose_device(Settings.from_env().device), settings=Settings.from_env())
    started = time.monotonic()
    trainer.train(ctx)
    seconds = time.monotonic() - started
    model = ntm_model.load(root / "model")
    return {"topic_word": model.topic_word_logits().numpy(), "perplexity": metrics.values.get("test:perplexity"),
            "seconds": seconds, "epochs_run": metrics.counts["train:total_loss"], "device": ctx.device,
            "hyperparameters": hyperparameters}


def run_lda(train_docs: Docs, test_docs: Docs | None, vocab: list[str], k: int) -> dict:
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel

    id2word = Dictionary.from_corpus(train_docs, id2word=dict(enumerate(vocab)))
    started = time.monotonic()
    lda = LdaModel(corpus=train_docs, num_topics=k, id2word=id2word, passes=LDA_PASSES, random_state=0)
    seconds = time.monotonic() - started
    perplexity = float(np.exp(-lda.log_perplexity(test_docs))) if test_docs else None
    return {"topic_word": lda.get_topics(), "perplexity": perplexity, "seconds": seconds, "epochs_run": LDA_PASSES,
            "device": "cpu", "hyperparameters": {"num_topics": k, "passes": LDA_PASSES, "random_state": 0}}


def score(result: dict, counter_docs: list[np.ndarray], vocab: list[str]) -> dict:
    top = coherence.top_words(result.pop("topic_word"), coherence.TOP_N)
    counter = coherence.CooccurrenceCounter(np.unique(top))
    for lo in range(0, len(counter_docs), 2048):
        counter.add(counter_docs[lo:lo + 2048])
    result.update(npmi=float(counter.npmi(top).mean()), tu=float(coherence.topic_uniqueness(top).mean()),
                  example_topics=[" ".join(vocab[i] for i in row) for row in top[:5]])
    return result


def memory_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def train_and_score(corpus: str, k: int, model: str, seed: int, threads: int) -> dict:
    """One row, in a fresh child process (``ProcessPoolExecutor`` with spawn): load ``corpus``,
    train ``model`` (``ntm-defaults``, ``ntm-free``, ``ntm-recipe`` or ``lda``), score it."""
    if threads:
        torch.set_num_threads(threads)
    configure_logging()
    logging.getLogger("gensim").setLevel(logging.WARNING)
    vocab, train_docs, test_docs = corpus_named(corpus)
    counter_docs = [np.array([i for i, _ in doc], dtype=np.int64) for doc in train_docs]
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
    before = memory_mb("VmRSS")
    if model == "lda":
        result = run_lda(train_docs, test_docs, vocab, k)
        name = f"lda-{LDA_PASSES}-passes"
    else:
        settings = model.removeprefix("ntm-")
        if settings == "free":
            os.environ["SAGETEXT_NTM_DECODER"] = "free"
        hp = {"feature_dim": str(len(vocab)), "num_topics": str(k), "seed": str(seed),
              **(RECIPE if settings == "recipe" else {})}
        with tempfile.TemporaryDirectory() as tmp:
            result = run_ntm(Path(tmp), train_docs, test_docs, vocab, hp)
        name = model
    peak = memory_mb("VmHWM")
    return {"corpus": corpus, "k": k, "model": name, "seed": seed if model != "lda" else 0,
            "rss_before_mb": round(before), "peak_rss_mb": round(peak), **score(result, counter_docs, vocab)}


HEADER = (f"{'corpus':<7} {'K':>4} {'model':<16} {'seed':>4} {'NPMI':>6} {'TU':>6} {'test ppl':>9} {'epochs':>6} "
          f"{'seconds':>8} {'peak MB':>8}")


def table_line(r: dict) -> str:
    ppl = f"{r['perplexity']:9.1f}" if r["perplexity"] is not None else f"{'-':>9}"
    return (f"{r['corpus']:<7} {r['k']:>4} {r['model']:<16} {r['seed']:>4} {r['npmi']:6.3f} {r['tu']:6.3f} {ppl} "
            f"{r['epochs_run']:>6} {r['seconds']:8.1f} {r['peak_rss_mb']:>8}")


def add_row(args: argparse.Namespace, rows: list[dict], row: dict) -> None:
    """Record one result and rewrite the JSON at once, so that an interrupted grid keeps what it ran."""
    rows.append(row)
    print(f"{HEADER}\n{table_line(row)}", flush=True)
    report = {"benchmark": "ntm_topics", "date": datetime.date.today().isoformat(),
              "command": " ".join(["python"] + sys.argv), "torch_threads": torch.get_num_threads(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                         f"cuda {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", nargs="+", default=["20news", "imdb"], choices=["20news", "imdb", "imdb10k"])
    parser.add_argument("--k", nargs="+", type=int, default=[20, 50, 100], help="numbers of topics")
    parser.add_argument("--settings", nargs="+", default=["defaults"], choices=["defaults", "free", "recipe"])
    parser.add_argument("--seed", nargs="+", type=int, default=[0], help="NTM's seed hyperparameter(s)")
    parser.add_argument("--skip-lda", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON result")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default); 1 is fastest on a busy shared machine")
    args = parser.parse_args()  # --threads acts in each child (train_and_score)
    rows: list[dict] = []
    runs = [(corpus, k, f"ntm-{settings}", seed) for corpus in args.corpus for k in args.k
            for settings in args.settings for seed in args.seed]
    if not args.skip_lda:
        runs += [(corpus, k, "lda", 0) for corpus in args.corpus for k in args.k]
    runs.sort(key=lambda run: (args.corpus.index(run[0]), args.k.index(run[1])))  # each LDA beside its NTM rows
    for corpus, k, model, seed in runs:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
            add_row(args, rows, child.submit(train_and_score, corpus, k, model, seed, args.threads).result())
    print(f"\n{HEADER}")
    for r in rows:
        print(table_line(r))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
