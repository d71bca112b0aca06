"""Make Seq2Seq training data: the equivalent of SageMaker's ``create_vocab_proto.py``.

From whitespace-tokenised parallel text (one sentence a line, ``.gz`` read through gzip,
UTF-8 with undecodable bytes replaced) it writes ``vocab.src.json`` and ``vocab.trg.json``
(specials first, then words by (count, word) descending, ``min_count``, ``num_words`` not
counting the specials) and ``train.rec`` / ``val.rec``: one RecordIO-protobuf Record per pair
with int32 ``features["source"]`` and ``features["target"]``, no BOS/EOS, pairs with a blank
side skipped. Unlike the script, records are written in line order (deterministic). It logs
the vocabulary sizes, the pairs written and skipped, and, every few seconds on large files,
the pairs written so far with the rate and the time left.

    python -m sagetext.algorithms.seq2seq.prepare -ts train.en -tt train.de \\
        -vs val.en -vt val.de --output-dir data/
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from sagetext.algorithms.seq2seq import text_input
from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.algorithms.seq2seq.vocab import Vocab
from sagetext.contract.progress import Progress
from sagetext.data import recordio
from sagetext.errors import ClientError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """create_vocab_proto.py's options, plus --output-dir."""
    parser.add_argument("-ts", "--train-source", required=True, type=Path, help="training source file")
    parser.add_argument("-tt", "--train-target", required=True, type=Path, help="training target file")
    parser.add_argument("-vs", "--val-source", type=Path, help="validation source file")
    parser.add_argument("-vt", "--val-target", type=Path, help="validation target file")
    parser.add_argument("-to", "--train-output", default="train.rec", help="default: %(default)s")
    parser.add_argument("-vo", "--val-output", default="val.rec", help="default: %(default)s")
    parser.add_argument("-single-vocab", "--single-vocab", dest="single_vocab", action="store_true",
                        help="one vocabulary from source and target text, used for both")
    parser.add_argument("--vocab-source-json", type=Path, help="reuse this source vocabulary")
    parser.add_argument("--vocab-target-json", type=Path, help="reuse this target vocabulary")
    parser.add_argument("--num-words-source", type=int, default=50000, help="default: %(default)s")
    parser.add_argument("--num-words-target", type=int, default=50000, help="default: %(default)s")
    parser.add_argument("--word-min-count-source", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--word-min-count-target", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--output-dir", type=Path, default=Path("."),
                        help="where the .rec and vocab files go (default: the current folder)")


def run(args: argparse.Namespace) -> int:
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    source_vocab, target_vocab = vocabularies(args)
    vocabulary.save(source_vocab, out / vocabulary.SOURCE_FILE)
    if args.single_vocab and not args.vocab_target_json:
        shutil.copyfile(out / vocabulary.SOURCE_FILE, out / vocabulary.TARGET_FILE)
    else:
        vocabulary.save(target_vocab, out / vocabulary.TARGET_FILE)
    log.info("Vocabularies: %d source, %d target tokens", len(source_vocab), len(target_vocab))
    written, skipped = write_pairs(args.train_source, args.train_target, out / args.train_output,
                                   source_vocab, target_vocab)
    log.info("%s: %d pairs (%d skipped: a blank side)", args.train_output, written, skipped)
    if args.val_source and args.val_target:
        written, skipped = write_pairs(args.val_source, args.val_target, out / args.val_output,
                                       source_vocab, target_vocab)
        log.info("%s: %d pairs (%d skipped: a blank side)", args.val_output, written, skipped)
    return 0


def vocabularies(args: argparse.Namespace) -> tuple[Vocab, Vocab]:
    if args.vocab_source_json and args.vocab_target_json:
        return vocabulary.load(args.vocab_source_json), vocabulary.load(args.vocab_target_json)
    if args.single_vocab:
        counts = vocabulary.count_tokens(read_lines(args.train_source))
        counts.update(vocabulary.count_tokens(read_lines(args.train_target)))
        shared = vocabulary.build(counts, args.num_words_source, args.word_min_count_source)
        return shared, shared
    return (vocabulary.build(vocabulary.count_tokens(read_lines(args.train_source)),
                             args.num_words_source, args.word_min_count_source),
            vocabulary.build(vocabulary.count_tokens(read_lines(args.train_target)),
                             args.num_words_target, args.word_min_count_target))


def read_lines(path: Path) -> Iterator[str]:
    if not Path(path).is_file():
        raise ClientError(f"{path}: no such file")
    return text_input.read_lines(Path(path))


def pair_records(source_path: Path, target_path: Path, source_vocab: Vocab,
                 target_vocab: Vocab, skipped: list[int]) -> Iterator[recordio.Record]:
    """One Record per line pair in line order; appends the line number of each skipped pair."""
    read_lines(source_path), read_lines(target_path)  # both must exist
    sizes = [_plain_size(Path(source_path)), _plain_size(Path(target_path))]
    progress = Progress(sum(sizes) if all(sizes) else 0)
    read = 0
    for number, source, target in text_input.line_pairs(Path(source_path), Path(target_path)):
        read += len(source.encode("utf-8")) + len(target.encode("utf-8")) + 2
        progress.update(read)
        if progress.due():
            percent = f", {100 * progress.fraction:.1f}% read, ETA {progress.eta_text()}" if progress.fraction else ""
            log.info("%s: %d line pairs, %.0f pairs/s%s", Path(source_path).name, number,
                     number / progress.seconds, percent)
        if not source.strip() or not target.strip():
            skipped.append(number)
            continue
        record = recordio.Record()
        record.features["source"].int32_tensor.values.extend(source_vocab.ids(source))
        record.features["target"].int32_tensor.values.extend(target_vocab.ids(target))
        yield record


def _plain_size(path: Path) -> int:
    """The file's size when it is not compressed (a share of it read means something), else 0."""
    with open(path, "rb") as f:
        head = f.read(6)
    compressed = head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))
    return 0 if compressed else path.stat().st_size


def write_pairs(source_path: Path, target_path: Path, output: Path, source_vocab: Vocab,
                target_vocab: Vocab) -> tuple[int, int]:
    """Write the .rec file; returns (pairs written, pairs skipped)."""
    skipped: list[int] = []
    with open(output, "wb") as f:
        written = recordio.write_records(f, pair_records(source_path, target_path, source_vocab,
                                                         target_vocab, skipped))
    return written, len(skipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagetext.algorithms.seq2seq.prepare",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    # the one runner of preparation commands, also behind `sagetext seq2seq-prepare`
    from sagetext.cli import run_preparation

    return run_preparation("seq2seq-prepare", run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
