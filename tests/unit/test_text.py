"""Labelled text readers: fastText tokenization, JSON Lines manifests, sharding, bad lines."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import random
import threading
from pathlib import Path

import fasttext
import numpy as np
import pytest
from sagemaker_training import recordio as sdk_recordio

from sagetext.contract.channels import Channel
from sagetext.contract.paths import Paths
from sagetext.data.manifest import manifest_line
from sagetext.data.text import LabeledReader, line_owner, tokenize, tokenize_lines
from sagetext.errors import ClientError

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "blazingtext" / "train.txt"


def channel(tmp_path: Path, files: dict[str, bytes], name: str = "train", content_type: str | None = None) -> Channel:
    folder = tmp_path / "input" / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    return Channel(name, content_type=content_type, paths=Paths(tmp_path))


def read_all(reader: LabeledReader) -> list[tuple[list[bytes], list[bytes]]]:
    return [line for block in reader for line in block.lines()]


def test_tokens_match_fasttexts_own_tokenizer() -> None:
    rng = random.Random(3)
    pieces = ["a", "bé", "__label__x", "__label__y", "</s>x", "ü", "q", " ", "\t", "\v", "\r", "\f", "\0", "  ", "\x1c"]
    for _ in range(200):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        lines = "\n".join(text for _ in range(rng.randint(1, 3))) + "\n"
        expected = [t for t in fasttext.tokenize(lines) if t != "</s>"]
        block = tokenize(lines.encode("utf-8"))
        assert [t.decode("utf-8") for t in block.tokens] == expected
        assert block.num_lines == lines.count("\n")
        assert block.is_label.tolist() == [t.startswith("__label__") for t in expected]


def test_labels_anywhere_and_several_per_line() -> None:
    block = tokenize(b"__label__a good film __label__b\nplain words __label__c\n\n__label__d\nlast line")
    assert list(block.lines()) == [
        ([b"__label__a", b"__label__b"], [b"good", b"film"]),
        ([b"__label__c"], [b"plain", b"words"]),
        ([], []),
        ([b"__label__d"], []),
        ([], [b"last", b"line"]),
    ]


def test_tokenize_lines_keeps_one_line_per_string() -> None:
    block = tokenize_lines(["one two", "", "three\nfour"])
    assert block.line_lengths.tolist() == [2, 0, 2]
    assert tokenize_lines([]).num_lines == 0


def test_reads_plain_and_gzip_files_of_a_channel(tmp_path: Path) -> None:
    sample = SAMPLE.read_bytes()
    ch = channel(tmp_path, {"a.txt": sample, "b.txt.gz": gzip.compress(b"__label__x hello world\n")})
    reader = LabeledReader(ch)
    lines = read_all(reader)
    assert len(lines) == sample.count(b"\n") + 1
    assert lines[-1] == ([b"__label__x"], [b"hello", b"world"])
    assert reader.report.lines_used == len(lines) and not reader.report.skipped


def test_bad_lines_are_counted_and_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = b"__label__a ok line\nno label here\n\n__label__b\n__label__c fine\n\xff\xfe __label__d broken utf8\n"
    ch = channel(tmp_path, {"data.txt": data})
    reader = LabeledReader(ch)
    with caplog.at_level(logging.WARNING, logger="sagetext"):
        lines = read_all(reader)
    assert [labels for labels, _ in lines] == [[b"__label__a"], [b"__label__c"], [b"__label__d"]]
    assert lines[2][1][0] == "\ufffd\ufffd".encode("utf-8")
    report = reader.report
    assert report.lines_read == 6 and report.lines_used == 3
    assert report.skipped == {"no label": 1, "blank": 1, "no words": 1}
    assert report.examples == ["data.txt:2 (no label)", "data.txt:3 (blank)", "data.txt:4 (no words)"]
    assert report.utf8_repaired == 1
    skipped_lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped_lines) == 1 and "data.txt:2 (no label)" in skipped_lines[0]


def test_a_channel_without_usable_lines_names_its_files(tmp_path: Path) -> None:
    ch = channel(tmp_path, {"empty.txt": b"no labels\nat all\n", "also.txt": b"\n\n"})
    with pytest.raises(ClientError, match=r"no usable line in also.txt, empty.txt.*empty.txt:1 \(no label\)"):
        read_all(LabeledReader(ch))


def test_shards_are_disjoint_cover_every_line_and_keep_the_order(tmp_path: Path) -> None:
    ch = channel(tmp_path, {"a.txt": b"".join(b"__label__a w%d\n" % i for i in range(7)),
                            "b.txt": b"".join(b"__label__b v%d\n" % i for i in range(6))})
    everything = read_all(LabeledReader(ch))
    owners = line_owner(np.arange(13), 3).tolist()
    for rank in range(3):
        assert read_all(LabeledReader(ch, rank=rank, world_size=3)) == [
            line for line, owner in zip(everything, owners) if owner == rank]


def test_alternating_labels_are_spread_over_the_shards(tmp_path: Path) -> None:
    # ``i % 2`` would hand each of 2 workers a single class of this file.
    ch = channel(tmp_path, {"a.txt": b"".join(b"__label__%s w\n" % (b"pos" if i % 2 else b"neg")
                                              for i in range(1000))})
    for rank in range(2):
        labels = [labels[0] for labels, _ in read_all(LabeledReader(ch, rank=rank, world_size=2))]
        assert 200 < labels.count(b"__label__pos") < 300 and 200 < labels.count(b"__label__neg") < 300


def test_shard_line_numbers_in_reports(tmp_path: Path) -> None:
    data = b"".join(b"__label__a x%d\n" % i if i % 3 else b"no label %d\n" % i for i in range(30))
    ch = channel(tmp_path, {"a.txt": data})
    reader = LabeledReader(ch, rank=1, world_size=2)
    read_all(reader)
    mine = [i for i, owner in enumerate(line_owner(np.arange(30), 2).tolist()) if owner == 1 and i % 3 == 0]
    assert reader.report.examples == [f"a.txt:{i + 1} (no label)" for i in mine][:5]
    assert reader.report.skipped == {"no label": len(mine)}


def test_augmented_manifest_json_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = (b'{"source": "a fine film", "label": 1}\n'
            b'{"source": "two labels", "label": [0, 3]}\n'
            b'{"source": "named", "label": "pos"}\n'
            b'{"source": "float label", "label": 2.0}\n'
            b'not json at all\n'
            b'{"label": 1}\n')
    ch = channel(tmp_path, {"manifest.jsonl": data})
    reader = LabeledReader(ch)
    lines = read_all(reader)
    assert lines == [([b"__label__1"], [b"a", b"fine", b"film"]),
                     ([b"__label__0", b"__label__3"], [b"two", b"labels"]),
                     ([b"__label__pos"], [b"named"]),
                     ([b"__label__2"], [b"float", b"label"])]
    assert reader.report.skipped == {"bad JSON record": 2}
    assert reader.report.examples == ["manifest.jsonl:5 (bad JSON record)", "manifest.jsonl:6 (bad JSON record)"]


def test_manifest_detected_by_content_type(tmp_path: Path) -> None:
    ch = channel(tmp_path, {"m": b'  {"source": "x y", "label": 5}\n'}, content_type="application/jsonlines")
    assert read_all(LabeledReader(ch)) == [([b"__label__5"], [b"x", b"y"])]


@pytest.mark.parametrize("line", [b'{"source": 3, "label": 1}', b'{"source": "x", "label": true}',
                                  b'{"source": "x", "label": []}', b'{"source": "x", "label": "a b"}', b"[1, 2]"])
def test_invalid_manifest_records(line: bytes) -> None:
    assert manifest_line(line) is None


def recordio_wrapped(lines: list[bytes]) -> bytes:
    """Lines as SageMaker's Pipe mode sends them with RecordWrapperType RecordIO (its own writer)."""
    out = io.BytesIO()
    for line in lines:
        sdk_recordio._write_recordio(out, line)
    return out.getvalue()


