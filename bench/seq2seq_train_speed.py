"""Benchmark: Seq2Seq training speed, sagetext beside Sockeye, in alternating short runs.

``sockeye_side_by_side.py`` trains each system once to the end, one after the other; on a
shared VM the machine's own speed drifts between those runs (the same Sockeye 3 training,
deterministic to the BLEU, took 2,146 s one morning and 1,926 s that afternoon, with a step
change in its updates/s partway through). This script measures only the training speed, so that
the drift falls on both systems alike: ``--repeat`` rounds, each training sagetext then Sockeye
from scratch for ``--updates`` updates on the same data, vocabularies, sizes, batches and threads
as the side by side (``sockeye_side_by_side.recipe``, ``--small`` sizes), no decoding.

Figures per run: training target tokens/s, counted as the side by side counts them (sagetext:
its log's update-time rate; Sockeye: the sentences its checkpoint lines count over their
training time, times the mean target length with ``</s>``); the median per system and each
round's ratio sagetext / Sockeye.

    python bench/seq2seq_train_speed.py [--arch transformer] [--direction de-en] [--updates 600]
        [--repeat 3] [--threads 2]

Writes bench/results/seq2seq_train_speed.json and prints a table last.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import multi30k_seq2seq as ours  # noqa: E402
import sockeye_side_by_side as side  # noqa: E402

RESULTS = BENCH / "results" / "seq2seq_train_speed.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="transformer", choices=["transformer", "rnn", "cnn"])
    parser.add_argument("--direction", default="de-en", choices=["de-en", "en-de"])
    parser.add_argument("--updates", type=int, default=600, help="updates per run (default 600)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of one run each (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="sagetext hyperparameters "
                        "over the recipe's, given to both")
    parser.add_argument("--results", type=Path, default=RESULTS)
    side.peer_arguments(parser)
    args = parser.parse_args()
    setup = argparse.Namespace(quick=False, small=True, max_batches=args.updates, set=args.set)
    raw = side.recipe(setup, args.arch)
    files = ours.tokenised_files(args.work_dir)
    source, target = args.direction.split("-")
    folder = ours.prepared(files, args.work_dir, source, target)
    python = side.sockeye_python(args, args.arch)
    runs = []
    for attempt in range(args.repeat):
        _, log_text = ours.train_job(folder, raw, args.work_dir / f"speed.job.{args.direction}.{args.arch}",
                                     args.threads)
        finished = ours.FINISHED.search(log_text)
        if not finished:
            raise SystemExit("the sagetext training log lacks its summary line")
        runs.append({"system": "sagetext", "attempt": attempt, "updates": int(finished["updates"]),
                     "train_target_tokens_per_s": int(finished["rate"])})
        theirs = side.train_sockeye(python, files, args.work_dir, args.direction, args.arch, raw, args.threads,
                                    args.work_dir / f"speed.sockeye.{args.direction}.{args.arch}")
        runs.append({"attempt": attempt, **{k: theirs[k] for k in ("system", "updates", "train_target_tokens_per_s")}})
        print(f"round {attempt}: sagetext {runs[-2]['train_target_tokens_per_s']}, "
              f"{theirs['system']} {theirs['train_target_tokens_per_s']} target tokens/s", flush=True)
    revision = side.revision()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"benchmark": "seq2seq_train_speed", "host": platform.node(),
                                        "sagetext": revision, "threads": args.threads, "arch": args.arch,
                                        "direction": args.direction, "hyperparameters": raw, "runs": runs},
                                       indent=2))
    print(f"\nResults in {args.results}")
    print_table(runs)
    return 0


def print_table(runs: list[dict[str, object]]) -> None:
    mine = [int(str(r["train_target_tokens_per_s"])) for r in runs if r["system"] == "sagetext"]
    theirs = [int(str(r["train_target_tokens_per_s"])) for r in runs if r["system"] != "sagetext"]
    print("| round | sagetext target tok/s | Sockeye target tok/s | ratio |\n|---|---|---|---|")
    for attempt, (a, b) in enumerate(zip(mine, theirs)):
        print(f"| {attempt} | {a} | {b} | {a / b:.2f} |")
    print(f"| median | {statistics.median(mine):.0f} | {statistics.median(theirs):.0f} | "
          f"{statistics.median(mine) / statistics.median(theirs):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
