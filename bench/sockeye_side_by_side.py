"""Benchmark: sagetext Seq2Seq beside Sockeye on Multi30k, same data, vocabularies, sizes and budget.

Sockeye is the toolkit AWS's Seq2Seq is built on (1.x, MXNet) and the peer a user would pick
instead. ``--arch transformer`` (the default) runs Sockeye 3 (PyTorch, PyPI), which has only the
transformer; ``--arch rnn cnn`` run Sockeye 1.x (MXNet), which has them (its arguments, venv
recipe and the settings without an exact equivalent: ``sockeye1_command.py``). Each Sockeye runs
from a virtual environment of its own, never a project dependency; make Sockeye 3's once (torch
first, from this machine's disk, so that nothing pulls a CUDA build; Sockeye 3.1 asks for
torch<1.14 and numpy<2, and runs on torch 2.13):

    python3 -m venv /work/sockeye-venv
    /work/sockeye-venv/bin/pip install torch==2.13.0
    /work/sockeye-venv/bin/pip install --no-deps sockeye==3.1.34
    /work/sockeye-venv/bin/pip install "numpy<2" pyyaml sacrebleu portalocker

Per direction, both systems get: the tokenised text of ``multi30k_seq2seq.py`` (same work folder),
its vocabularies (``vocab.src.json`` / ``vocab.trg.json`` from ``prepare``, given to Sockeye with
``--source-vocab`` / ``--target-vocab``), the arch's recipe (``RECIPES``, ``QUICK`` for
--small/--quick) with its model sizes (transformer: layers, model size, heads, feed-forward,
embeddings, dropout, no weight tying; rnn and cnn: ``sockeye1_command.py``), batch type and size,
Adam at the recipe's rate, plateau-reduce with sagetext's defaults, label smoothing 0.1,
gradient clipping 1, a checkpoint every ``checkpoint_frequency_num_batches`` updates, early
stopping after 5 checkpoints, at most ``--max-batches`` updates, the same thread count; beam 5
on test2016 and sacreBLEU (tokenize=none) on the outputs.

Figures: test BLEU; training target tokens/s (sagetext: from its log, update time only; Sockeye
logs padded *source* tokens/s, so its figure here is the sentences its checkpoint lines count
over their training time, validation excluded, times the mean target length, ``</s>``
included, of the training pairs within max_seq_len); decoding sentences/s at beam 5
(sagetext: the predictor on the whole test set, batches of 64; Sockeye: its own ``sent/sec``
line with ``--batch-size 64``); training wall seconds for both. Sockeye 1.x logs the same
checkpoint and ``sent/sec`` lines as 3.x (checked on a smoke run), and the threads are set the
same way (``OMP_NUM_THREADS``, ``--use-cpu``).

    python bench/sockeye_side_by_side.py --small --max-batches 3000 --threads 2 \
        [--direction de-en en-de] [--arch transformer rnn cnn] \
        [--sockeye /work/sockeye-venv/bin/python] [--sockeye1 /work/sockeye1-venv/bin/python] \
        [--systems sagetext sockeye]

``--systems`` runs one side only: two processes, ``--systems sagetext`` and ``--systems sockeye``
with ``--threads 1`` and a ``--results`` each, train both at once on a 2-core machine, one core
each; they may start together on a fresh work folder (each prepares the data aside and moves it
into place).

Writes bench/results/sockeye_side_by_side.json and prints a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import sacrebleu
import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import multi30k_seq2seq as ours  # noqa: E402
from sockeye1_command import sockeye1_train_command  # noqa: E402

from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402

RESULTS = BENCH / "results" / "sockeye_side_by_side.json"
CHECKPOINT = re.compile(r"Checkpoint \[\d+\]\tUpdates=(?P<updates>\d+) Epoch=\d+ Samples=(?P<samples>\d+) "
                        r"Time-cost=(?P<seconds>[0-9.]+)")
DECODED = re.compile(r"Processed (?P<lines>\d+) lines\. Total time: [0-9.]+, sec/sent: [0-9.]+, sent/sec: "
                     r"(?P<rate>[0-9.]+)")
PARAMETERS = re.compile(r"# of parameters: (?P<count>\d+)")  # 3.x: "# of parameters:", 1.x: "Total # of ..."
VERSION = re.compile(r"Sockeye(?: version|:) (?P<version>[0-9][0-9.]*)")


def recipe(args: argparse.Namespace, arch: str) -> dict[str, str]:
    """The arch's recipe of multi30k_seq2seq.py with its --small/--quick sizes and --set."""
    raw = {**ours.COMMON, **ours.RECIPES[arch], "max_num_batches": str(args.max_batches)}
    if args.quick or args.small:
        raw.update({**ours.QUICK[arch], "checkpoint_frequency_num_batches": "100" if args.quick else "300"})
    raw.update(dict(item.split("=", 1) for item in args.set))
    return raw


