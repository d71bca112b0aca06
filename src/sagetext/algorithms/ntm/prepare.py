"""Make NTM channels from raw text: ``sagetext ntm-prepare``.

Documents: each input path is a text file holding one document a line (``.gz`` read through
gzip), or a folder whose files (all of them, recursively, in name order) are one document each.
Text is read as UTF-8, undecodable bytes replaced.

Tokens: lower-cased, HTML tags (``<br />``) removed, words are runs of letters (digits,
punctuation and apostrophes separate them), shorter than ``--min-length`` dropped, then the
stop words: gensim's English list plus the pieces that contractions leave (``isn``, ``ve``,
...), or ``--stop-words FILE`` (one word a line), or ``none``.

Vocabulary, from the training documents only: words in at least ``--min-df`` documents and in at
most ``--max-df`` of them (a fraction), the ``--vocab-size`` most frequent by document frequency
(ties: more occurrences, then alphabetical). Frequent words are dropped because a word in most
documents says nothing about what any of them is about, and would head every topic.

Written to ``--output-dir``: ``vocab.txt`` (one word a line, in id order: the ``auxiliary``
channel) and ``train.rec``, ``validation.rec``, ``test.rec`` (those given): one RecordIO-protobuf
Record per document, ``features["values"]`` a sparse float32 tensor (``keys`` the word ids,
``values`` their counts, ``shape`` [vocabulary size]), the Record that the SageMaker SDK's
``write_spmatrix_to_sparse_tensor`` writes. A document left with no vocabulary word is skipped
and counted. ``--validation-fraction`` holds out a random share of the training documents
(seeded) when there is no separate validation text. Two passes over the text: memory holds
the word counts, never the documents.

    sagetext ntm-prepare --train reviews/ --validation-fraction 0.1 --output-dir prepared/
"""

from __future__ import annotations

import argparse
import gzip
import logging
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagetext.contract.progress import Progress
from sagetext.data import bow, recordio
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

TRAIN_FILE, VALIDATION_FILE, TEST_FILE = "train.rec", "validation.rec", "test.rec"
# What "isn't", "we've", "she'll" leave once the apostrophe splits them (single letters go by length).
CONTRACTION_PIECES = frozenset({"ve", "ll", "re", "isn", "aren", "wasn", "weren", "hasn", "haven", "hadn",
                                "doesn", "didn", "wouldn", "shouldn", "couldn", "mustn", "needn", "ain"})
_TAG = re.compile(r"<[^<>]{0,200}>")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Tokenizer:
    stop_words: frozenset[str]
    min_length: int = 2

    def __call__(self, text: str) -> list[str]:
        words = _WORD.findall(_TAG.sub(" ", text.lower()))
        return [w for w in words if len(w) >= self.min_length and w not in self.stop_words]


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    ids: dict[str, int]
    candidates: int  # distinct words in the training documents after stop words

    @classmethod
    def build(cls, document_frequency: Counter[str], occurrences: Counter[str], documents: int, size: int,
              min_df: int, max_df: float) -> "Vocabulary":
        ceiling = max_df * documents
        kept = [w for w, df in document_frequency.items() if min_df <= df <= ceiling]
        kept.sort(key=lambda w: (-document_frequency[w], -occurrences[w], w))
        words = kept[:size]
        return cls(words, {w: i for i, w in enumerate(words)}, len(document_frequency))


@dataclass
class Counts:
    documents: int = 0
    tokens: int = 0
    skipped: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", nargs="+", required=True, type=Path, metavar="PATH",
                        help="training text: files (one document a line) or folders (one document a file)")
    parser.add_argument("--validation", nargs="+", type=Path, metavar="PATH", help="validation text, as --train")
    parser.add_argument("--test", nargs="+", type=Path, metavar="PATH", help="test text, as --train")
    parser.add_argument("--validation-fraction", type=float, default=0.0,
                        help="hold out this share of the training documents as validation.rec (default: 0)")
    parser.add_argument("--vocab-size", type=int, default=2000, help="at most this many words (default: %(default)s)")
    parser.add_argument("--min-df", type=int, default=5,
                        help="keep words in at least this many training documents (default: %(default)s)")
    parser.add_argument("--max-df", type=float, default=0.5,
                        help="drop words in more than this share of the training documents (default: %(default)s)")
    parser.add_argument("--min-length", type=int, default=2, help="shortest word kept (default: %(default)s)")
    parser.add_argument("--stop-words", default="english",
                        help="'english' (gensim's list), 'none', or a file of words, one a line (default: english)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --validation-fraction's draw (default: 0)")
    parser.add_argument("--output-dir", type=Path, default=Path("."),
                        help="where vocab.txt and the .rec files go (default: the current folder)")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    tokenize = Tokenizer(stop_words(args.stop_words), args.min_length)
    train_paths = list(args.train)
    held_out = HeldOut(args.validation_fraction, args.seed)
    document_frequency: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    documents = 0
    for text in read_documents(train_paths):
        if held_out.next():
            continue
        words = tokenize(text)
        occurrences.update(words)
        document_frequency.update(set(words))
        documents += 1
    if documents == 0:
        raise ClientError(f"--train {' '.join(map(str, train_paths))}: no documents")
    vocab = Vocabulary.build(document_frequency, occurrences, documents, args.vocab_size, args.min_df, args.max_df)
    if not vocab.words:
        raise ClientError(f"no word is in at least --min-df={args.min_df} and at most --max-df={args.max_df} of the "
                          f"{documents} training documents; lower --min-df or raise --max-df")
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / bow.VOCAB_FILE).write_text("".join(w + "\n" for w in vocab.words), encoding="utf-8")
    log.info("%s: %d words (of %d distinct words after stop words; --min-df %d, --max-df %g)", bow.VOCAB_FILE,
             len(vocab.words), vocab.candidates, args.min_df, args.max_df)
    held_out = HeldOut(args.validation_fraction, args.seed)
    outputs = [(TRAIN_FILE, train_paths, lambda: not held_out.next())]
    if args.validation_fraction > 0:
        again = HeldOut(args.validation_fraction, args.seed)
        outputs.append((VALIDATION_FILE, train_paths, again.next))
    if args.validation:
        outputs.append((VALIDATION_FILE, list(args.validation), lambda: True))
    if args.test:
        outputs.append((TEST_FILE, list(args.test), lambda: True))
    for name, paths, take in outputs:
        counts = write_channel(out / name, read_documents(paths), take, tokenize, vocab)
        log.info("%s: %d documents, %d tokens (%d documents skipped: no vocabulary word)", name,
                 counts.documents, counts.tokens, counts.skipped)
    log.info("Train with feature_dim=%d; put %s in the auxiliary channel", len(vocab.words), bow.VOCAB_FILE)
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    problems = []
    if not 0.0 <= args.validation_fraction < 1.0:
        problems.append(f"--validation-fraction {args.validation_fraction}: expected a number in [0, 1)")
    if args.validation_fraction > 0 and args.validation:
        problems.append("--validation-fraction and --validation: give one or the other")
    if args.vocab_size < 1:
        problems.append(f"--vocab-size {args.vocab_size}: expected an integer >= 1")
    if args.min_df < 1:
        problems.append(f"--min-df {args.min_df}: expected an integer >= 1")
    if not 0.0 < args.max_df <= 1.0:
        problems.append(f"--max-df {args.max_df}: expected a fraction in (0, 1]")
    if args.min_length < 1:
        problems.append(f"--min-length {args.min_length}: expected an integer >= 1")
    for path in [*args.train, *(args.validation or []), *(args.test or [])]:
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
    if problems:
        raise ClientError("; ".join(problems))


