"""Extension: plain parallel text channels instead of RecordIO, optionally with subwords.

A ``train`` or ``validation`` channel in text form holds exactly one ``*.src`` and one ``*.trg``
file (e.g. ``train.src`` and ``train.trg``; gzip, bzip2 or xz work, recognised by their magic bytes,
as in every channel, and a ``.gz``, ``.bz2`` or ``.xz`` suffix may follow the name), line-aligned:
line ``i`` of one file is the translation of line ``i`` of the other. Lines end at ``\n`` only
(a ``\r`` before it is dropped), so a stray ``\r`` or U+2028 inside a sentence cannot shift the
pairs; bytes that are not UTF-8 become U+FFFD. Pairs with a blank side are skipped; files whose
non-blank lines do not pair up (different line counts) are an error. The ``vocab`` channel is
then optional:

- ``subword_vocab_size=0`` (default): the text is whitespace-tokenised; the vocabularies come
  from the ``vocab`` channel when given, else from the training text with create_vocab_proto.py's
  rules (50,000 words, min count 1).
- ``subword_vocab_size=N``: a sentencepiece unigram model of about N pieces is learned per side
  from the raw training text; its pieces are the vocabulary, with SageMaker's special ids
  (``<pad>``=0, ``<unk>``=1, ``<s>``=2, ``</s>``=3). Both models go into the model folder
  (``spm.src.model``, ``spm.trg.model``), and serving then takes raw text and answers
  detokenised text; an attention matrix is then over subword pieces (rows = target pieces).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np
import sentencepiece as spm

from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.algorithms.seq2seq.data import PairStore
from sagetext.contract.channels import Channel
from sagetext.data import compression
from sagetext.errors import ClientError

DEFAULT_NUM_WORDS = 50000
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class TextInputs:
    train: PairStore
    validation: PairStore
    source_vocab: vocabulary.Vocab
    target_vocab: vocabulary.Vocab
    subword_models: dict[str, bytes]  # {} without subwords; else "source"/"target" → model bytes
    detokenise: Callable[[list[int]], str] | None  # subwords: target ids → text, for BLEU


def text_files(channel: Channel) -> tuple[Path, Path] | None:
    """(source, target) files when the channel holds parallel text, else None (RecordIO)."""
    if channel.mode == "Pipe" or not channel.directory.is_dir():
        return None
    files = channel.files()
    sources = [p for p in files if _plain_name(p).endswith(".src")]
    targets = [p for p in files if _plain_name(p).endswith(".trg")]
    if not sources and not targets:
        return None
    if len(sources) != 1 or len(targets) != 1:
        raise ClientError(f"channel '{channel.name}': parallel text needs exactly one *.src and one *.trg file "
                          f"(found {len(sources)} and {len(targets)})")
    return sources[0], targets[0]


def _plain_name(path: Path) -> str:
    """The file name without a compression suffix (``train.src.gz`` → ``train.src``)."""
    for suffix in COMPRESSED_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name.removesuffix(suffix)
    return path.name


def load(channels: dict[str, Channel], subword_vocab_size: int, seed: int) -> TextInputs:
    """Pairs and vocabularies from text train/validation channels (and the vocab channel, if any)."""
    train_files, val_files = text_files(channels["train"]), text_files(channels["validation"])
    if train_files is None or val_files is None:
        raise ClientError("with parallel text, both the train and the validation channel need a *.src and a "
                          "*.trg file")
    models: dict[str, bytes] = {}
    detokenise = None
    if subword_vocab_size > 0:
        models = {side: learn_subwords(read_lines(path), subword_vocab_size, seed, path.name)
                  for side, path in zip(("source", "target"), train_files)}
        processors = {side: spm.SentencePieceProcessor(model_proto=m) for side, m in models.items()}
        vocabs = [subword_vocab(processors["source"]), subword_vocab(processors["target"])]
        encoders = [_subword_encoder(processors["source"]), _subword_encoder(processors["target"])]
        detokenise = _subword_decoder(processors["target"])
    else:
        if "vocab" in channels:
            from sagetext.algorithms.seq2seq import read_vocab_channel
            vocabs = list(read_vocab_channel(channels["vocab"]))
        else:
            vocabs = [vocabulary.build(vocabulary.count_tokens(read_lines(path)), DEFAULT_NUM_WORDS, 1)
                      for path in train_files]
        encoders = [vocabs[0].ids, vocabs[1].ids]
    return TextInputs(read_pairs(*train_files, *encoders), read_pairs(*val_files, *encoders),
                      vocabs[0], vocabs[1], models, detokenise)


def read_lines(path: Path) -> Iterator[str]:
    """The lines of one side of a parallel text file, without their line break (see the module
    docstring), uncompressed; corrupt compressed data or binary content is a ``ClientError``
    naming the file (``data.compression``)."""
    with compression.open_file(path) as stream:
        for line in stream:
            yield line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")


def line_pairs(source: Path, target: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, line ``i`` of ``source``, line ``i`` of ``target``) for every line.

    Extra blank lines at the end of one file are allowed; any other difference in line counts
    is a ``ClientError`` (the files would pair the wrong sentences), raised once the shorter
    file ends."""
    counts = [0, 0]  # lines per side
    unpaired: tuple[int, Path] | None = None  # the first non-blank line with no partner line
    for number, (s, t) in enumerate(zip_longest(read_lines(source), read_lines(target)), start=1):
        counts = [counts[0] + (s is not None), counts[1] + (t is not None)]
        if s is None or t is None:
            if unpaired is None and (s or t or "").strip():
                unpaired = (number, target if s is None else source)
        else:
            yield number, s, t
    if unpaired is not None:
        raise ClientError(f"{source.name} has {counts[0]} lines and {target.name} has {counts[1]}: line "
                          f"{unpaired[0]} of {unpaired[1].name} has no partner line; parallel text needs line i "
                          f"of the *.trg file to be the translation of line i of the *.src file")


