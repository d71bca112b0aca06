"""Parsers a user can reach, fed arbitrary input, for those ``tests/unit`` does not
already fuzz (the codecs, RecordIO framing and hyperparameters are covered there).

Each returns a value or raises ``ClientError``; nothing else escapes. Covered here: every
predictor's ``predict`` on arbitrary decoded JSON (what an HTTP body turns into), NTM's
bag-of-words channel reader (CSV, RecordIO, gzip), ``vocab.txt`` and auxiliary word vectors,
Seq2Seq's vocabulary JSON, RecordIO pair reader and parallel-text channels (whitespace tokens
and sentencepiece subwords), BlazingText's ``__label__`` and augmented-manifest reader
(``data.text.LabeledReader``) through real File-mode channels, fastText ``.bin`` loading
(``model_file.read`` and ``vectors.read_vectors``) on random and mutated model files. The
bugs these found have example-based regression tests beside them.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sagetext.contract.channels import Channel
from sagetext.contract.paths import Paths
from sagetext.data.media_types import JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError
from sagetext.serving import codecs
from sagetext.serving.negotiation import negotiate
from tests.reliability.conftest import NTM_DIM

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(["", " ", "the", "1 2 3", "__label__x", "\u00e9", "\U0001f600"]),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
        st.sampled_from(["instances", "features", "data", "values", "keys", "shape", "source", "k", "configuration",
                         "attention_matrix", "x"]) | st.text(max_size=5), inner, max_size=5),
    max_leaves=40)


def shaped_requests(algorithm: str) -> st.SearchStrategy:
    """Values shaped like each predictor's request, with arbitrary parts inside."""
    numbers = st.lists(st.integers(-3, 5) | st.floats(-1e3, 1e3) | json_values, max_size=NTM_DIM + 2)
    if algorithm == "ntm":
        instance = st.fixed_dictionaries({"features": numbers}) | st.fixed_dictionaries(
            {"data": st.fixed_dictionaries({"features": st.fixed_dictionaries(
                {"values": numbers}, optional={"keys": numbers, "shape": st.lists(st.integers(-1, 20), max_size=3)})})})
    elif algorithm == "seq2seq":
        instance = st.fixed_dictionaries({"data": st.text(max_size=30) | json_values}, optional={
            "configuration": st.fixed_dictionaries({"attention_matrix": st.sampled_from(["true", "false", True, 1])})
            | json_values})
    elif algorithm == "supervised":
        instance = st.text(max_size=40) | json_values
    else:
        instance = st.text(max_size=15) | json_values
    body = st.fixed_dictionaries({"instances": st.lists(instance, max_size=4)},
                                 optional={"configuration": st.fixed_dictionaries({"k": json_values})})
    return body | json_values


@pytest.fixture(scope="module")
def predictors(trained_models: dict) -> dict:
    from sagetext import algorithms

    names = {"ntm": "ntm", "seq2seq": "seq2seq", "supervised": "blazingtext", "word2vec": "blazingtext"}
    return {algorithm: algorithms.get(name).load(trained_models[algorithm]) for algorithm, name in names.items()
            if not isinstance(trained_models[algorithm], str)}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ntm", "seq2seq", "supervised", "word2vec"])
def test_predict_on_arbitrary_json(predictors: dict, algorithm: str) -> None:
    if algorithm not in predictors:
        pytest.skip(f"{algorithm} model not available")
    predictor = predictors[algorithm]

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        content_type = data.draw(st.sampled_from([t for t in predictor.answers if t in (JSON, JSONLINES)]))
        value = data.draw(shaped_requests(algorithm))
        if content_type == JSONLINES:
            value = value if isinstance(value, list) else [value]
        body = codecs.encode(JSONLINES if content_type == JSONLINES else JSON, value)
        decoded = codecs.decode(content_type, body)  # as the server would hand it over
        response_type = negotiate(predictor, content_type, None)
        try:
            result = predictor.predict(decoded, content_type, response_type)
        except ClientError as error:
            assert error.message and 400 <= error.status < 500
            return
        codecs.encode(response_type, result)  # the answer can be written

    check()


