"""Peak RSS of training on each algorithm's data set once vs the same data repeated 4 times
(issue 9 §6: "training reads channels as streams": the two should be within 20 %).

Each job runs the real ``train`` executable in a fresh child; peak RSS is that child's ``ru_maxrss``
(the largest resident set any one of its processes reached), read by a small wrapper process.

Data (../shared/data), each job short (one epoch or a few batches: reading the channel is the
point, not the training):
* ntm: 20 Newsgroups train (11,258 documents, 1,994 words), sparse RecordIO-protobuf written
  with the SageMaker SDK's writer; epochs=1.
* seq2seq: Multi30k en->de train (29,000 pairs), prepared with seq2seq-prepare; 20 batches.
* supervised: IMDB train (25,000 reviews, ``bench/imdb_data.py``); epochs=1.
* word2vec: the first 24 MB of the text8-like corpus; skipgram, epochs=1, vector_dim=50.

"Repeated 4 times" = the channel holds four copies of the file.

Run:  python bench/peak_rss.py [--algorithms ntm,seq2seq,supervised,word2vec]
Writes bench/results/peak_rss-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import io
import json
import lzma
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from shared_data import SHARED  # noqa: E402

from tests.conftest import FakeOptMl  # noqa: E402

RESULTS = REPO / "bench" / "results"
# Runs the job as its only child, so RUSAGE_CHILDREN is that job's peak; its log goes to $PEAK_RSS_LOG.
WRAPPER = ("import os, resource, subprocess, sys; log = open(os.environ['PEAK_RSS_LOG'], 'w'); "
           "r = subprocess.run(sys.argv[1:], stdout=log, stderr=subprocess.STDOUT); "
           "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
def ntm_files(work: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    import numpy as np
    import scipy.sparse as sp
    from sagemaker_training import recordio as sdk

    rows, cols, vals = [], [], []
    with gzip.open(SHARED / "20newsgroups" / "prodlda_20news_clean" / "train.feat.gz", "rt") as f:
        for number, line in enumerate(f):
            for pair in line.split()[1:]:
                word, n = pair.split(":")
                rows.append(number), cols.append(int(word) - 1), vals.append(float(n))
    matrix = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(number + 1, 1994))
    out = io.BytesIO()
    sdk._write_spmatrix_to_sparse_tensor(out, matrix)
    hp = {"feature_dim": "1994", "num_topics": "20", "epochs": "1", "mini_batch_size": "64"}
    return hp, {"train.rec": out.getvalue()}


def lay_out(algorithm: str, root: Path, repeat: int, cache: Path) -> tuple[list[str], dict[str, str]]:
    """The job folder; returns (command, environment)."""
    opt_ml = FakeOptMl(root)
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(root), "SAGETEXT_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    train = [sys.executable, str(REPO / "train")]
    if algorithm == "ntm":
        hp, files = ntm_files(cache)
        opt_ml.hyperparameters(hp)
        opt_ml.channel("train", {f"part{i}.rec": files["train.rec"] for i in range(repeat)})
        config = root / "input" / "config" / "inputdataconfig.json"
        data = json.loads(config.read_text())
        data["train"]["ContentType"] = "application/x-recordio-protobuf"
        config.write_text(json.dumps(data))
        return train, {**env, "SAGETEXT_ALGORITHM": "ntm"}
    if algorithm == "seq2seq":
        import multi30k_seq2seq as m30k

        files = m30k.tokenised_files(cache / "multi30k")
        prepared = m30k.prepared(files, cache / "multi30k", "en", "de")
        opt_ml.hyperparameters({"max_num_batches": "20", "checkpoint_frequency_num_batches": "20",
                                "rnn_num_hidden": "64", "num_embed_source": "32", "num_embed_target": "32",
                                "bleu_sample_size": "10"})
        train_rec = (prepared / "train.rec").read_bytes()
        opt_ml.channel("train", {f"train{i}.rec": train_rec for i in range(repeat)})
        opt_ml.channel("validation", {"val.rec": (prepared / "val.rec").read_bytes()})
        opt_ml.channel("vocab", {name: (prepared / name).read_bytes() for name in ("vocab.src.json", "vocab.trg.json")})
        return train, {**env, "SAGETEXT_ALGORITHM": "seq2seq"}
    if algorithm == "supervised":
        import imdb_data

        train_file, _ = imdb_data.prepare()
        opt_ml.hyperparameters({"mode": "supervised", "epochs": "1", "min_count": "1", "vector_dim": "10"})
        text = train_file.read_bytes()
        opt_ml.channel("train", {f"train{i}.txt": text for i in range(repeat)})
        return train, {**env, "SAGETEXT_ALGORITHM": "blazingtext"}
    if algorithm == "word2vec":
        corpus = cache / "text8-24MB.txt"
        if not corpus.exists():
            with lzma.open(SHARED / "wiki_en_text8like" / "wiki2015_text8like.xz", "rb") as f:
                corpus.write_bytes(f.read(24_000_000).rsplit(b" ", 1)[0] + b"\n")
        opt_ml.channel("train", {})  # registers the channel; the files are links to the one corpus
        for i in range(repeat):
            os.symlink(corpus, root / "input" / "data" / "train" / f"corpus{i}.txt")
        opt_ml.hyperparameters({"mode": "skipgram", "epochs": "1", "vector_dim": "50", "min_count": "5"})
        return train, {**env, "SAGETEXT_ALGORITHM": "blazingtext"}
    raise ValueError(algorithm)


def measure(command: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """(exit code, peak RSS in MB, seconds) of ``command`` run in a fresh wrapper process."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *command], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1]) / 1024, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="ntm,seq2seq,supervised,word2vec")
    args = parser.parse_args()
    cache = Path(os.environ.get("SAGETEXT_BENCH_DIR", "/tmp/sagetext-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    for algorithm in args.algorithms.split(","):
        row: dict[str, object] = {"algorithm": algorithm}
        for repeat in (1, 4):
            with tempfile.TemporaryDirectory(prefix=f"peak_rss-{algorithm}-") as tmp:
                command, env = lay_out(algorithm, Path(tmp) / "opt_ml", repeat, cache)
                data_mb = sum(p.stat().st_size for p in (Path(tmp) / "opt_ml" / "input" / "data").rglob("*")
                              if p.is_file()) / 2**20
                log_file = cache / f"peak_rss-{algorithm}-x{repeat}.log"
                code, peak, seconds = measure(command, {**env, "PEAK_RSS_LOG": str(log_file)})
                if code != 0:
                    print(log_file.read_text()[-3000:])
            row[f"x{repeat}"] = {"exit": code, "peak_rss_mb": round(peak, 1), "seconds": round(seconds, 1),
                                 "channel_mb": round(data_mb, 1)}
            print(algorithm, repeat, row[f"x{repeat}"], flush=True)
        row["ratio"] = round(row["x4"]["peak_rss_mb"] / row["x1"]["peak_rss_mb"], 3)  # type: ignore[index]
        row["within_20_percent"] = row["ratio"] <= 1.2  # type: ignore[operator]
        results.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"peak_rss-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results}, indent=2))
    print(f"\n{'algorithm':<11}{'channel MB x1':>14}{'peak MB x1':>12}{'peak MB x4':>12}{'ratio':>8}")
    for r in results:
        print(f"{r['algorithm']:<11}{r['x1']['channel_mb']:>14}{r['x1']['peak_rss_mb']:>12}"  # type: ignore[index]
              f"{r['x4']['peak_rss_mb']:>12}{r['ratio']:>8}")  # type: ignore[index]
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