def read_pairs(source: Path, target: Path, encode_source: Callable[[str], list[int]],
               encode_target: Callable[[str], list[int]]) -> PairStore:
    """Line ``i`` of ``source`` with line ``i`` of ``target`` (``line_pairs``), encoded, into a
    ``PairStore`` on disk; pairs with a side that encodes to no token are skipped."""
    pairs = PairStore()
    for _, s, t in line_pairs(source, target):
        source_ids, target_ids = encode_source(s), encode_target(t)
        if source_ids and target_ids:  # a side with no token (blank, or only what the tokenizer drops) is skipped
            pairs.append(np.array(source_ids, dtype=np.int64), np.array(target_ids, dtype=np.int64))
    if not len(pairs):
        raise ClientError(f"{source.name} / {target.name}: no sentence pairs (every line pair has a blank side)")
    return pairs


def learn_subwords(lines: Iterable[str], size: int, seed: int, source: str = "the training text") -> bytes:
    """A sentencepiece unigram model (bytes) with SageMaker's special ids, learned from ``lines``
    (of the file named ``source``)."""
    out = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=(line.rstrip("\n") for line in lines), model_writer=out, vocab_size=size,
            model_type="unigram", pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece=vocabulary.PAD,
            unk_piece=vocabulary.UNK, bos_piece=vocabulary.BOS, eos_piece=vocabulary.EOS,
            hard_vocab_limit=False, num_threads=1, minloglevel=2)
    except RuntimeError as exc:
        raise ClientError(f"subword_vocab_size={size}: sentencepiece could not learn a subword model from {source} "
                          f"({exc}); it needs non-blank lines shorter than 4192 bytes, and a subword_vocab_size "
                          "larger than the number of distinct characters in the text") from None
    return out.getvalue()


def subword_vocab(processor: spm.SentencePieceProcessor) -> vocabulary.Vocab:
    return vocabulary.Vocab.from_mapping({processor.id_to_piece(i): i for i in range(processor.get_piece_size())},
                                         "sentencepiece model")


def _subword_encoder(processor: spm.SentencePieceProcessor) -> Callable[[str], list[int]]:
    return lambda text: list(processor.encode(text))


def _subword_decoder(processor: spm.SentencePieceProcessor) -> Callable[[list[int]], str]:
    return lambda ids: str(processor.decode(ids))