# ---- channel readers ---------------------------------------------------------------------------

def channel_with(tmp_path: Path, name: str, files: dict[str, bytes], content_type: str | None = None) -> Channel:
    folder = tmp_path / "input" / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    return Channel(name, content_type=content_type, paths=Paths(tmp_path))


def good_csv() -> bytes:
    from tests.reliability.conftest import ntm_rows

    return ntm_rows(5).encode()


def good_recordio() -> bytes:
    import numpy as np

    rows = [np.asarray([float(x) for x in line.split(",")], np.float32) for line in good_csv().decode().split()]
    return codecs.encode(RECORDIO, [{"features": {"values": row}} for row in rows])


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out) + 1)
        choice = rng.randrange(3)
        if choice == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif choice == 1:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            del out[at:at + rng.randint(1, 16)]
    return bytes(out)


def channel_bytes() -> st.SearchStrategy[bytes]:
    mutated = st.builds(lambda seed, base: mutate(base, random.Random(seed)), st.integers(0, 2**32),
                        st.sampled_from([good_csv(), good_recordio()]))
    gzipped = st.builds(lambda b, cut: gzip.compress(b)[:cut], mutated, st.integers(0, 400))
    return st.binary(max_size=300) | mutated | gzipped | st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=64))


@pytest.mark.parametrize("content_type", [None, "text/csv", "application/x-recordio-protobuf"])
def test_ntm_channel_reader_on_arbitrary_bytes(tmp_path: Path, content_type: str | None) -> None:
    from sagetext.algorithms.ntm.documents import DocumentStore

    @FUZZ
    @given(channel_bytes())
    def check(data: bytes) -> None:
        channel = channel_with(tmp_path, "train", {"part.bin": data}, content_type)
        try:
            corpus = DocumentStore.read(channel, NTM_DIM)
        except ClientError as error:
            assert error.status == 400 and ("part.bin" in error.message or "'train'" in error.message), error.message
            return
        assert len(corpus) > 0
        assert corpus.dense(range(len(corpus))).shape == (len(corpus), NTM_DIM)
        corpus.close()

    check()


def test_ntm_vocab_txt_on_arbitrary_bytes(tmp_path: Path) -> None:
    from sagetext.data import bow

    @FUZZ
    @given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
    def check(data: bytes) -> None:
        path = tmp_path / "vocab.txt"
        path.write_bytes(data)
        try:
            words = bow.read_vocab(path, 3)
        except ClientError as error:
            assert error.status == 400 and "vocab.txt" in error.message, error.message
            return
        assert len(words) == 3

    check()


