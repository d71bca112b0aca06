"""BlazingText word2vec modes on CPU: corpus streaming, training through gensim, artifacts that
gensim and fastText read back, WS-353 eval.json, and the word-vector predictor."""

from __future__ import annotations

import io
import json
import lzma
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagetext.algorithms.blazingtext.fasttext_format.model_file import MAGIC as FASTTEXT_MAGIC
from sagetext.algorithms.blazingtext.word2vec import evaluation
from sagetext.algorithms.blazingtext.word2vec.corpus import ChannelCorpus, read_sentences
from sagetext.algorithms.blazingtext.word2vec.gensim_engine.trainer import train_word2vec
from sagetext.algorithms.blazingtext.word2vec.vectors import (
    FastTextFields,
    VectorsPredictor,
    WordVectors,
    load_vectors,
    read_vectors,
    write_artifacts,
)
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.metrics import MetricLogger
from sagetext.contract.paths import Paths
from sagetext.data.media_types import CSV, JSON
from sagetext.errors import ClientError
from sagetext.serving.negotiation import negotiate, request_type
from tests.conftest import SHARED_DATA

CORPUS = SHARED_DATA / "wiki_en_text8like" / "wiki2015_text8like.xz"


class RecordingMetrics(MetricLogger):
    def __init__(self) -> None:
        super().__init__()
        self.logged: dict[str, float] = {}

    def log(self, name: str, value: float, step: int | None = None) -> None:
        self.logged[name] = value


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The first 2M characters (about 330k words) of the text8-like corpus."""
    if not CORPUS.is_file():
        pytest.skip(f"text8-like corpus not found at {CORPUS} (needs ../shared/data beside the checkout)")
    with lzma.open(CORPUS, "rb") as f:
        return f.read(2_000_000)


def make_ctx(root: Path, text: bytes, rank: int = 0, world_size: int = 1, **hp: str) -> TrainingContext:
    folder = root / "input" / "data" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.txt").write_bytes(text)
    values = parse({"epochs": "1", "vector_dim": "32", **hp}, Spec.load("blazingtext"))
    return TrainingContext(values, {"train": Channel("train", paths=Paths(root))}, root / "model",
                           root / "output", Checkpoints(None, values), metrics=RecordingMetrics(),
                           rank=rank, world_size=world_size)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- corpus streaming


def reference_sentences(text: str, max_length: int) -> list[list[str]]:
    out = []
    for line in text.split("\n"):
        tokens = line.split()
        out += [tokens[i:i + max_length] for i in range(0, len(tokens), max_length)]
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "é", "日本", " ", "  ", "\n", "\t"]), max_size=60),
       st.integers(1, 9), st.integers(1, 5))
def test_read_sentences_matches_line_splitting_for_any_chunking(parts: list[str], chunk: int, max_len: int) -> None:
    text = "".join(parts)
    got = list(read_sentences(io.BytesIO(text.encode("utf-8")), max_len, chunk))
    assert got == reference_sentences(text, max_len)


def test_one_huge_line_is_cut_into_10000_token_sentences() -> None:
    text = " " + " ".join(f"w{i % 97}" for i in range(25_000))  # text8 style: one line, leading space
    sentences = list(read_sentences(io.BytesIO(text.encode()), chunk_bytes=4096))
    assert [len(s) for s in sentences] == [10_000, 10_000, 5_000]
    assert sentences[2][-1] == f"w{24_999 % 97}"


def test_each_pass_reads_the_next_epoch_of_the_channel() -> None:
    class FakeChannel:
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def streams(self, epoch: int = 0):  # noqa: ANN202
            self.epochs.append(epoch)
            yield "f", io.BytesIO(b"a b\nc\n")

    channel = FakeChannel()
    corpus = ChannelCorpus(channel)  # type: ignore[arg-type]
    assert [list(corpus), list(corpus)] == [[["a", "b"], ["c"]]] * 2
    assert channel.epochs == [0, 1] and corpus.words_read == 6


# ---------------------------------------------------------------- training and artifacts


@pytest.mark.parametrize("mode", ["cbow", "skipgram"])
def test_training_writes_gensim_readable_artifacts_and_eval(tmp_path: Path, corpus_slice: bytes, mode: str) -> None:
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    ctx = make_ctx(tmp_path, corpus_slice, mode=mode, epochs="3")
    train_word2vec(ctx)
    text = KeyedVectors.load_word2vec_format(str(ctx.model_dir / "vectors.txt"), binary=False)
    binary = load_facebook_vectors(str(ctx.model_dir / "vectors.bin"))  # fastText's .bin in every mode
    assert text.index_to_key == binary.index_to_key
    assert text.index_to_key[:3] == ["the", "of", "and"]  # descending frequency
    assert text.vectors.shape == (len(text), 32)
    np.testing.assert_array_equal(text.vectors, binary.vectors)
    header = (ctx.model_dir / "vectors.txt").read_text().split("\n", 1)[0]
    assert header == f"{len(text)} 32"
    # the vectors carry signal: frequent related words are closer than unrelated ones
    assert text.similarity("two", "three") > text.similarity("two", "anarchism") + 0.2

    result = json.loads((ctx.model_dir / "eval.json").read_text())
    assert list(result) == [*evaluation.WS353_FILES, "mean_rho"]
    assert [result[name]["total_pairs"] for name in evaluation.WS353_FILES] == [353, 252, 203]
    for name in evaluation.WS353_FILES:
        assert set(result[name]) == {"not_found", "spearmans_rho", "total_pairs"}
        assert 0 < result[name]["not_found"] < result[name]["total_pairs"]
    rhos = [result[name]["spearmans_rho"] for name in evaluation.WS353_FILES]
    assert result["mean_rho"] == pytest.approx(sum(rhos) / 3)
    assert ctx.metrics.logged == {"mean_rho": result["mean_rho"]}  # type: ignore[attr-defined]

    predictor = load_vectors(ctx.model_dir)
    answer = predictor.predict({"instances": ["king", "notawordxyz"]}, JSON, JSON)
    assert [a["word"] for a in answer] == ["king", "notawordxyz"]
    np.testing.assert_allclose(answer[0]["vector"], text["king"])
    assert answer[1]["vector"] == [0.0] * 32


def test_subwords_write_a_fasttext_bin_with_oov_vectors(tmp_path: Path, corpus_slice: bytes) -> None:
    fasttext = pytest.importorskip("fasttext")
    ctx = make_ctx(tmp_path, corpus_slice, mode="skipgram", subwords="true", buckets="20000")
    train_word2vec(ctx)
    path = ctx.model_dir / "vectors.bin"
    assert struct.unpack("<ii", path.read_bytes()[:8]) == (FASTTEXT_MAGIC, 12)
    reference = fasttext.load_model(str(path))
    ours = read_vectors(path)
    assert reference.get_dimension() == 32 and reference.words == list(ours.words)
    for word in ["government", "governmentt", "qqzzx"]:
        np.testing.assert_allclose(ours.vector(word), reference.get_word_vector(word), atol=1e-5)

    answer = load_vectors(ctx.model_dir).predict({"instances": ["government", "governmentt"]}, JSON, JSON)
    known, misspelt = (np.array(a["vector"]) for a in answer)
    assert np.any(misspelt) and not np.array_equal(known, misspelt)
    assert cosine(known, misspelt) > 0.7
    assert cosine(known, misspelt) > cosine(known, ours.vector("elephant"))
    result = json.loads((ctx.model_dir / "eval.json").read_text())
    assert all(result[name]["not_found"] == 0 for name in evaluation.WS353_FILES)


def test_batch_skipgram_with_subwords_is_a_client_error(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, b"a b c\n", mode="batch_skipgram", subwords="true")
    with pytest.raises(ClientError, match="subwords.*batch_skipgram"):
        train_word2vec(ctx)


def test_corpus_without_frequent_words_is_a_client_error(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, b"a b c d\n", mode="cbow", min_count="5")
    with pytest.raises(ClientError, match="min_count=5"):
        train_word2vec(ctx)


def test_only_rank_zero_trains_on_cpu(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(tmp_path, b"a b c\n" * 50, mode="batch_skipgram", rank=1, world_size=2)
    with caplog.at_level("INFO", logger="sagetext"):
        train_word2vec(ctx)
    assert not ctx.model_dir.exists()
    assert "Rank 1: the CPU word2vec trainer runs on rank 0 only; nothing to do here" in caplog.messages


# ---------------------------------------------------------------- evaluation


def test_similarity_score_counts_missing_pairs_and_ranks(tmp_path: Path) -> None:
    table = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.1]), "c": np.array([0.0, 1.0]),
             "d": np.array([1.0, 1.0]), "z": np.zeros(2)}
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# word1 word2 score\na\tb\t9.0\na\tc\t1.0\r\na\td\t5.0\na\tzz\t3.0\nA\tb\t9.0\na\tz\t2\n\n")
    score = evaluation.similarity_score(pairs, table.get)
    assert score == {"not_found": 2, "spearmans_rho": pytest.approx(1.0), "total_pairs": 6}
    pairs.write_text("a\tb\t9.0\nb\ta\t1.0\nzz\ta\t3.0\n")  # one cosine for all: no rank order
    assert evaluation.similarity_score(pairs, table.get) == {"not_found": 1, "spearmans_rho": 0.0, "total_pairs": 3}
    pairs.write_text("a b 9.0\n")
    with pytest.raises(ValueError, match="pairs.txt:1: expected 'word1<TAB>word2<TAB>score'"):
        evaluation.similarity_score(pairs, table.get)


# ---------------------------------------------------------------- serving and safe loading


@pytest.fixture
def small_predictor(tmp_path: Path) -> VectorsPredictor:
    vectors = WordVectors(["hello", "world"], np.array([[1, 2], [3, 4]], np.float32), [5, 3])
    write_artifacts(tmp_path, vectors, FastTextFields(np.zeros((2, 2), np.float32), "skipgram", window=5, epochs=5,
                                                      min_count=1, negative=5, sample=1e-4, ntokens=8))
    return load_vectors(tmp_path)


def test_predictor_answers_json_only(small_predictor: VectorsPredictor) -> None:
    assert small_predictor.predict({"instances": ["world"]}, JSON, JSON) == [{"word": "world", "vector": [3.0, 4.0]}]
    assert negotiate(small_predictor, JSON, CSV) == JSON  # BlazingText answers JSON whatever Accept says
    with pytest.raises(ClientError) as unsupported:
        request_type(small_predictor.answers, CSV)
    assert unsupported.value.status == 415


@pytest.mark.parametrize("body, field", [({"instance": ["a"]}, "instances"), (["a"], "instances"),
                                         ({"instances": "a"}, "instances"), ({"instances": ["a", 3]}, r"\[1\]")])
def test_predictor_rejects_bad_shapes_naming_the_field(small_predictor: VectorsPredictor, body: object,
                                                       field: str) -> None:
    with pytest.raises(ClientError, match=field):
        small_predictor.predict(body, JSON, JSON)


def test_reader_checks_sizes_before_allocating(tmp_path: Path) -> None:
    lying = tmp_path / "lying.bin"
    lying.write_bytes(b"1000000000 300\nhello " + b"\0" * 1200)
    with pytest.raises(ClientError, match="1000000000 words"):
        read_vectors(lying)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(struct.pack("<ii", FASTTEXT_MAGIC, 12) + b"\0" * 10)
    with pytest.raises(ClientError, match="truncated"):
        read_vectors(truncated)
    with pytest.raises(ClientError, match="vectors.bin"):
        load_vectors(tmp_path)


def test_a_fasttext_trained_bin_is_served_as_fasttext_computes_it(tmp_path: Path, corpus_slice: bytes) -> None:
    fasttext = pytest.importorskip("fasttext")
    text = tmp_path / "corpus.txt"
    text.write_bytes(corpus_slice[:150_000] + b"\n" + corpus_slice[150_000:300_000] + b"\n")
    model = fasttext.train_unsupervised(str(text), model="skipgram", dim=16, epoch=1, minCount=2, bucket=5000,
                                        thread=1, verbose=0)
    model.save_model(str(tmp_path / "vectors.bin"))
    predictor = load_vectors(tmp_path)
    words = ["the", "government", "xqzgov", "</s>"]
    for answer in predictor.predict({"instances": words}, JSON, JSON):
        np.testing.assert_allclose(answer["vector"], model.get_word_vector(answer["word"]), atol=1e-5)


def test_algorithm_dispatches_word2vec_modes_and_picks_the_predictor_from_the_files(
        tmp_path: Path, corpus_slice: bytes) -> None:
    from sagetext.algorithms.blazingtext import ALGORITHM
    from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor

    ctx = make_ctx(tmp_path, corpus_slice, mode="cbow")
    ALGORITHM.train(ctx)
    assert {p.name for p in ctx.model_dir.iterdir()} >= {"vectors.txt", "vectors.bin", "eval.json"}
    assert isinstance(ALGORITHM.load(ctx.model_dir), VectorsPredictor)
    fasttext = pytest.importorskip("fasttext")  # a pretrained unsupervised fastText model.bin
    text = tmp_path / "corpus.txt"
    text.write_bytes(corpus_slice[:100_000] + b"\n")
    served = tmp_path / "served"
    served.mkdir()
    model = fasttext.train_unsupervised(str(text), model="cbow", dim=8, epoch=1, minCount=2, bucket=1000,
                                        thread=1, verbose=0)
    model.save_model(str(served / "model.bin"))
    predictor = ALGORITHM.load(served)
    assert isinstance(predictor, VectorsPredictor)
    np.testing.assert_allclose(predictor.predict({"instances": ["the"]}, JSON, JSON)[0]["vector"],
                               model.get_word_vector("the"), atol=1e-5)
    supervised = tmp_path / "supervised"
    supervised.mkdir()
    (supervised / "train.txt").write_text("__label__a hello world\n__label__b goodbye moon\n" * 5)
    classifier = fasttext.train_supervised(str(supervised / "train.txt"), epoch=1, thread=1, verbose=0)
    classifier.save_model(str(supervised / "model.bin"))
    assert isinstance(ALGORITHM.load(supervised), SupervisedPredictor)