def sockeye_train_command(python: str, files: dict[str, Path], folder: Path, source: str, target: str,
                          raw: dict[str, str], output: Path) -> list[str]:
    """Sockeye 3's ``sockeye.train`` with the settings ``raw`` gives sagetext."""
    hp = parse(raw, Spec.load("seq2seq"))  # the spec's defaults for what the recipe leaves out
    size, dropout = str(hp["transformer_model_size"]), str(hp["transformer_dropout"])
    return [python, "-m", "sockeye.train", "--use-cpu", "--overwrite-output", "--output", str(output),
            "--source", str(files[f"train.{source}"]), "--target", str(files[f"train.{target}"]),
            "--validation-source", str(files[f"val.{source}"]), "--validation-target", str(files[f"val.{target}"]),
            "--source-vocab", str(folder / "vocab.src.json"), "--target-vocab", str(folder / "vocab.trg.json"),
            "--encoder", "transformer", "--decoder", "transformer",
            "--num-layers", f"{hp['num_layers_encoder']}:{hp['num_layers_decoder']}",
            "--transformer-model-size", size, "--num-embed", f"{size}:{size}",
            "--transformer-attention-heads", str(hp["transformer_attention_heads"]),
            "--transformer-feed-forward-num-hidden", str(hp["transformer_feed_forward_num_hidden"]),
            "--transformer-dropout-attention", dropout, "--transformer-dropout-act", dropout,
            "--transformer-dropout-prepost", dropout,
            "--embed-dropout", f"{hp['embed_dropout_source']}:{hp['embed_dropout_target']}",
            "--weight-tying-type", "none", "--batch-type", "word", "--batch-size", str(hp["batch_size"]),
            "--max-seq-len", f"{hp['max_seq_len_source']}:{hp['max_seq_len_target']}",
            "--optimizer", "adam", "--initial-learning-rate", str(hp["learning_rate"]),
            "--learning-rate-scheduler-type", "plateau-reduce",
            "--learning-rate-reduce-factor", str(hp["plateau_reduce_lr_factor"]),
            "--learning-rate-reduce-num-not-improved", str(hp["plateau_reduce_lr_threshold"]),
            "--label-smoothing", str(hp["label_smoothing"]),
            "--gradient-clipping-type", "abs", "--gradient-clipping-threshold", str(hp["clip_gradient"]),
            "--checkpoint-interval", str(hp["checkpoint_frequency_num_batches"]),
            "--max-num-checkpoint-not-improved", str(hp["checkpoint_threshold"]),
            "--optimized-metric", "perplexity", "--max-updates", str(hp["max_num_batches"]),
            "--decode-and-evaluate", "0", "--keep-last-params", "1", "--seed", raw.get("seed", "1")]


def mean_target_length(files: dict[str, Path], source: str, target: str, raw: dict[str, str]) -> float:
    """Target tokens per training pair (``</s>`` included) over the pairs both systems keep."""
    limit_source, limit_target = int(raw["max_seq_len_source"]), int(raw["max_seq_len_target"])
    sources = files[f"train.{source}"].read_text(encoding="utf-8").splitlines()
    targets = files[f"train.{target}"].read_text(encoding="utf-8").splitlines()
    lengths = [len(t.split()) + 1 for s, t in zip(sources, targets)
               if 0 < len(s.split()) <= limit_source and 0 < len(t.split()) < limit_target]
    return sum(lengths) / len(lengths)


