"""Benchmark: the time of one Seq2Seq training update, and where it goes, in this checkout.

Builds the Trainer of ``multi30k_seq2seq.py``'s recipe (``--small`` sizes by default) on the
Multi30k training pairs and times ``--steps`` updates on the first batches of epoch 0 after
``--warmup`` untimed ones: the same batches in every checkout, so that running this script in two
checkouts one after the other compares their code (nothing else is trained or decoded). It
imports the sagetext of the checkout it lives in (``multi30k_seq2seq`` puts that ``src/`` first
on the path, whatever ``PYTHONPATH`` says): to time another checkout, run that checkout's copy. With
``--profile``, torch's profiler table of the timed updates, by self CPU time, comes first.

    python bench/seq2seq_step_time.py [--arch transformer] [--direction de-en] [--steps 40]
        [--threads 2] [--profile] [--set NAME=VALUE ...]

Prints one line last: ms per update, pairs and target tokens per update, target tokens/s.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import multi30k_seq2seq as ours  # noqa: E402
import sockeye_side_by_side as side  # noqa: E402

from sagetext.algorithms.seq2seq import config as cfg  # noqa: E402
from sagetext.algorithms.seq2seq import text_input  # noqa: E402
from sagetext.algorithms.seq2seq import vocab as vocabulary  # noqa: E402
from sagetext.algorithms.seq2seq.data import PairStore, make_batch, truncate  # noqa: E402
from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters  # noqa: E402
from sagetext.algorithms.seq2seq.trainer import Inputs, Trainer  # noqa: E402
from sagetext.contract.checkpoints import Checkpoints  # noqa: E402
from sagetext.contract.hyperparameters import Spec, parse  # noqa: E402


def trainer_for(raw: dict[str, str], folder: Path, files: dict[str, Path], source: str, target: str) -> Trainer:
    hp = parse(raw, Spec.load("seq2seq"))
    typed = hp.typed(Seq2SeqHyperparameters)
    source_vocab = vocabulary.load(folder / "vocab.src.json")
    target_vocab = vocabulary.load(folder / "vocab.trg.json")
    pairs = truncate(text_input.read_pairs(files[f"train.{source}"], files[f"train.{target}"], source_vocab.ids,
                                           target_vocab.ids), cfg.data_config(typed))
    inputs = Inputs(pairs, PairStore(), source_vocab, target_vocab)
    return Trainer(cfg.model_config(typed, len(source_vocab), len(target_vocab)), cfg.data_config(typed),
                   cfg.trainer_config(typed), inputs, Checkpoints(None, hp))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="transformer", choices=sorted(ours.RECIPES))
    parser.add_argument("--direction", default="de-en", choices=["de-en", "en-de"])
    parser.add_argument("--steps", type=int, default=40, help="timed updates (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed updates first (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the full recipe's sizes, not --small's")
    parser.add_argument("--profile", action="store_true", help="torch's profiler table of the timed updates")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="hyperparameters over the recipe's")
    side.peer_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    setup = argparse.Namespace(quick=False, small=not args.full, max_batches=args.warmup + args.steps, set=args.set)
    raw = side.recipe(setup, args.arch)
    files = ours.tokenised_files(args.work_dir)
    source, target = args.direction.split("-")
    trainer = trainer_for(raw, ours.prepared(files, args.work_dir, source, target), files, source, target)
    plan = trainer.plan.epoch(0)[:args.warmup + args.steps]
    batches = [make_batch(trainer.inputs.train, indices) for indices in plan]
    for batch in batches[:args.warmup]:
        trainer._update(batch)
    timed = batches[args.warmup:]
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if args.profile else None
    started = time.perf_counter()
    with profiler or contextlib.nullcontext():
        for batch in timed:
            trainer._update(batch)
    seconds = time.perf_counter() - started
    if profiler is not None:
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    pairs = sum(len(b.source_length) for b in timed) / len(timed)
    tokens = sum(b.num_target_tokens for b in timed)
    print(f"{args.arch} {args.direction}: {1000 * seconds / len(timed):.1f} ms per update, {pairs:.1f} pairs and "
          f"{tokens / len(timed):.0f} target tokens per update, {tokens / seconds:.0f} target tokens/s "
          f"({len(timed)} updates, {args.threads} threads{', profiled' if profiler else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
