"""Benchmark: BlazingText word2vec on a GPU with sagetext's PyTorch engine, in one device call.

Settings (issue 3): the text8-like corpus (../shared/data/wiki_en_text8like, 16.9M words),
vector_dim=100 window_size=5 negative_samples=5 sampling_threshold=1e-4 min_count=5 epochs=5
learning_rate=0.05. For cbow and skipgram, each variant of the engine (``fused``: the Triton
step; ``reference``: the PyTorch step) trains through ``gpu.trainer.train_word2vec``, then:

- throughput in raw words/s: words before min_count and subsampling, over the training time
  the engine logs (the vocabulary pass excluded, as for gensim's build_vocab), as SageMaker
  and bench/text8_word2vec.py count them;
- Google analogy accuracy (gensim's questions-words.txt, 30k most frequent words, as
  bench/text8_word2vec.py), WS-353 (all) and SimLex-999 Spearman rho.

``--anchor`` adds gensim (Word2Vec, all CPU cores of the machine) with the same settings.
Runs go in order of importance and stop before the time budget (``--budget``, 480 s) would be
passed; results are written after every run to $OUT/word2vec_gpu.json (or bench/results/), and
a table is printed last. Anchors measured here (gensim, 2 workers; issue 3): skipgram analogy
0.285, WS-353 0.664, SimLex 0.318; cbow 0.230 / 0.626 / 0.282.

Prepare here once (copies ~52 MB into .work/word2vec_gpu, which git ignores):

    .venv/bin/python bench/word2vec_gpu.py --prepare

It copies the corpus (.xz, 23 MB) and SimLex-999, downloads the cp312 wheels of gensim (26 MB)
and smart_open (the device has numpy, scipy, torch, triton, wrapt, protobuf, pytest), and copies
sagemaker_training's record_pb2 (that package has no wheel; sagetext imports only the message).
Then the whole GPU measurement is one call of the device tool (the tests, then runs until the
budget; under 10 minutes):

    run(kind="nvidia-h100-x1", timeout_s=600, carry=[".work/word2vec_gpu"], command=
      "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site
       .work/word2vec_gpu/wheels/*.whl && export PYTHONPATH=/tmp/site:.work/word2vec_gpu/site:src
       PYTHONUNBUFFERED=1 && nvidia-smi -L; python3 -m pytest -q -p no:cacheprovider
       tests/unit/test_word2vec_torch.py -k 'kernel or reference or windows' 2>&1 | tee $OUT/tests.txt;
       python3 bench/word2vec_gpu.py --anchor 2>&1 | tee $OUT/bench.txt")

(one line, without the line breaks). On this machine, a check of the script on a slice:

    .venv/bin/python bench/word2vec_gpu.py --device cpu --words 2000000 --variants reference
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from gensim.models import KeyedVectors

from sagetext.algorithms.blazingtext.word2vec.torch_engine import kernels
from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import Windows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.input_rows import InputRows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.step import reference_update
from sagetext.algorithms.blazingtext.word2vec.torch_engine.trainer import EngineSettings, train_word2vec
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.metrics import configure_logging
from sagetext.contract.paths import Paths

sys.path.insert(0, str(Path(__file__).resolve().parent))
import text8_word2vec  # noqa: E402  (the gensim anchor and the scores, shared)
from shared_data import SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CARRY = REPO / ".work" / "word2vec_gpu"
CORPUS_NAME, SIMLEX_NAME = "wiki2015_text8like.xz", "EN-SIMLEX-999.txt"
SHARED_FILES = {CORPUS_NAME: SHARED / "wiki_en_text8like" / CORPUS_NAME,
                SIMLEX_NAME: SHARED / "word_similarity" / SIMLEX_NAME}
SETTINGS = {"vector_dim": "100", "window_size": "5", "negative_samples": "5", "sampling_threshold": "0.0001",
            "min_count": "5", "epochs": "5", "learning_rate": "0.05"}
WHEELS = ("gensim", "smart_open")


def data_file(name: str) -> Path:
    """A data file from the carried folder (device) or ../shared/data (here)."""
    for candidate in (CARRY / name, SHARED_FILES[name]):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{name} not found in {CARRY} or {SHARED_FILES[name].parent}")


def prepare() -> None:
    """Fill .work/word2vec_gpu with what the device lacks (run here, once)."""
    from importlib.metadata import version

    import sagemaker_training

    (CARRY / "wheels").mkdir(parents=True, exist_ok=True)
    for name, source in SHARED_FILES.items():
        shutil.copyfile(source, CARRY / name)
    stub = CARRY / "site" / "sagemaker_training"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text('"""Only record_pb2 of sagemaker-training (no wheel exists)."""\n')
    shutil.copyfile(Path(sagemaker_training.__file__).parent / "record_pb2.py", stub / "record_pb2.py")
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_24_x86_64",
                                              "manylinux_2_17_x86_64", "manylinux2014_x86_64")]
    for package in WHEELS:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version=3.12", "--implementation=cp", *platforms, "-d", str(CARRY / "wheels"),
                        f"{package}=={version(package)}"], check=True)
    size = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    print(f"{CARRY}: {size / 2**20:.1f} MiB to carry (limit 64 MiB with the working tree)")


def corpus_text(words: int | None) -> Path:
    """The corpus decompressed once (the first ``words`` words only, if given)."""
    cache = Path(os.environ.get("SAGETEXT_CACHE", Path(tempfile.gettempdir()) / "sagetext-cache")) / "text8like"
    target = cache / (f"first_{words}_words.txt" if words else "wiki2015_text8like.txt")
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with lzma.open(data_file(CORPUS_NAME), "rb") as src, open(partial, "wb") as dst:
        if words is None:
            shutil.copyfileobj(src, dst, 1 << 22)
        else:
            taken = src.read(words * 8).split()[:words]  # text8 words average under 6 characters
            dst.write(b" ".join(taken) + b"\n")
    partial.rename(target)
    return target


def scores(kv: KeyedVectors) -> dict[str, float]:
    return text8_word2vec.scores(kv, data_file(SIMLEX_NAME))


def warm_up(device: str) -> None:
    """Compile the Triton step and start cuBLAS before any timed run (shapes of the real runs)."""
    if not device.startswith("cuda"):
        return
    dev, n_words, windows, width, k = torch.device(device), 1000, 256, 10, 5
    table, output = torch.randn(n_words, 100, device=dev) * 0.01, torch.zeros(n_words, 100, device=dev)
    ones = torch.ones(windows, width, device=dev)
    batch = Windows(torch.randint(0, n_words, (windows, width), device=dev), ones,
                    torch.randint(0, n_words, (windows, 1 + k), device=dev), torch.ones(windows, 1 + k, device=dev),
                    torch.full((windows,), 0.01, device=dev), ones, torch.ones(windows, 1 + k, device=dev))
    for cbow in (False, True):
        reference_update("cbow" if cbow else "skipgram")(InputRows(table, n_words), output, batch)
        if kernels.available(dev):
            kernels.sgns_step(table, output, table, output, batch, cbow)
    torch.cuda.synchronize(dev)


def run_ours(mode: str, variant: str, corpus: Path, device: str, engine: EngineSettings) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "input" / "data" / "train").mkdir(parents=True)
        (root / "input" / "data" / "train" / corpus.name).symlink_to(corpus)
        hp = parse({"mode": mode, **SETTINGS}, Spec.load("blazingtext"))
        ctx = TrainingContext(hp, {"train": Channel("train", paths=Paths(root))}, root / "model", root / "output",
                              Checkpoints(None, hp), device=device)
        lines = text8_word2vec.LogLines()
        logging.getLogger("sagetext").addHandler(lines)
        try:
            start = time.monotonic()
            train_word2vec(ctx, EngineSettings(engine.windows_per_step, engine.syncs_per_epoch, engine.repeat_cap,
                                               fused=variant == "fused"))
            wall = time.monotonic() - start
        finally:
            logging.getLogger("sagetext").removeHandler(lines)
        text = "\n".join(lines.lines)
        tokens = int(re.search(r"out of (\d+) tokens", text).group(1))  # type: ignore[union-attr]
        seconds = float(re.search(r"Total training time in seconds: (\S+)", text).group(1))  # type: ignore[union-attr]
        mean_rho = json.loads((ctx.model_dir / "eval.json").read_text())["mean_rho"]
        kv = KeyedVectors.load_word2vec_format(str(ctx.model_dir / "vectors.txt"), binary=False)
        return {"words_per_sec": tokens * int(SETTINGS["epochs"]) / seconds, "train_seconds": seconds,
                "wall_seconds": wall, "mean_rho_eval_json": mean_rho, "windows_per_step": engine.windows_per_step,
                "repeat_cap": engine.repeat_cap, **scores(kv)}


def run_gensim(mode: str, corpus: Path) -> dict[str, object]:
    return text8_word2vec.run_gensim(mode, corpus, workers=os.cpu_count() or 1, simlex_file=data_file(SIMLEX_NAME))


def machine(device: str) -> dict[str, object]:
    info: dict[str, object] = {"platform": platform.platform(), "python": platform.python_version(),
                               "torch": torch.__version__, "cpus": os.cpu_count(), "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return info


def print_table(results: dict[str, dict[str, object]]) -> None:
    print(f"\n{'mode':9} {'run':22} {'analogy':>8} {'WS353':>7} {'SimLex':>7} {'Mwords/s':>9} {'train s':>8}")
    for key, r in results.items():
        mode, run = key.split("/", 1)
        if "error" in r or "skipped" in r:
            print(f"{mode:9} {run:22} {r.get('error') or r.get('skipped')}")
            continue
        print(f"{mode:9} {run:22} {r['analogy_accuracy']:8.4f} {r['ws353_all_rho']:7.4f} {r['simlex999_rho']:7.4f} "
              f"{r['words_per_sec'] / 1e6:9.2f} {r['train_seconds']:8.1f}")
    print("words/s: raw words (before min_count and subsampling) x epochs / training seconds")


def planned_runs(args: argparse.Namespace) -> list[tuple[str, str]]:
    runs = [(mode, variant) for variant in args.variants for mode in args.modes]
    return runs + ([(mode, "gensim") for mode in args.modes] if args.anchor else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prepare", action="store_true", help="fill .work/word2vec_gpu for the device call")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--words", type=int, help="train on the first N words only")
    parser.add_argument("--modes", nargs="+", default=["skipgram", "cbow"])
    parser.add_argument("--variants", nargs="+", choices=["fused", "reference"])
    parser.add_argument("--windows-per-step", type=int, help="the engine's default unless given")
    parser.add_argument("--repeat-cap", type=float, help="the engine's default (by mode) unless given")
    parser.add_argument("--anchor", action="store_true", help="also gensim on all CPU cores")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds; later runs are skipped")
    args = parser.parse_args()
    if args.prepare:
        prepare()
        return
    configure_logging()
    started = time.monotonic()
    if args.variants is None:
        args.variants = ["fused", "reference"] if kernels.available(torch.device(args.device)) else ["reference"]
    corpus = corpus_text(args.words)
    warm_up(args.device)
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "bench" / "results"
    result_file = out / "word2vec_gpu.json"
    report: dict[str, object] = {"machine": machine(args.device), "settings": SETTINGS, "words": args.words,
                                 "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": {}}
    results: dict[str, dict[str, object]] = report["runs"]  # type: ignore[assignment]
    longest = 0.0
    for mode, variant in planned_runs(args):
        key = f"{mode}/{variant}"
        if time.monotonic() - started + longest > args.budget:
            results[key] = {"skipped": f"skipped: the {args.budget:.0f} s budget would be passed"}
            continue
        run_start = time.monotonic()
        try:
            engine = EngineSettings(windows_per_step=args.windows_per_step, repeat_cap=args.repeat_cap)
            results[key] = (run_gensim(mode, corpus) if variant == "gensim"
                            else run_ours(mode, variant, corpus, args.device, engine))
        except Exception as exc:  # noqa: BLE001 - report it and go on with the other runs
            logging.getLogger("sagetext").exception("%s failed", key)
            results[key] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        longest = max(longest, time.monotonic() - run_start)
        out.mkdir(parents=True, exist_ok=True)
        result_file.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten: {result_file}")


if __name__ == "__main__":
    main()
