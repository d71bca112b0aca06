"""Seq2Seq vocabularies: the ``vocab.src.json`` / ``vocab.trg.json`` files of the ``vocab`` channel.

A vocabulary is a JSON object token → id with the special tokens ``<pad>``=0, ``<unk>``=1,
``<s>``=2, ``</s>``=3, exactly as SageMaker's ``create_vocab_proto.py`` writes it. This
module reads and checks such files (a file without the special tokens, or with ids that are
not 0..n-1, is the user's error), builds new ones with the script's rules, and writes them
byte-compatible with the script (``indent=4``, ``ensure_ascii=False``, UTF-8).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from sagetext.data import compression
from sagetext.errors import ClientError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = (PAD, UNK, BOS, EOS)
SOURCE_FILE = "vocab.src.json"
TARGET_FILE = "vocab.trg.json"


@dataclass(frozen=True)
class Vocab:
    """token → id and back; ``ids`` maps whitespace tokens, unknown ones to ``<unk>``."""

    token_to_id: Mapping[str, int]
    id_to_token: tuple[str, ...]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], name: str = "vocabulary") -> "Vocab":
        """Check a parsed vocabulary JSON object and build the Vocab; errors name the file and token."""
        if not isinstance(mapping, Mapping):
            raise ClientError(f"{name}: expected a JSON object of token: id, got {type(mapping).__name__}")
        for token, wanted in zip(SPECIALS, range(len(SPECIALS))):
            if token not in mapping:
                raise ClientError(f"{name}: the special token {token!r} is missing; a Seq2Seq vocabulary "
                                  f"must map {', '.join(f'{t}={i}' for i, t in enumerate(SPECIALS))}")
            if mapping[token] != wanted:
                raise ClientError(f"{name}: the special token {token!r} has id {mapping[token]!r}; expected {wanted}")
        by_id: dict[int, str] = {}
        for token, index in mapping.items():
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise ClientError(f"{name}: token {token!r} has id {index!r}; expected a non-negative integer")
            if index in by_id:
                raise ClientError(f"{name}: tokens {by_id[index]!r} and {token!r} share the id {index}")
            by_id[index] = token
        if len(by_id) and max(by_id) != len(by_id) - 1:
            missing = next(i for i in range(len(by_id)) if i not in by_id)
            raise ClientError(f"{name}: ids must be 0..{len(by_id) - 1} without gaps; id {missing} is unused")
        return cls(dict(mapping), tuple(by_id[i] for i in range(len(by_id))))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.id_to_token)

    def ids(self, text: str) -> list[int]:
        return [self.token_to_id.get(token, UNK_ID) for token in text.split()]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``</s>``; ``<pad>`` and ``<s>`` are dropped."""
        out = []
        for index in ids:
            if index == EOS_ID:
                break
            if index not in (PAD_ID, BOS_ID):
                out.append(self.id_to_token[index])
        return out


def load(path: Path) -> Vocab:
    """Read and check one vocabulary JSON file (gzip, bzip2 or xz undone, see ``data.compression``)."""
    try:
        mapping = json.loads(compression.read_bytes(Path(path)).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientError(f"{Path(path).name}: cannot be read as a JSON vocabulary ({exc})") from None
    return Vocab.from_mapping(mapping, Path(path).name)


def to_json(vocab: Vocab | Mapping[str, int]) -> str:
    """The file text, as create_vocab_proto.py's ``json.dump(vocab, out, indent=4, ensure_ascii=False)``."""
    mapping = vocab.token_to_id if isinstance(vocab, Vocab) else vocab
    return json.dumps(dict(mapping), indent=4, ensure_ascii=False)


def save(vocab: Vocab | Mapping[str, int], path: Path) -> None:
    Path(path).write_text(to_json(vocab), encoding="utf-8")


def count_tokens(lines: Iterable[str]) -> Counter[str]:
    """Whitespace-token counts, the special tokens left out (as the script does)."""
    specials = set(SPECIALS)
    return Counter(token for line in lines for token in line.split() if token not in specials)


def build(counts: Counter[str], num_words: int, min_count: int) -> Vocab:
    """Specials first, then words by (count, word) descending with count >= min_count, at most
    ``num_words`` of them (the specials not counted): create_vocab_proto.py's ``prune_vocab``."""
    pruned = sorted(((c, w) for w, c in counts.items() if c >= min_count), reverse=True)
    words = islice((w for _, w in pruned), num_words)
    mapping = {word: index for index, word in enumerate(chain(SPECIALS, words))}
    return Vocab(mapping, tuple(mapping))