def train_sockeye(python: str, files: dict[str, Path], work: Path, direction: str, arch: str, raw: dict[str, str],
                  threads: int, output: Path) -> dict[str, object]:
    """Sockeye 3 (transformer) or 1.x (rnn, cnn; ``python`` is that venv's) trained into ``output``;
    its version, parameters, updates, wall seconds and training speed from its log."""
    source, target = direction.split("-")
    folder = ours.prepared(files, work, source, target)
    command = (sockeye_train_command(python, files, folder, source, target, raw, output) if arch == "transformer"
               else sockeye1_train_command(python, files, folder, source, target, raw, output, arch))
    started = time.monotonic()
    trained = subprocess.run(command, env=thread_env(threads), capture_output=True, text=True)
    train_seconds = time.monotonic() - started
    train_log = trained.stdout + trained.stderr
    log_path = output.with_name(output.name + ".train.log")
    log_path.write_text(train_log)
    if trained.returncode != 0:
        raise SystemExit(f"sockeye.train failed ({trained.returncode}):\n{train_log[-3000:]}")
    checkpoints = list(CHECKPOINT.finditer(train_log))  # Samples: so far; Time-cost: training since the last
    if not checkpoints:
        raise SystemExit(f"no checkpoint line in the Sockeye log {log_path}")
    parameters, version = PARAMETERS.search(train_log), VERSION.search(train_log)
    samples_per_s = int(checkpoints[-1]["samples"]) / sum(float(m["seconds"]) for m in checkpoints)
    return {"system": f"sockeye {version['version'] if version else '?'}", "direction": direction, "arch": arch,
            "updates": int(checkpoints[-1]["updates"]), "train_seconds": round(train_seconds, 1),
            "train_sentences_per_s": round(samples_per_s, 1),
            "train_target_tokens_per_s": round(samples_per_s * mean_target_length(files, source, target, raw)),
            "parameters": int(parameters["count"]) if parameters else None}


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def peer_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every Sockeye benchmark takes: the two venvs' pythons and the work folder."""
    parser.add_argument("--sockeye", default="/work/sockeye-venv/bin/python", help="the Sockeye 3 venv's python")
    parser.add_argument("--sockeye1", default="/work/sockeye1-venv/bin/python",
                        help="the Sockeye 1.x (MXNet) venv's python, for rnn and cnn")
    cache = Path(os.environ.get("SAGETEXT_CACHE", Path.home() / ".cache" / "sagetext"))
    parser.add_argument("--work-dir", type=Path, default=cache / "multi30k", help="tokenised text, models")


def sockeye_python(args: argparse.Namespace, arch: str) -> str:
    """Sockeye 3's python for the transformer, Sockeye 1.x's for rnn and cnn."""
    return str(args.sockeye if arch == "transformer" else args.sockeye1)