def test_seq2seq_vocab_json_on_arbitrary_input(tmp_path: Path) -> None:
    import json

    from sagetext.algorithms.seq2seq import vocab

    @FUZZ
    @given(st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode())
           | st.dictionaries(st.text(max_size=6), st.integers(-2, 8) | json_values, max_size=8).map(
               lambda d: json.dumps({"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **d}).encode()))
    def check(data: bytes) -> None:
        path = tmp_path / "vocab.src.json"
        path.write_bytes(data)
        try:
            loaded = vocab.load(path)
        except ClientError as error:
            assert error.status == 400 and "vocab.src.json" in error.message, error.message
            return
        assert len(loaded) >= 4

    check()


def test_seq2seq_pair_reader_on_arbitrary_bytes(tmp_path: Path) -> None:
    from sagetext.algorithms.seq2seq import data as s2s_data
    from tests.reliability.conftest import seq2seq_corpus

    base = seq2seq_corpus(tmp_path / "corpus", train=20, validation=5)["train.rec"].read_bytes()

    @FUZZ
    @given(st.builds(lambda seed: mutate(base, random.Random(seed)), st.integers(0, 2**32)) | st.binary(max_size=200))
    def check(data: bytes) -> None:
        channel = channel_with(tmp_path, "train", {"train.rec": data})
        try:
            pairs = s2s_data.read_pairs(channel, 14, 14)
        except ClientError as error:
            assert error.status == 400 and ("train.rec" in error.message or "'train'" in error.message), error.message
            return
        assert pairs

    check()


# ---- fastText .bin -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", ["supervised model.bin", "word2vec vectors.bin"])
def test_fasttext_bin_loading_on_mutated_files(trained_models: dict, kind: str, tmp_path: Path) -> None:
    from sagetext.algorithms.blazingtext.fasttext_format import model_file
    from sagetext.algorithms.blazingtext.word2vec.vectors import read_vectors

    algorithm, file_name = kind.split()
    if isinstance(trained_models[algorithm], str):
        pytest.skip(trained_models[algorithm])
    base = (trained_models[algorithm] / file_name).read_bytes()

    def load(data: bytes) -> object:
        if algorithm == "supervised":
            return model_file.read(data, file_name)
        path = tmp_path / file_name
        path.write_bytes(data)
        return read_vectors(path)

    load(base)  # the real file loads

    @FUZZ
    @given(st.builds(lambda seed: mutate(base[:4096], random.Random(seed)) + base[4096:], st.integers(0, 2**32))
           | st.builds(lambda cut: base[:cut], st.integers(0, len(base)))
           | st.binary(max_size=100))
    def check(data: bytes) -> None:
        try:
            load(data)
        except ClientError as error:
            assert error.status == 400 and file_name in error.message, error.message

    check()


def test_quantized_fasttext_loading_on_mutated_files(tmp_path: Path) -> None:
    """A ``.ftz`` (product-quantized rows, pruned n-grams) mutated anywhere: a model or a ClientError,
    and never a decoded matrix out of proportion to the codes in the file."""
    import fasttext

    from sagetext.algorithms.blazingtext.fasttext_format import model_file
    from tests.conftest import REPO

    train = REPO / "samples" / "blazingtext" / "train.txt"
    model = fasttext.train_supervised(str(train), dim=8, epoch=1, bucket=5000, minn=2, maxn=3, thread=1, verbose=0)
    model.quantize(input=str(train), cutoff=500, qnorm=True, retrain=False, thread=1, verbose=0)
    model.save_model(str(tmp_path / "model.ftz"))
    base = (tmp_path / "model.ftz").read_bytes()
    assert model_file.read(base, "model.ftz").ngram_rows is not None

    @FUZZ
    @given(st.builds(lambda seed: mutate(base, random.Random(seed)), st.integers(0, 2**32))
           | st.builds(lambda cut: base[:cut], st.integers(0, len(base))))
    def check(data: bytes) -> None:
        try:
            loaded = model_file.read(data, "model.ftz")
        except ClientError as error:
            assert error.status == 400 and "model.ftz" in error.message, error.message
            return
        assert loaded.input.nbytes <= 256 * len(data) + (1 << 20)

    check()


# ---- BlazingText's __label__ text and augmented-manifest JSON Lines -----------------------------

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
BLOCK = 1 << 20  # data.text reads in blocks of this many bytes
# Bytes a __label__ or manifest line is made of, the awkward ones included: invalid and cut UTF-8,
# NUL and fastText's other separators, a bare \r, U+2028, JSON punctuation and the gzip magic.
TEXT_PIECES = [b"__label__a", b"__label__", b"__label__\xff", b"word", b"\xc3\xa9", b"\xff", b"\xc3", b"\xed\xa0\x80",
               b"\0", b"\r", b"\r\n", b"\n", b"\t", b" ", b"\x0b", b"\x0c", b"\x1c", b"\xe2\x80\xa8", b"{", b"}",
               b"[", b'"source"', b'"label"', b":", b",", b"1", b"1e400", b'"x"', b"\x1f\x8b"]
LABELS = [b"__label__a", b"__label__1", b"__label__\xc3\xa9t\xc3\xa9", b"__label__\xff"]
WORDS = [b"w", b"good", b"\xc3\xa9t\xc3\xa9", b"x\xffy", b"\xf0\x9f\x98\x80", b"__label", b"a\0b", b"</s>"]


def labeled_lines() -> st.SearchStrategy[bytes]:
    """Mostly usable ``__label__`` lines, separated in fastText's ways."""
    tokens = st.lists(st.sampled_from(LABELS), min_size=0, max_size=2).flatmap(
        lambda labels: st.lists(st.sampled_from(WORDS), max_size=5).map(lambda words: labels + words))
    separator = st.sampled_from([b" ", b" ", b"\t", b"  ", b"\r", b"\x0b", b"\0"])
    return st.builds(lambda toks, sep, end: sep.join(toks) + end, tokens, separator, st.sampled_from([b"", b"\r"]))


def manifest_records() -> st.SearchStrategy[bytes]:
    good = st.fixed_dictionaries({"source": st.text(max_size=20),
                                  "label": st.integers(-3, 3) | st.lists(st.integers(0, 3), max_size=3)
                                  | st.sampled_from(["pos", "a b", "a\0b", "", "__label__x", 2.0, 1e300, True])})
    odd = st.fixed_dictionaries({}, optional={"source": st.text(max_size=20) | json_values, "label": json_values})
    as_json = st.builds(lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only).encode("utf-8"),
                        good | odd | json_values, st.booleans())
    nested = st.builds(lambda n, open_: open_ * n, st.integers(1, 200_000), st.sampled_from([b"[", b'{"a":', b"-"]))
    digits = st.builds(lambda n: b'{"source": "x y", "label": ' + b"7" * n + b"}", st.integers(1, 10_000))
    return as_json | nested | digits


def text_channel_bytes() -> st.SearchStrategy[bytes]:
    made_up = st.lists(st.sampled_from(TEXT_PIECES), max_size=40).map(b"".join)
    lines = st.lists(labeled_lines() | labeled_lines() | manifest_records() | made_up, min_size=1,
                     max_size=8).map(b"\n".join)
    lines = st.builds(lambda body, end: body + end, lines, st.sampled_from([b"", b"\n", b"\r\n"]))
    # one line (or a run of whitespace, or of line breaks) longer than a block
    huge = st.builds(lambda piece, extra: piece * ((BLOCK + extra) // len(piece)),
                     st.sampled_from([b"a", b"__label__x w ", b"\xff", b" ", b"{", b"\n"]), st.integers(-8, 64))
    gzipped = st.builds(lambda data, cut: gzip.compress(data)[:cut], lines, st.sampled_from([None, 0, 5, 10, 30]))
    junk = st.just(b"") | st.binary(max_size=300) | st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=64))
    return lines | lines | lines | gzipped | junk | huge


def outcome(error: ClientError | None) -> None:
    """Record (``--hypothesis-show-statistics``) how often a value came back, and which errors."""
    assert error is None or (isinstance(error.message, str) and error.message.strip())
    event("value" if error is None else "ClientError")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/jsonlines"])
def test_labeled_text_reader_on_arbitrary_bytes(tmp_path: Path, content_type: str | None) -> None:
    from sagetext.data.text import LabeledReader

    @settings(QUICK, max_examples=100)
    @given(files=st.lists(text_channel_bytes(), min_size=1, max_size=2),
           shard=st.sampled_from([(0, 1), (0, 1), (1, 2)]))
    def check(files: list[bytes], shard: tuple[int, int]) -> None:
        channel = channel_with(tmp_path, "train", {f"part{i}.txt": data for i, data in enumerate(files)},
                               content_type)
        reader = LabeledReader(channel, rank=shard[0], world_size=shard[1])
        try:
            blocks = list(reader)
        except ClientError as error:
            return outcome(error)
        outcome(None)
        assert blocks and reader.report.lines_used == sum(block.num_lines for block in blocks) > 0
        for block in blocks:
            block.text.decode("utf-8")  # bad bytes were replaced
            for labels, words in block.lines():
                assert labels and words and all(label.startswith(b"__label__") for label in labels)

    check()


def test_manifest_lines_that_broke_the_json_reader() -> None:
    """Regressions: json.loads raised RecursionError and ValueError (not JSONDecodeError) here."""
    from sagetext.data.manifest import manifest_line

    assert manifest_line(b"[" * 100_000) is None  # nested too deep
    assert manifest_line(b'{"source": "x", "label": ' + b"7" * 5000 + b"}") is None  # > 4300 digits
    assert manifest_line(b'{"source": "x", "label": "a\\u0000b"}') is None  # a NUL would split the label
    assert manifest_line(b'{"source": "x", "label": ' + b"7" * 4000 + b"}") == b"__label__" + b"7" * 4000 + b" x"


def test_a_long_line_is_read_in_linear_time(tmp_path: Path) -> None:
    """Regression: every block of an unfinished line copied the whole line again (quadratic)."""
    import io
    import time

    from sagetext.data.text import line_chunks

    data = b"__label__a " + b"w" * 4_000_000 + b"\nnext\n"
    started = time.perf_counter()
    chunks = list(line_chunks(io.BytesIO(data), size=64))  # 62,500 reads of an unfinished line
    assert time.perf_counter() - started < 2.0  # quadratic: ~125 GB copied, minutes
    assert b"".join(chunks) == data and all(chunk.endswith(b"\n") for chunk in chunks)
    assert list(line_chunks(io.BytesIO(b"a\nb"), size=1)) == [b"a\n", b"b\n"]


# ---- Seq2Seq's parallel text channels (the text-input extension) --------------------------------

SENTENCE_PIECES = [b"a", b"b", b"c", b"\xc3\xa9", b"\xff", b"\0", b"\r", b"\x85", b"\xc2\x85", b"\xe2\x80\xa8",
                   b" ", b"\t", b"\x0c", b"<unk>", b"</s>", b"1"]


def parallel_files() -> st.SearchStrategy[tuple[bytes, bytes]]:
    """Source and target: mostly the same number of lines, sometimes not, sometimes not text."""
    sentence = st.lists(st.sampled_from([b"a", b"b", b"c", b"\xc3\xa9", b"1"]), min_size=1, max_size=6).map(b" ".join)
    line = sentence | sentence | st.lists(st.sampled_from(SENTENCE_PIECES), max_size=8).map(b"".join)
    aligned = st.integers(1, 10).flatmap(lambda n: st.tuples(st.lists(line, min_size=n, max_size=n),
                                                             st.lists(line, min_size=n, max_size=n)))
    ragged = st.tuples(st.lists(line, max_size=10), st.lists(line, max_size=10))
    as_text = st.builds(lambda pair, ends: (b"\n".join(pair[0]) + ends[0], b"\n".join(pair[1]) + ends[1]),
                        aligned | aligned | ragged, st.tuples(*[st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"])] * 2))
    gzipped = st.builds(lambda pair, cut: (gzip.compress(pair[0])[:cut], gzip.compress(pair[1])[:cut]),
                        as_text, st.sampled_from([None, None, 0, 12, 30]))
    junk = st.binary(max_size=200) | st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=40))
    return as_text | as_text | gzipped | st.tuples(junk, junk) | st.tuples(as_text.map(lambda p: p[0]), junk)


def parallel_channels(tmp_path: Path, data: st.DataObject) -> dict[str, Channel]:
    channels = {}
    for name in ("train", "validation"):
        suffix = data.draw(st.sampled_from(["", ".gz"]))
        source, target = data.draw(parallel_files())
        channels[name] = channel_with(tmp_path, name, {f"{name}.src{suffix}": source, f"{name}.trg{suffix}": target})
    return channels


def check_text_inputs(inputs: object) -> None:
    from sagetext.algorithms.seq2seq.text_input import TextInputs

    assert isinstance(inputs, TextInputs) and inputs.train and inputs.validation
    for pairs in (inputs.train, inputs.validation):
        for source, target in pairs:
            assert len(source) and len(target)
            assert 0 <= source.min() and source.max() < len(inputs.source_vocab)
            assert 0 <= target.min() and target.max() < len(inputs.target_vocab)


def test_seq2seq_parallel_text_on_arbitrary_bytes(tmp_path: Path) -> None:
    from sagetext.algorithms.seq2seq import text_input

    @QUICK
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        channels = parallel_channels(tmp_path, data)
        try:
            inputs = text_input.load(channels, 0, 1)
        except ClientError as error:
            return outcome(error)
        outcome(None)
        check_text_inputs(inputs)

    check()


def test_seq2seq_subword_text_on_arbitrary_bytes(tmp_path: Path) -> None:
    from sagetext.algorithms.seq2seq import text_input

    @settings(QUICK, max_examples=25)
    @given(data=st.data(), size=st.sampled_from([1, 12, 24, 40]))
    def check(data: st.DataObject, size: int) -> None:
        channels = parallel_channels(tmp_path, data)
        try:
            inputs = text_input.load(channels, size, 1)
        except ClientError as error:
            return outcome(error)
        outcome(None)
        check_text_inputs(inputs)
        assert inputs.detokenise is not None
        inputs.detokenise(inputs.train[0][1].tolist())

    check()


def test_parallel_text_that_does_not_pair_up_is_refused(tmp_path: Path) -> None:
    """Regressions: files of different lengths were silently cut to the shorter one, a bare \\r
    or U+2028 inside a sentence shifted every later pair, and a broken .gz raised BadGzipFile."""
    from sagetext.algorithms.seq2seq import text_input

    def pairs(source: bytes, target: bytes, suffix: str = "") -> list[tuple[list[int], list[int]]]:
        channel = channel_with(tmp_path, "train", {f"t.src{suffix}": source, f"t.trg{suffix}": target})
        files = text_input.text_files(channel)
        assert files is not None
        return [(s.tolist(), t.tolist()) for s, t in text_input.read_pairs(*files, ids, ids)]

    def ids(text: str) -> list[int]:
        return [len(token) for token in text.split()]

    with pytest.raises(ClientError, match=r"t.src has 3 lines and t.trg has 2: line 3 of t.src has no partner"):
        pairs(b"a\nb\nc\n", b"x\ny\n")
    with pytest.raises(ClientError, match=r"line 2 of t.trg has no partner"):
        pairs(b"a\n", b"x\nyy\n")
    assert pairs(b"a\nbb\n\n\n", b"x\nyy\n") == [([1], [1]), ([2], [2])]  # trailing blank lines are fine
    assert pairs(b"a\rb\nc\xe2\x80\xa8dd\n", b"x\nyy\n") == [([1, 1], [1]), ([1, 2], [2])]
    assert pairs(b"a\r\nbb\r\n", b"x\nyy") == [([1], [1]), ([2], [2])]
    assert pairs(gzip.compress(b"a\nbb\n"), gzip.compress(b"x\nyy\n"), ".gz") == [([1], [1]), ([2], [2])]
    with pytest.raises(ClientError, match=r"t.src.gz: starts like a gzip file but cannot be decompressed"):
        pairs(gzip.compress(b"a\nbb\n")[:12], gzip.compress(b"x\nyy\n"), ".gz")
    with pytest.raises(ClientError, match=r"t.src.gz: starts like a gzip file"):
        pairs(b"\x1f\x8b\x00junk", b"x\n", ".gz")


# ---- NTM's auxiliary channel: word vectors (for WETC) and vocab.txt -----------------------------

VOCAB = ["apple", "banana", "cherry", "é", "__label__x", "apple"]


def vector_files() -> st.SearchStrategy[bytes]:
    word = st.sampled_from([w.encode() for w in VOCAB] + [b"zebra", b"", b"\xff", b"3", b"\xc3", b"apple\xc2\xa0"])
    good = st.sampled_from([b"1", b"-0.5", b"2e-3", b"0", b"+7", b"1_0", b"\xef\xbc\x91"])
    bad = st.sampled_from([b"nan", b"NaN", b"inf", b"-inf", b"1e39", b"1e999", b"x", b"0x1", b"\xff", b"\x00", b"1,5",
                           b"\x0b"])
    separator = st.sampled_from([b" ", b" ", b"  ", b"\t", b" \t", b"\r", b"\xc2\xa0"])
    numbers = st.integers(0, 4).flatmap(lambda n: st.lists(good, min_size=n, max_size=n)) | st.lists(good | bad,
                                                                                                    max_size=5)
    row = st.builds(lambda w, values, sep: sep.join([w, *values]), word, numbers, separator)
    header = st.sampled_from([b"", b"5 3\n", b"2 2\n", b"99999999999 99999999999\n", b"x y\n", b"\xc2\xb2 3\n"])
    lines = st.builds(lambda head, rows, end: head + b"\n".join(rows) + end, header, st.lists(row, max_size=8),
                      st.sampled_from([b"", b"\n", b"\r\n"]))
    wide = st.builds(lambda n: b"apple" + b" 0.5" * n + b"\n", st.integers(0, 300_000))
    return lines | lines | st.binary(max_size=200) | wide


def test_ntm_word_vectors_on_arbitrary_bytes(tmp_path: Path) -> None:
    import numpy as np

    from sagetext.data import bow

    @FUZZ
    @given(vector_files())
    def check(data: bytes) -> None:
        path = tmp_path / "vectors.txt"
        path.write_bytes(data)
        try:
            vectors, found = bow.read_word_vectors(path, VOCAB)
        except ClientError as error:
            return outcome(error)
        outcome(None)
        assert vectors.dtype == np.float32 and vectors.shape[0] == len(VOCAB) == len(found) and found.any()
        assert 0 < vectors.shape[1] <= bow.MAX_VECTOR_DIM and np.isfinite(vectors).all()
        assert not vectors[~found].any() and found[0] == found[5] and (vectors[0] == vectors[5]).all()

    check()


def test_ntm_word_vectors_refuse_what_wetc_cannot_use(tmp_path: Path) -> None:
    """Regressions: NaN and inf went into WETC (a NaN metric, invalid JSON in topics.json), one
    wide line sized an array of len(vocab) x width floats, and a double space was refused."""
    from sagetext.data import bow

    def read(text: bytes) -> object:
        (tmp_path / "vectors.txt").write_bytes(text)
        return bow.read_word_vectors(tmp_path / "vectors.txt", ["apple", "banana", "apple"])

    for value, shown in ((b"nan", "'nan'"), (b"inf", "'inf'"), (b"1e39", "'1e39'")):
        with pytest.raises(ClientError, match=rf"vectors.txt: line 2 \(word 'banana'\): {shown} is not a finite"):
            read(b"apple 1 2\nbanana 0.5 " + value + b"\n")
    with pytest.raises(ClientError, match=r"line 1 \(word 'apple'\): 'x' is not a number"):
        read(b"apple 1 x\n")
    with pytest.raises(ClientError, match=r"line 1 \(word 'apple'\) has more than 4096 values.*at most 4096"):
        read(b"apple" + b" 0" * 100_000 + b"\n")
    with pytest.raises(ClientError, match=r"line 2 \(word 'banana'\) has 3 dimensions; earlier lines have 2"):
        read(b"apple 1 2\nbanana 1 2 3\n")
    vectors, found = read(b"2 2\napple  1\t2 \r\nbanana\t3 4\n")  # type: ignore[misc]
    assert vectors.tolist() == [[1, 2], [3, 4], [1, 2]] and found.tolist() == [True, True, True]


def test_ntm_vocab_txt_keeps_one_word_per_line(tmp_path: Path) -> None:
    """Word ``i`` is line ``i``: no character but a line break starts a new word id (a U+0085,
    U+2028 or form feed inside a line used to start one, shifting every later id)."""
    from sagetext.data import bow

    line = st.text(st.characters(blacklist_characters="\n\r"), max_size=12).filter(lambda t: t.strip())

    @FUZZ
    @given(st.lists(line, min_size=1, max_size=6), st.sampled_from(["\n", "\r\n", "\r"]))
    def check(lines: list[str], newline: str) -> None:
        path = tmp_path / "vocab.txt"
        path.write_bytes(newline.join(lines).encode("utf-8", "surrogatepass") + newline.encode())
        try:
            words = bow.read_vocab(path, len(lines))
        except ClientError as error:
            assert "is not UTF-8" in error.message  # a lone surrogate
            return
        assert len(words) == len(lines)
        assert words == [" ".join(line.split()[:1] if line.split()[1:2] and line.split()[1].isdigit()
                                  and len(line.split()) == 2 else line.split()) for line in lines]

    check()
    (tmp_path / "vocab.txt").write_bytes("one\u2028two\nthree\x85four\nfive\x0csix\n".encode())
    assert bow.read_vocab(tmp_path / "vocab.txt", 3) == ["one two", "three four", "five six"]