MANIFEST = [b'{"source": "a fine film", "label": 1}', b'{"source": "two labels", "label": [0, 3]}',
            b'not json', b'{"source": "line\\nbreak", "label": "x"}']  # a JSON-escaped line break


def test_recordio_wrapped_manifest_reads_like_json_lines(tmp_path: Path) -> None:
    plain = LabeledReader(channel(tmp_path / "plain", {"m.jsonl": b"\n".join(MANIFEST) + b"\n"}))
    wrapped = LabeledReader(channel(tmp_path / "wrapped", {"m.rec": recordio_wrapped(MANIFEST)},
                                    content_type="application/jsonlines"))
    assert read_all(wrapped) == read_all(plain) == [
        ([b"__label__1"], [b"a", b"fine", b"film"]), ([b"__label__0", b"__label__3"], [b"two", b"labels"]),
        ([b"__label__x"], [b"line", b"break"])]
    assert wrapped.report.skipped == plain.report.skipped == {"bad JSON record": 1}
    # __label__ text wrapped the same way: a record holds lines, each read as in the file
    wrapped_text = recordio_wrapped([b"__label__a x\ny __label__c", b"__label__b z\n"])
    text = LabeledReader(channel(tmp_path / "text", {"t.rec": wrapped_text}))
    assert read_all(text) == [([b"__label__a"], [b"x"]), ([b"__label__c"], [b"y"]), ([b"__label__b"], [b"z"])]