def revision() -> str:
    """The short commit of this checkout."""
    return subprocess.run(["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def run_sockeye(python: str, files: dict[str, Path], work: Path, direction: str, arch: str, raw: dict[str, str],
                threads: int, tag: str, limit: int | None) -> dict[str, object]:
    """Sockeye trained (``train_sockeye``), then decoding test2016."""
    source, target = direction.split("-")
    output = work / f"sockeye.{direction}.{arch}{tag}"
    trained = train_sockeye(python, files, work, direction, arch, raw, threads, output)
    bleu, rate, sentences = sockeye_translate(python, output, files, source, target, raw["beam_size"],
                                              thread_env(threads), limit,
                                              work / f"sockeye.{direction}.{arch}{tag}.translate.log")
    return {**trained, "test_sentences": sentences, "test_bleu": round(bleu, 2), "decode_sentences_per_s": rate}


def sockeye_translate(python: str, output: Path, files: dict[str, Path], source: str, target: str, beam: str,
                      env: dict[str, str], limit: int | None, log: Path) -> tuple[float, float | None, int]:
    """(test2016 BLEU, sentences/s from Sockeye's own line, sentences) of the Sockeye model in
    ``output``, batches of 64 at beam ``beam``."""
    translations, test_input = output / "test.out", output / "test.in"
    lines = files[f"test_2016_flickr.{source}"].read_text(encoding="utf-8").splitlines()[:limit]
    test_input.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    decoded = subprocess.run([python, "-m", "sockeye.translate", "--use-cpu", "--models", str(output),
                              "--input", str(test_input), "--output", str(translations),
                              "--beam-size", beam, "--batch-size", "64"],
                             env=env, capture_output=True, text=True)
    decode_log = decoded.stdout + decoded.stderr
    log.write_text(decode_log)
    if decoded.returncode != 0:
        raise SystemExit(f"sockeye.translate failed ({decoded.returncode}):\n{decode_log[-3000:]}")
    references = files[f"test_2016_flickr.{target}"].read_text(encoding="utf-8").splitlines()[:limit]
    outputs = translations.read_text(encoding="utf-8").splitlines()
    rate = DECODED.search(decode_log)
    bleu = sacrebleu.corpus_bleu(outputs, [references], tokenize="none", force=True).score
    return bleu, float(rate["rate"]) if rate else None, len(outputs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small models, 200 updates, 100 test lines")
    parser.add_argument("--small", action="store_true", help="the small CPU models, --max-batches updates")
    parser.add_argument("--direction", nargs="+", default=["de-en", "en-de"], choices=["de-en", "en-de"])
    parser.add_argument("--arch", nargs="+", default=["transformer"], choices=["transformer", "rnn", "cnn"],
                        help="transformer: against Sockeye 3; rnn, cnn: against Sockeye 1.x (default transformer)")
    parser.add_argument("--max-batches", type=int, help="update limit for both (default 200 quick, 20000 full)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for each system (default 2)")
    parser.add_argument("--systems", nargs="+", default=["sagetext", "sockeye"], choices=["sagetext", "sockeye"],
                        help="which systems run (default both, one after the other); two processes with "
                        "--systems sagetext / sockeye, --threads 1 and their own --results run them side by side")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="sagetext hyperparameters "
                        "over the recipe's, given to both (model sizes, dropout, rates; seed=N seeds both, "
                        "else sagetext's default 0 and Sockeye's 1)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})")
    peer_arguments(parser)
    args = parser.parse_args()
    args.max_batches = args.max_batches or (200 if args.quick else 20000)
    recipes = {arch: recipe(args, arch) for arch in args.arch}
    tag = ".quick" if args.quick else ".small" if args.small else ""
    files = ours.tokenised_files(args.work_dir)
    torch.set_num_threads(args.threads)  # sagetext's decoding runs in this process
    ours_args = argparse.Namespace(quick=args.quick, small=args.small, max_batches=args.max_batches,
                                   threads=args.threads, set=args.set)
    results = []
    for direction in args.direction:
        for arch, raw in recipes.items():
            if "sagetext" in args.systems:
                mine = ours.run_one(files, args.work_dir, direction, arch, ours_args, "cpu")
                results.append({"system": "sagetext", **{k: mine[k] for k in (
                    "direction", "arch", "train_seconds", "train_target_tokens_per_s", "parameters",
                    "test_sentences", "test_bleu", "decode_sentences_per_s", "updates")}})
            if "sockeye" in args.systems:
                results.append(run_sockeye(sockeye_python(args, arch), files, args.work_dir, direction, arch, raw,
                                           args.threads, tag, 100 if args.quick else None))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"benchmark": "sockeye_side_by_side", "host": platform.node(),
                                        "threads": args.threads, "hyperparameters": recipes, "runs": results},
                                       indent=2))
    print(f"\nResults in {args.results}")
    print("| direction | arch | system | params | updates | train s | target tok/s | test BLEU | "
          "decode sent/s (beam 5) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['direction']} | {r['arch']} | {r['system']} | {r['parameters']} | {r['updates']} | "
              f"{r['train_seconds']} | "
              f"{r['train_target_tokens_per_s']} | {r['test_bleu']} | {r['decode_sentences_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
