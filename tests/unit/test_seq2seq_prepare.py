"""``seq2seq.prepare`` writes what SageMaker's create_vocab_proto.py writes:
the expected bytes are built here independently, from ``record_pb2.Record`` and the framing."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
from sagemaker_training.record_pb2 import Record

from sagetext.algorithms.seq2seq import prepare
from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.errors import ClientError

SOURCE = ["the cat sat", "the dog", "", "a cat über the", "the the end", "x"]
TARGET = ["die katze saß", "der hund", "leer", "eine katze über die", "die die ende", "  "]


def framed(payload: bytes) -> bytes:
    """create_vocab_proto.py's write_recordio: magic, length, payload, zero padding to 4 bytes."""
    padding = (((len(payload) + 3) >> 2) << 2) - len(payload)
    return struct.pack("<I", 0xCED7230A) + struct.pack("<I", len(payload)) + payload + b"\x00" * padding


def expected_records(source: list[str], target: list[str], src_vocab: dict, trg_vocab: dict) -> bytes:
    out = b""
    for s, t in zip(source, target):
        if not s.strip() or not t.strip():
            continue
        record = Record()
        record.features["source"].int32_tensor.values.extend([src_vocab.get(w, 1) for w in s.split()])
        record.features["target"].int32_tensor.values.extend([trg_vocab.get(w, 1) for w in t.split()])
        out += framed(record.SerializeToString())
    return out


@pytest.fixture
def text_files(tmp_path: Path) -> dict[str, Path]:
    files = {"train.src": tmp_path / "train.src.gz", "train.trg": tmp_path / "train.trg",
             "val.src": tmp_path / "val.src", "val.trg": tmp_path / "val.trg"}
    with gzip.open(files["train.src"], "wt", encoding="utf-8") as f:
        f.write("\n".join(SOURCE) + "\n")
    files["train.trg"].write_text("\n".join(TARGET) + "\n", encoding="utf-8")
    files["val.src"].write_text("the zebra cat\n\nthe\n", encoding="utf-8")
    files["val.trg"].write_text("die zebra katze\nx\ndie\n", encoding="utf-8")
    return files


def run(files: dict[str, Path], out: Path, *extra: str) -> None:
    assert prepare.main(["-ts", str(files["train.src"]), "-tt", str(files["train.trg"]),
                         "-vs", str(files["val.src"]), "-vt", str(files["val.trg"]),
                         "--output-dir", str(out), *extra]) == 0


def test_records_and_vocabularies_match_create_vocab_proto_byte_for_byte(text_files: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(text_files, out)
    # counts over every line (also those of skipped pairs): the 5, cat 2, the rest 1 each;
    # ties by word, descending ("über" > "x" > "sat" in code points)
    src = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "the": 4, "cat": 5, "über": 6, "x": 7, "sat": 8,
           "end": 9, "dog": 10, "a": 11}
    trg = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "die": 4, "katze": 5, "über": 6, "saß": 7,
           "leer": 8, "hund": 9, "ende": 10, "eine": 11, "der": 12}
    assert (out / "vocab.src.json").read_bytes() == json.dumps(src, indent=4, ensure_ascii=False).encode("utf-8")
    assert (out / "vocab.trg.json").read_bytes() == json.dumps(trg, indent=4, ensure_ascii=False).encode("utf-8")
    assert (out / "train.rec").read_bytes() == expected_records(SOURCE, TARGET, src, trg)
    assert (out / "val.rec").read_bytes() == expected_records(["the zebra cat", "", "the"],
                                                              ["die zebra katze", "x", "die"], src, trg)


def test_min_count_and_num_words_leave_the_specials_alone(text_files: dict[str, Path], tmp_path: Path) -> None:
    run(text_files, tmp_path / "out", "--word-min-count-source", "2", "--num-words-target", "2")
    src = json.loads((tmp_path / "out" / "vocab.src.json").read_text())
    trg = json.loads((tmp_path / "out" / "vocab.trg.json").read_text())
    assert list(src) == ["<pad>", "<unk>", "<s>", "</s>", "the", "cat"]
    assert list(trg) == ["<pad>", "<unk>", "<s>", "</s>", "die", "katze"]


def test_single_vocab_is_shared_and_existing_vocabularies_are_reused(text_files: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    run(text_files, tmp_path / "single", "-single-vocab")
    shared = (tmp_path / "single" / "vocab.src.json").read_bytes()
    assert (tmp_path / "single" / "vocab.trg.json").read_bytes() == shared
    assert {"the", "die", "über"} <= set(json.loads(shared))
    run(text_files, tmp_path / "reuse", "--vocab-source-json", str(tmp_path / "single" / "vocab.src.json"),
        "--vocab-target-json", str(tmp_path / "single" / "vocab.trg.json"))
    assert (tmp_path / "reuse" / "train.rec").read_bytes() == (tmp_path / "single" / "train.rec").read_bytes()


def test_vocabulary_ids_must_be_dense(tmp_path: Path) -> None:
    path = tmp_path / "vocab.trg.json"
    path.write_text('{"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "a": 5}')
    with pytest.raises(ClientError, match="id 4 is unused"):
        vocabulary.load(path)
    path.write_text('{"<pad>": 1, "<unk>": 0, "<s>": 2, "</s>": 3}')
    with pytest.raises(ClientError, match="'<pad>' has id 1; expected 0"):
        vocabulary.load(path)


def test_files_that_do_not_pair_up_or_do_not_decompress_are_refused(tmp_path: Path) -> None:
    """Like the training channels' text reader: mismatched line counts and broken gzip are
    client errors, a bare carriage return does not start a new pair."""
    vocab = vocabulary.build(vocabulary.count_tokens(["a b c"]), 100, 1)
    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("a\nb\nc\n")
    target.write_text("a\nb\n")
    with pytest.raises(ClientError, match="has 3 lines and t.txt has 2"):
        prepare.write_pairs(source, target, tmp_path / "x.rec", vocab, vocab)
    target.write_bytes(gzip.compress(b"a\nb\nc\n")[:-12])
    with pytest.raises(ClientError, match="cannot be decompressed"):
        prepare.write_pairs(source, target, tmp_path / "x.rec", vocab, vocab)
    target.write_text("a\rb\nb\nc\n")
    assert prepare.write_pairs(source, target, tmp_path / "x.rec", vocab, vocab) == (3, 0)
    with pytest.raises(ClientError, match="no such file"):
        prepare.write_pairs(tmp_path / "missing.txt", target, tmp_path / "x.rec", vocab, vocab)
