"""Parsers a user can reach, fed arbitrary input (issue 9 §1), for those ``tests/unit`` does not
already fuzz (the codecs, RecordIO framing and hyperparameters are covered there).

Each returns a value or raises ``ClientError``; nothing else escapes. Covered here: every
predictor's ``predict`` on arbitrary decoded JSON (what an HTTP body turns into), NTM's
bag-of-words channel reader (CSV, RecordIO, gzip) and ``vocab.txt``, Seq2Seq's vocabulary
JSON and RecordIO pair reader, fastText ``.bin`` loading (``fasttext_bin.read`` and
``vectors.read_vectors``) on random and mutated model files.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagetext.contract.channels import Channel
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError
from sagetext.serving import codecs
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
        content_type = data.draw(st.sampled_from([t for t in predictor.content_types if t in (codecs.JSON,
                                                                                              codecs.JSONLINES)]))
        value = data.draw(shaped_requests(algorithm))
        if content_type == codecs.JSONLINES:
            value = value if isinstance(value, list) else [value]
        body = codecs.encode(codecs.JSONLINES if content_type == codecs.JSONLINES else codecs.JSON, value)
        decoded = codecs.decode(content_type, body)  # as the server would hand it over
        response_type = predictor.response_type(content_type, [])
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
    return codecs.encode(codecs.RECORDIO, [{"features": {"values": row}} for row in rows])


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
    from sagetext.data import bow

    @FUZZ
    @given(channel_bytes())
    def check(data: bytes) -> None:
        channel = channel_with(tmp_path, "train", {"part.bin": data}, content_type)
        try:
            corpus = bow.read_corpus(channel, NTM_DIM)
        except ClientError:
            return
        assert len(corpus) > 0

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
        except ClientError:
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
        except ClientError:
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
        except ClientError:
            return
        assert pairs

    check()


# ---- fastText .bin -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", ["supervised model.bin", "word2vec vectors.bin"])
def test_fasttext_bin_loading_on_mutated_files(trained_models: dict, kind: str, tmp_path: Path) -> None:
    from sagetext.algorithms.blazingtext import fasttext_bin
    from sagetext.algorithms.blazingtext.vectors import read_vectors

    algorithm, file_name = kind.split()
    if isinstance(trained_models[algorithm], str):
        pytest.skip(trained_models[algorithm])
    base = (trained_models[algorithm] / file_name).read_bytes()

    def load(data: bytes) -> object:
        if algorithm == "supervised":
            return fasttext_bin.read(data, file_name)
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
        except ClientError:
            pass

    check()
