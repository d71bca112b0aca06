"""Benchmark: sagetext NTM vs gensim LDA on 20 Newsgroups (the ProdLDA data), side by side.

Data: ../shared/data/20newsgroups/prodlda_20news_clean (11,258 train / 7,487 test documents,
1,994 words). The training file is converted to RecordIO-protobuf (sparse, float32) with the
SageMaker SDK's writer and fed to NTM through its real channel reader, as a SageMaker job
would receive it. Both models get K=50 topics. Scored for each model with the same code:

* NPMI of each topic's top 10 words, document co-occurrence on the training corpus;
* TU of the top 10 words;
* test perplexity: NTM exp(ELBO loss / words); gensim exp(-log_perplexity) (natural base,
  gensim's own per-word bound), both upper bounds on the true perplexity;
* training throughput in documents per second (epochs x documents / seconds).

Run:  python bench/ntm_20news.py [--epochs N] [--hp name=value ...]
Writes bench/results/ntm_20news.json and prints a table. Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sagetext.algorithms.ntm import coherence, trainer  # noqa: E402
from sagetext.algorithms.ntm import model as ntm_model  # noqa: E402
from sagetext.contract.channels import Channel  # noqa: E402
from sagetext.contract.checkpoints import Checkpoints  # noqa: E402
from sagetext.contract.context import TrainingContext  # noqa: E402
from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402
from sagetext.contract.metrics import MetricLogger, configure_logging  # noqa: E402
from sagetext.contract.paths import Paths  # noqa: E402
from sagetext.contract.settings import Settings  # noqa: E402
from sagetext.distributed import runtime  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "20newsgroups" / "prodlda_20news_clean"
RESULTS = REPO / "bench" / "results" / "ntm_20news.json"
K = 50
# The recipe, as a SageMaker user would give it (strings).
RECIPE = {"feature_dim": "1994", "num_topics": str(K), "optimizer": "adam", "learning_rate": "0.002",
          "mini_batch_size": "64", "epochs": "100", "encoder_layers": "[100, 100]",
          "encoder_layers_activation": "relu", "num_patience_epochs": "101", "batch_norm": "false"}


def read_ldac(path: Path, vocab_size: int) -> list[list[tuple[int, int]]]:
    """LDA-C lines ``1 id:count ...`` (ids 1-based) as gensim bag-of-words lists (0-based)."""
    docs = []
    with gzip.open(path, "rt") as f:
        for line in f:
            pairs = [p.split(":") for p in line.split()[1:]]
            doc = sorted((int(i) - 1, int(c)) for i, c in pairs)
            assert all(0 <= i < vocab_size for i, _ in doc)
            docs.append(doc)
    return docs


def to_csr(docs: list[list[tuple[int, int]]], vocab_size: int):
    import scipy.sparse as sp
    rows = [r for r, doc in enumerate(docs) for _ in doc]
    cols = [i for doc in docs for i, _ in doc]
    vals = [c for doc in docs for _, c in doc]
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(docs), vocab_size))


class RecordingMetrics(MetricLogger):
    def __init__(self) -> None:
        super().__init__(enabled=True)
        self.values: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def log(self, name: str, value: float) -> None:
        super().log(name, value)
        self.values[name] = value
        self.counts[name] = self.counts.get(name, 0) + 1


def run_ntm(root: Path, train_docs, test_docs, vocab: list[str], extra: dict[str, str]) -> dict:
    from sagemaker_training import recordio as sdk
    paths = Paths(root)
    for name, docs in (("train", train_docs), ("test", test_docs)):
        folder = paths.channel_dir(name)
        folder.mkdir(parents=True)
        with open(folder / f"{name}.rec", "wb") as f:
            sdk._write_spmatrix_to_sparse_tensor(f, to_csr(docs, len(vocab)))
    aux = paths.channel_dir("auxiliary")
    aux.mkdir(parents=True)
    (aux / "vocab.txt").write_text("\n".join(vocab) + "\n")
    hp = parse({**RECIPE, **extra}, Spec.load("ntm"))
    metrics = RecordingMetrics()
    torch.manual_seed(hp["seed"])
    ctx = TrainingContext(
        hyperparameters=hp,
        channels={n: Channel(n, content_type=ct, paths=paths) for n, ct in
                  (("train", "application/x-recordio-protobuf"), ("test", "application/x-recordio-protobuf"),
                   ("auxiliary", "text/plain"))},
        model_dir=root / "model", output_data_dir=root / "output",
        checkpoints=Checkpoints(None, hp), metrics=metrics,
        device=runtime.choose_device(Settings.from_env().device))
    started = time.monotonic()
    trainer.train(ctx)
    seconds = time.monotonic() - started
    model = ntm_model.load(root / "model")
    epochs_run = metrics.counts["train:total_loss"]  # one line per epoch run (early stopping may end sooner)
    return {"topic_word": model.topic_word_logits().numpy(), "perplexity": metrics.values["test:perplexity"],
            "seconds": seconds, "epochs_run": epochs_run,
            "docs_per_s": epochs_run * len(train_docs) * hp["sub_sample"] / seconds,
            "device": ctx.device, "hyperparameters": {**RECIPE, **extra}}


def run_gensim(train_docs, test_docs, vocab: list[str]) -> dict:
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel
    id2word = Dictionary.from_corpus(train_docs, id2word=dict(enumerate(vocab)))
    started = time.monotonic()
    lda = LdaModel(corpus=train_docs, num_topics=K, id2word=id2word, random_state=0)
    seconds = time.monotonic() - started
    bound = lda.log_perplexity(test_docs)
    return {"topic_word": lda.get_topics(), "perplexity": float(np.exp(-bound)), "seconds": seconds,
            "docs_per_s": lda.passes * len(train_docs) / seconds, "device": "cpu",
            "hyperparameters": {"num_topics": K, "random_state": 0, "other": "gensim defaults"}}


def score(result: dict, train_docs) -> dict:
    top = coherence.top_words(result.pop("topic_word"), coherence.TOP_N)
    counter = coherence.CooccurrenceCounter(np.unique(top))
    ids = [np.array([i for i, _ in doc], dtype=np.int64) for doc in train_docs]
    for lo in range(0, len(ids), 2048):
        counter.add(ids[lo:lo + 2048])
    result.update(npmi=float(counter.npmi(top).mean()), tu=float(coherence.topic_uniqueness(top).mean()),
                  top_words=top.tolist())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hp", action="append", default=[], help="override a recipe hyperparameter, name=value")
    parser.add_argument("--skip-gensim", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON result")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default); 1 is fastest on a busy shared machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = dict(item.split("=", 1) for item in args.hp)
    configure_logging()
    logging.getLogger("gensim").setLevel(logging.WARNING)
    vocab = [line.split()[0] for line in (DATA / "vocab.txt").read_text().splitlines()]
    train_docs, test_docs = read_ldac(DATA / "train.feat.gz", len(vocab)), read_ldac(DATA / "test.feat.gz", len(vocab))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sagetext_ntm"] = score(run_ntm(Path(tmp), train_docs, test_docs, vocab, extra), train_docs)
    if not args.skip_gensim:
        results["gensim_lda"] = score(run_gensim(train_docs, test_docs, vocab), train_docs)
    for name, r in results.items():
        r["example_topics"] = [" ".join(vocab[i] for i in row) for row in r.pop("top_words")[:5]]
    report = {"benchmark": "ntm_20news", "date": datetime.date.today().isoformat(),
              "command": " ".join(["python"] + sys.argv), "torch_threads": torch.get_num_threads(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                         f"cuda {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
              "train_docs": len(train_docs), "test_docs": len(test_docs), "vocab": len(vocab), "num_topics": K,
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\n{'model':<14} {'NPMI':>7} {'TU':>6} {'test ppl':>9} {'train docs/s':>13} {'seconds':>8}  device")
    for name, r in results.items():
        print(f"{name:<14} {r['npmi']:7.3f} {r['tu']:6.3f} {r['perplexity']:9.1f} {r['docs_per_s']:13.0f} "
              f"{r['seconds']:8.1f}  {r['device']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