def test_a_recordio_wrapped_file_reads_like_the_file(tmp_path: Path) -> None:
    """RecordWrapperType RecordIO over an S3 prefix: SageMaker wraps each whole object as one record."""
    text = SAMPLE.read_bytes()
    manifest = b"".join(b'{"source": "%s", "label": %d}\n' % (line.split(b" ", 1)[1], i % 3)
                        for i, line in enumerate(text.splitlines()))
    for name, data in (("text", text), ("manifest", manifest)):
        plain = read_all(LabeledReader(channel(tmp_path / name, {"f": data})))
        halves = [data[:data.index(b"\n", len(data) // 2) + 1], data[data.index(b"\n", len(data) // 2) + 1:]]
        wrapped = read_all(LabeledReader(channel(tmp_path / f"{name}-rec", {"f.rec": recordio_wrapped(halves)})))
        assert wrapped == plain and len(plain) == text.count(b"\n")


# An augmented manifest as SageMaker streams it in Pipe mode with AttributeNames ["source", "label"]
# and RecordWrapperType RecordIO: each attribute value of each line is its own record, in that order.
MANIFEST_LINES = [{"source": "a fine film", "label": 1}, {"source": "two labels", "label": [0, 3]},
                  {"source": "named label", "label": "pos"}, {"source": "float label", "label": 2.0},
                  {"source": "quote \" and tab\t inside", "label": [7]}]


def attribute_records(lines: list[dict], quoted_sources: bool) -> list[bytes]:
    """Each line's source, then its label: the label as JSON, the source as JSON or as its text."""
    records = []
    for line in lines:
        source = json.dumps(line["source"]) if quoted_sources else line["source"]
        records += [source.encode(), json.dumps(line["label"]).encode()]
    return records


@pytest.mark.parametrize("quoted_sources", [False, True])
def test_attribute_records_read_like_the_manifest_lines(tmp_path: Path, quoted_sources: bool) -> None:
    in_file = LabeledReader(channel(tmp_path / "file", {"m.jsonl": "".join(
        json.dumps(line) + "\n" for line in MANIFEST_LINES).encode()}))
    records = attribute_records(MANIFEST_LINES, quoted_sources) + [b"bare label token", b"neg", b"\"no label\""]
    piped = LabeledReader(channel(tmp_path / "pipe", {"train_0": recordio_wrapped(records)},
                                  content_type="application/jsonlines"))
    expected = read_all(in_file)
    assert expected == [([b"__label__1"], [b"a", b"fine", b"film"]),
                        ([b"__label__0", b"__label__3"], [b"two", b"labels"]),
                        ([b"__label__pos"], [b"named", b"label"]), ([b"__label__2"], [b"float", b"label"]),
                        ([b"__label__7"], [b"quote", b'"', b"and", b"tab", b"inside"])]
    assert read_all(piped) == expected + [([b"__label__neg"], [b"bare", b"label", b"token"])]
    assert piped.report.lines_read == 7 and piped.report.lines_used == 6
    # the last source has no label record: reported with its line number, not silently dropped
    assert piped.report.skipped == {"bad JSON record": 1} and piped.report.examples == ["train_0:7 (bad JSON record)"]


def test_attribute_records_with_bad_labels_are_counted_and_reported(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    records = [b"good line", b"1", b"bad label", b"true", b"spaces", b'"a b"', b"empty list", b"[]", b"ok", b"[2, 3]"]
    reader = LabeledReader(channel(tmp_path, {"train_0": recordio_wrapped(records)}))
    with caplog.at_level(logging.WARNING):
        assert read_all(reader) == [([b"__label__1"], [b"good", b"line"]),
                                    ([b"__label__2", b"__label__3"], [b"ok"])]
    assert reader.report.examples == [f"train_0:{n} (bad JSON record)" for n in (2, 3, 4)]
    assert "skipped 3 of 5 lines" in caplog.text


def test_attribute_names_in_the_wrong_order_are_a_client_error_saying_so(tmp_path: Path) -> None:
    records = [record for line in MANIFEST_LINES[:3] for record in reversed(attribute_records([line], False))]
    with pytest.raises(ClientError, match=r'AttributeNames \["source", "label"\], in that order'):
        read_all(LabeledReader(channel(tmp_path, {"train_0": recordio_wrapped(records)})))


def test_broken_recordio_wrapping_is_a_client_error(tmp_path: Path) -> None:
    data = recordio_wrapped(MANIFEST)[:-7]
    with pytest.raises(ClientError, match="m.rec: starts as RecordIO-wrapped records but"):
        read_all(LabeledReader(channel(tmp_path, {"m.rec": data})))


def test_pipe_mode_augmented_manifest_from_a_fifo(tmp_path: Path) -> None:
    """Pipe mode: the manifest arrives RecordIO-wrapped through the epoch's FIFO."""
    paths = Paths(tmp_path)
    fifo = paths.pipe_path("train", 0)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(recordio_wrapped(MANIFEST * 1000))

    writer = threading.Thread(target=feed)
    writer.start()
    reader = LabeledReader(Channel("train", content_type="application/jsonlines", mode="Pipe",
                                   record_wrapper="RecordIO", paths=paths))
    lines = read_all(reader)
    writer.join()
    assert len(lines) == 3000 and lines[:3] == read_all(LabeledReader(channel(
        tmp_path / "plain", {"m.jsonl": b"\n".join(MANIFEST) + b"\n"})))
    assert reader.report.skipped == {"bad JSON record": 1000}
