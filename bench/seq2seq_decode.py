"""Benchmark: beam-search decoding speed of trained Seq2Seq models, sagetext beside Sockeye.

Takes the small models of one arch that ``sockeye_side_by_side.py --small`` trained (sagetext's
``job.<direction>.<arch>.small/model`` and Sockeye's ``sockeye.<direction>.<arch>.small`` in the
work folder: Sockeye 3 for the transformer, Sockeye 1.x for rnn and cnn) and translates Multi30k
test2016 with each, beam 5, batches of 64, the same thread count, one after the other in the same
run: sagetext through its predictor (the serving path, as ``multi30k_seq2seq.py`` measures it),
Sockeye through ``sockeye.translate`` (its own ``sent/sec`` line). Prints test BLEU (sacreBLEU,
tokenize=none) and sentences/s for both; ``--repeat N`` decodes N times each, alternating, and
reports every run.

    python bench/seq2seq_decode.py [--arch transformer] [--direction de-en] [--threads 2] [--repeat 1]
        [--sockeye /work/sockeye-venv/bin/python] [--sockeye1 /work/sockeye1-venv/bin/python]

Writes bench/results/seq2seq_decode.json and prints a table last.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import multi30k_seq2seq as ours  # noqa: E402
import sockeye_side_by_side as side  # noqa: E402

RESULTS = BENCH / "results" / "seq2seq_decode.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="transformer", choices=["transformer", "rnn", "cnn"])
    parser.add_argument("--direction", default="de-en", choices=["de-en", "en-de"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    side.peer_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = ours.tokenised_files(args.work_dir)
    source, target = args.direction.split("-")
    mine = args.work_dir / f"job.{args.direction}.{args.arch}.small" / "model"
    theirs = args.work_dir / f"sockeye.{args.direction}.{args.arch}.small"
    python = side.sockeye_python(args, args.arch)
    env = side.thread_env(args.threads)
    revision = side.revision()
    runs = []
    for attempt in range(args.repeat):
        bleu, seconds, sentences = ours.bleu_on_test(mine, files, source, target, None)
        runs.append({"system": "sagetext", "attempt": attempt, "test_bleu": round(bleu, 2),
                     "decode_sentences_per_s": round(sentences / seconds, 1)})
        bleu, rate, _ = side.sockeye_translate(python, theirs, files, source, target, "5", env, None,
                                               args.work_dir / f"sockeye.{args.direction}.{args.arch}.decode.log")
        runs.append({"system": "sockeye", "attempt": attempt, "test_bleu": round(bleu, 2),
                     "decode_sentences_per_s": rate})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"benchmark": "seq2seq_decode", "host": platform.node(),
                                        "sagetext": f"{revision} ({ours.__file__})", "threads": args.threads,
                                        "arch": args.arch, "direction": args.direction, "runs": runs}, indent=2))
    print(f"\nResults in {args.results}\n| system | run | test BLEU | decode sent/s (beam 5) |\n|---|---|---|---|")
    for r in runs:
        print(f"| {r['system']} | {r['attempt']} | {r['test_bleu']} | {r['decode_sentences_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