class HeldOut:
    """The same seeded sequence of draws on every pass: True = the document is held out."""

    def __init__(self, fraction: float, seed: int) -> None:
        self.fraction = fraction
        self.rng = random.Random(seed)

    def next(self) -> bool:
        return self.fraction > 0 and self.rng.random() < self.fraction


def stop_words(choice: str) -> frozenset[str]:
    if choice == "english":
        from gensim.parsing.preprocessing import STOPWORDS

        return frozenset(STOPWORDS) | CONTRACTION_PIECES
    if choice == "none":
        return frozenset()
    path = Path(choice)
    if not path.is_file():
        raise ClientError(f"--stop-words {choice}: expected 'english', 'none' or a file of words, one a line")
    return frozenset(line.strip().lower() for line in path.read_text("utf-8", errors="replace").splitlines()
                     if line.strip())


def read_documents(paths: Sequence[Path]) -> Iterator[str]:
    """Each file's lines (non-blank), or each file under a folder as a whole, in order; a
    progress line with the share read and an ETA every few seconds (bytes of text read against
    the files' sizes; no ETA when a file is gzip-compressed)."""
    files = [sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] for path in paths]
    every = [file for group in files for file in group]
    total = 0 if any(f.suffix == ".gz" for f in every) else sum(f.stat().st_size for f in every)
    progress = Progress(total)
    read = documents = 0
    for path, group in zip(paths, files):
        for file in group:
            with _open(file) as f:
                for text in [f.read()] if path.is_dir() else f:
                    read += len(text.encode("utf-8"))
                    if not path.is_dir() and not text.strip():
                        continue  # a blank line is no document
                    documents += 1
                    progress.update(read)
                    if progress.due():
                        share = f", {100 * progress.fraction:.1f}% read, ETA {progress.eta_text()}" \
                            if progress.fraction else ""
                        log.info("%d documents, %.0f documents/s%s", documents, documents / progress.seconds, share)
                    yield text


def _open(path: Path):  # noqa: ANN202 - a text stream
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def document_record(words: list[str], vocab: Vocabulary) -> recordio.Record | None:
    """The sparse count Record of one tokenized document; None when no word is in ``vocab``."""
    counts = Counter(vocab.ids[w] for w in words if w in vocab.ids)
    if not counts:
        return None
    keys = np.array(sorted(counts), dtype=np.uint64)
    values = np.array([counts[int(k)] for k in keys], dtype=np.float32)
    record = recordio.Record()
    record.features["values"].CopyFrom(
        recordio.sparse_to_value(recordio.SparseTensor(keys, values, (len(vocab.words),))))
    return record


def write_channel(path: Path, documents: Iterator[str], take: Callable[[], bool], tokenize: Tokenizer,
                  vocab: Vocabulary) -> Counts:
    counts = Counts()

    def records() -> Iterator[recordio.Record]:
        for text in documents:
            if not take():
                continue
            record = document_record(tokenize(text), vocab)
            if record is None:
                counts.skipped += 1
                continue
            counts.documents += 1
            counts.tokens += int(sum(record.features["values"].float32_tensor.values))
            yield record

    with open(path, "wb") as f:
        recordio.write_records(f, records())
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagetext.algorithms.ntm.prepare",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    # the one runner of preparation commands, also behind `sagetext ntm-prepare`
    from sagetext.cli import run_preparation

    return run_preparation("ntm-prepare", run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
