"""Benchmark: Seq2Seq on Multi30k (train 29,000 pairs; BLEU on test_2016_flickr, 1,000 pairs).

Data: ../shared/data/multi30k (raw .gz), lowercased and tokenised with a simple regex that splits
off punctuation (``\\w+|[^\\w\\s]``, Unicode-aware; no sacremoses), written to a work folder
outside the repository ($SAGETEXT_CACHE, default ~/.cache/sagetext/multi30k), then prepared with
``sagetext.algorithms.seq2seq.prepare`` exactly as a user would (vocabularies from train,
``--word-min-count 2``), and trained through the ``train`` executable as SageMaker runs the image
(a contract root per job, RecordIO ``train``/``validation`` channels, the ``vocab`` channel).

Recipes (GPU, bf16 autocast):
  rnn          2-layer encoder (bi-LSTM + LSTM) / 2-layer LSTM decoder, rnn_num_hidden 512,
               embeddings 256, mlp attention, Adam 1e-3, batch 64 sentences, dropout 0.3
               (embeddings and decoder hidden), label smoothing 0.1, clip 1, plateau_reduce
  transformer  3+3 pre-norm layers, model 512, 8 heads, ff 2048, dropout 0.1, Adam 5e-4,
               batch 4096 target tokens (batch_type=word), label smoothing 0.1
  cnn          ConvS2S 8+8 blocks, cnn_num_hidden 512, embeddings 256, kernels 3/3, GLU,
               dropout 0.2 (embeddings and blocks), Adam 1e-3, batch 2048 target tokens
All: checkpoint every 500 updates, early stopping on validation perplexity (threshold 5),
at most --max-batches updates; beam 5 for the test set. BLEU: sacreBLEU corpus BLEU on the
lowercased, tokenised text (tokenize=none), the convention of Multi30k papers.

``--quick`` (CPU smoke run): small models (hidden/model 256; cnn 4+4 blocks), 200 updates, BLEU on the first
100 test sentences; its BLEU means nothing, its tokens/s and model size are real.
``--small --max-batches N`` (a CPU run to convergence): the same small models, N updates, BLEU on
the whole test set.

    python bench/multi30k_seq2seq.py [--quick | --small --max-batches N] [--direction de-en en-de]
        [--arch rnn transformer cnn] [--threads 2] [--set NAME=VALUE ...]

Writes bench/results/multi30k_seq2seq.json and prints a table last.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from shared_data import SHARED as SHARED_DATA  # noqa: E402

from sagetext.algorithms.seq2seq import config as cfg  # noqa: E402
from sagetext.algorithms.seq2seq import prepare  # noqa: E402
from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters  # noqa: E402
from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor  # noqa: E402
from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402
from sagetext.contract.metrics import configure_logging  # noqa: E402
from sagetext.contract.paths import Paths  # noqa: E402
from sagetext.contract.settings import Settings  # noqa: E402
from sagetext.distributed.runtime import choose_device  # noqa: E402

SHARED = SHARED_DATA / "multi30k"
RESULTS = REPO / "bench" / "results" / "multi30k_seq2seq.json"
TOKEN = re.compile(r"\w+|[^\w\s]")
RECORDIO = "application/x-recordio-protobuf"
BUILT = re.compile(r"Seq2Seq \w+ encoder, \w+ decoder: (?P<parameters>\d+) parameters")
FINISHED = re.compile(r"Training finished after (?P<updates>\d+) updates, (?P<epochs>\d+) epochs; best checkpoint "
                      r"\d+ \(\w+=(?P<best>[-+0-9.eE]+)\); (?P<rate>\d+) target tokens/s")
COMMON = {"checkpoint_frequency_num_batches": "500", "checkpoint_threshold": "5", "label_smoothing": "0.1",
          "optimized_metric": "perplexity", "beam_size": "5", "bleu_sample_size": "0", "clip_gradient": "1",
          "max_seq_len_source": "80", "max_seq_len_target": "80"}
RECIPES = {
    "rnn": {"encoder_type": "rnn", "decoder_type": "rnn", "num_layers_encoder": "2", "num_layers_decoder": "2",
            "rnn_num_hidden": "512", "num_embed_source": "256", "num_embed_target": "256",
            "rnn_attention_type": "mlp", "learning_rate": "0.001", "batch_size": "64",
            "embed_dropout_source": "0.3", "embed_dropout_target": "0.3", "rnn_decoder_hidden_dropout": "0.3"},
    "transformer": {"encoder_type": "transformer", "decoder_type": "transformer", "num_layers_encoder": "3",
                    "num_layers_decoder": "3", "transformer_model_size": "512", "transformer_attention_heads": "8",
                    "transformer_feed_forward_num_hidden": "2048", "transformer_dropout": "0.1",
                    "learning_rate": "0.0005", "batch_type": "word", "batch_size": "4096"},
    "cnn": {"encoder_type": "cnn", "decoder_type": "cnn", "num_layers_encoder": "8", "num_layers_decoder": "8",
            "cnn_num_hidden": "512", "num_embed_source": "256", "num_embed_target": "256",
            "cnn_kernel_width_encoder": "3", "cnn_kernel_width_decoder": "3", "cnn_hidden_dropout": "0.2",
            "embed_dropout_source": "0.2", "embed_dropout_target": "0.2", "learning_rate": "0.001",
            "batch_type": "word", "batch_size": "2048"},
}
QUICK = {
    "rnn": {"rnn_num_hidden": "256", "num_embed_source": "128", "num_embed_target": "128"},
    "transformer": {"transformer_model_size": "256", "transformer_attention_heads": "4",
                    "transformer_feed_forward_num_hidden": "1024", "batch_size": "1024"},
    "cnn": {"cnn_num_hidden": "256", "num_layers_encoder": "4", "num_layers_decoder": "4", "batch_size": "1024"},
}


def tokenise(line: str) -> str:
    return " ".join(TOKEN.findall(line.lower()))


def tokenised_files(work: Path) -> dict[str, Path]:
    """``{split}.{lang}`` tokenised text in the work folder (made once; each file appears whole)."""
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("train", "val", "test_2016_flickr"):
        for lang in ("en", "de"):
            path = work / f"{split}.{lang}"
            if not path.exists():  # written aside and moved into place: another process may read it
                with gzip.open(SHARED / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                    aside = path.with_name(f"{path.name}.{os.getpid()}")
                    aside.write_text("".join(tokenise(line) + "\n" for line in f), encoding="utf-8")
                os.replace(aside, path)
            files[f"{split}.{lang}"] = path
    return files


def prepared(files: dict[str, Path], work: Path, source: str, target: str) -> Path:
    """The RecordIO channels and vocabularies of one direction, prepared once per work folder.
    They are written to a folder of their own and renamed into place, so two benchmarks started
    at once on a fresh work folder (``sockeye_side_by_side.py --systems``) never read or write a
    half-prepared one: the first rename wins, the other copy is removed."""
    out = work / f"prepared.{source}-{target}"
    if (out / "val.rec").exists():
        return out
    staging = Path(tempfile.mkdtemp(prefix=f"{out.name}.", dir=work))
    prepare.main(["-ts", str(files[f"train.{source}"]), "-tt", str(files[f"train.{target}"]),
                  "-vs", str(files[f"val.{source}"]), "-vt", str(files[f"val.{target}"]),
                  "--word-min-count-source", "2", "--word-min-count-target", "2", "--output-dir", str(staging)])
    try:
        staging.rename(out)
    except OSError:  # another process renamed its copy into place first, or an old one is half-written
        shutil.rmtree(staging)
        if not (out / "val.rec").exists():
            raise SystemExit(f"{out} is half-prepared (no val.rec): remove it and run again") from None
    return out


def run_one(files: dict[str, Path], work: Path, direction: str, arch: str, args: argparse.Namespace,
            device: str) -> dict[str, object]:
    source, target = direction.split("-")
    folder = prepared(files, work, source, target)
    raw = {**COMMON, **RECIPES[arch], "max_num_batches": str(args.max_batches)}
    if args.quick or args.small:
        raw.update({**QUICK[arch], "checkpoint_frequency_num_batches": "100" if args.quick else "300"})
    raw.update(dict(item.split("=", 1) for item in args.set))
    cfg.check(parse(raw, Spec.load("seq2seq")).typed(Seq2SeqHyperparameters))
    size = ".quick" if args.quick else ".small" if args.small else ""
    job = work / f"job.{direction}.{arch}{size}"
    started = time.monotonic()
    model_dir, log_text = train_job(folder, raw, job, args.threads)
    train_seconds = time.monotonic() - started
    finished, built = FINISHED.search(log_text), BUILT.search(log_text)
    if not finished or not built:
        raise SystemExit(f"the training log {job / 'train.log'} lacks its summary lines")
    bleu, decode_seconds, sentences = bleu_on_test(model_dir, files, source, target, 100 if args.quick else None)
    return {
        "direction": direction, "arch": arch, "quick": args.quick, "small": args.small, "device": device,
        "hyperparameters": raw, "updates": int(finished["updates"]), "epochs": int(finished["epochs"]),
        "best_validation_perplexity": float(finished["best"]),
        "train_target_tokens_per_s": int(finished["rate"]), "train_seconds": round(train_seconds, 1),
        "parameters": int(built["parameters"]), "model_pt_bytes": (model_dir / "model.pt").stat().st_size,
        "test_sentences": sentences, "test_bleu": round(bleu, 2), "decode_seconds": round(decode_seconds, 1),
        "decode_sentences_per_s": round(sentences / decode_seconds, 1),
    }


def train_job(folder: Path, raw: dict[str, str], job: Path, threads: int) -> tuple[Path, str]:
    """Train through the ``train`` executable as SageMaker runs the image: a contract root with
    the RecordIO ``train`` and ``validation`` channels, the ``vocab`` channel (File mode) and
    ``hyperparameters.json``. Returns the model folder and the training log."""
    shutil.rmtree(job, ignore_errors=True)
    paths = Paths(job)
    for needed in (paths.config_dir, paths.model_dir, paths.output_dir):
        needed.mkdir(parents=True)
    layout = {"train": (["train.rec"], RECORDIO), "validation": (["val.rec"], RECORDIO),
              "vocab": (["vocab.src.json", "vocab.trg.json"], "application/json")}
    config = {}
    for name, (file_names, content_type) in layout.items():
        paths.channel_dir(name).mkdir(parents=True)
        for file_name in file_names:
            (paths.channel_dir(name) / file_name).symlink_to(folder / file_name)
        config[name] = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                        "RecordWrapperType": "None", "ContentType": content_type}
    paths.inputdataconfig_file.write_text(json.dumps(config))
    paths.hyperparameters_file.write_text(json.dumps(raw))
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(job), "SAGETEXT_ALGORITHM": "seq2seq",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log_path = job / "train.log"
    print(f"training {job.name}: log in {log_path}", flush=True)
    with log_path.open("w") as log_file:
        code = subprocess.run([sys.executable, str(REPO / "train")], env=env, stdout=log_file,
                              stderr=subprocess.STDOUT).returncode
    text = log_path.read_text()
    if code != 0:
        raise SystemExit(f"training failed with exit code {code}; the end of {log_path}:\n{text[-3000:]}")
    return paths.model_dir, text


def bleu_on_test(model_dir: Path, files: dict[str, Path], source: str, target: str,
              limit: int | None) -> tuple[float, float, int]:
    predictor = Seq2SeqPredictor.load(model_dir)
    sources = files[f"test_2016_flickr.{source}"].read_text(encoding="utf-8").splitlines()[:limit]
    references = files[f"test_2016_flickr.{target}"].read_text(encoding="utf-8").splitlines()[:limit]
    started = time.monotonic()
    answer = predictor.predict({"instances": [{"data": s} for s in sources]}, "application/json",
                               "application/json")
    seconds = time.monotonic() - started
    outputs = [p["target"] for p in answer["predictions"]]
    return sacrebleu.corpus_bleu(outputs, [references], tokenize="none", force=True).score, seconds, len(sources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: small models, 200 updates")
    parser.add_argument("--small", action="store_true",
                        help="the quick run's small models, --max-batches updates, BLEU on the whole test set")
    parser.add_argument("--direction", nargs="+", default=["de-en", "en-de"], choices=["de-en", "en-de"])
    parser.add_argument("--arch", nargs="+", default=["rnn", "transformer"], choices=sorted(RECIPES))
    parser.add_argument("--max-batches", type=int, help="update limit (default 200 quick, 20000 full)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: the box is shared)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="hyperparameters over the recipe's, e.g. --set num_layers_encoder=6")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})")
    cache = Path(os.environ.get("SAGETEXT_CACHE", Path.home() / ".cache" / "sagetext"))
    parser.add_argument("--work-dir", type=Path, default=cache / "multi30k", help="tokenised text, models")
    args = parser.parse_args()
    args.max_batches = args.max_batches or (200 if args.quick else 20000)
    configure_logging()
    logging.getLogger("sagetext").setLevel(logging.INFO)
    device = choose_device(Settings.from_env().device)
    if device == "cpu":
        torch.set_num_threads(args.threads)
    files = tokenised_files(args.work_dir)
    results = [run_one(files, args.work_dir, d, a, args, device) for d in args.direction for a in args.arch]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"benchmark": "multi30k_seq2seq", "host": platform.node(),
                                   "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0)
                                   if device.startswith("cuda") else None, "runs": results}, indent=2))
    print(f"\nResults in {args.results}")
    print("| direction | arch | quick | device | updates | target tok/s | params | model.pt MB | test BLEU | "
          "decode sent/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['direction']} | {r['arch']} | {r['quick']} | {r['device']} | {r['updates']} | "
              f"{r['train_target_tokens_per_s']} | {r['parameters']:,} | {r['model_pt_bytes'] / 1e6:.1f} | "
              f"{r['test_bleu']} ({r['test_sentences']} sent.) | {r['decode_sentences_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
