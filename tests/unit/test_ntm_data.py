"""NTM's bag-of-words channels: RecordIO from SageMaker's own writers reads exactly like CSV;
bad records fail naming the file and record; vocab.txt and word vectors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sagemaker_training import recordio as sdk

from sagetext.algorithms.ntm import documents
from sagetext.algorithms.ntm.documents import DocumentStore
from sagetext.contract.channels import Channel
from sagetext.contract.paths import Paths
from sagetext.data import bow, media_types
from sagetext.data.text import line_owner
from sagetext.errors import ClientError

D = 30


def counts(n: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.poisson(0.4, size=(n, D)).astype(np.float64)
    matrix[3] = 0  # an empty document survives too
    return matrix


def csv_bytes(matrix: np.ndarray) -> bytes:
    return "".join(",".join(f"{v:g}" for v in row) + "\n" for row in matrix).encode()


def recordio_bytes(matrix: np.ndarray, dtype: type, sparse: bool) -> bytes:
    out = io.BytesIO()
    if sparse:
        sdk._write_spmatrix_to_sparse_tensor(out, sp.csr_matrix(matrix.astype(dtype)))
    else:
        sdk._write_numpy_to_dense_tensor(out, matrix.astype(dtype))
    return out.getvalue()


def channel(tmp_path: Path, files: dict[str, bytes], content_type: str | None = None,
            name: str = "train") -> Channel:
    paths = Paths(tmp_path)
    folder = paths.channel_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    return Channel(name, content_type=content_type, paths=paths)


def as_dense(corpus: DocumentStore) -> np.ndarray:
    return corpus.dense(np.arange(len(corpus)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, int])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("content_type", [media_types.RECORDIO, None])
def test_sdk_recordio_reads_like_csv(tmp_path: Path, dtype: type, sparse: bool, content_type: str | None) -> None:
    matrix = counts()
    from_csv = DocumentStore.read(channel(tmp_path / "csv", {"a.csv": csv_bytes(matrix)}, media_types.CSV), D)
    from_rec = DocumentStore.read(channel(tmp_path / "rec", {"a.rec": recordio_bytes(matrix, dtype, sparse)},
                                       content_type), D)
    assert len(from_csv) == len(from_rec) == len(matrix)
    np.testing.assert_array_equal(as_dense(from_rec), matrix.astype(np.float32))
    np.testing.assert_array_equal(as_dense(from_csv), as_dense(from_rec))
    assert ([ids.tolist() for ids in from_csv.word_ids(0, len(matrix))]
            == [ids.tolist() for ids in from_rec.word_ids(0, len(matrix))])


def test_workers_take_disjoint_shards_by_record_index_across_files(tmp_path: Path) -> None:
    matrix = counts(11)
    ch = channel(tmp_path, {"a.rec": recordio_bytes(matrix[:4], np.float32, True),
                            "b.csv": csv_bytes(matrix[4:])}, None)
    shards = [as_dense(DocumentStore.read(ch, D, rank=r, world_size=3)) for r in range(3)]
    owners = line_owner(np.arange(len(matrix)), 3)
    for r, shard in enumerate(shards):
        np.testing.assert_array_equal(shard, matrix[owners == r].astype(np.float32))
    assert sum(len(shard) for shard in shards) == len(matrix)


@pytest.mark.parametrize("make,needles", [
    (lambda m: recordio_bytes(m[:, :D - 1], np.float32, False), ["record 1", "expected 30"]),
    (lambda m: recordio_bytes(np.hstack([m, m[:, :1]]), np.float32, True), ["record 1", "shape [31]"]),
    (lambda m: recordio_bytes(np.where(np.arange(len(m))[:, None] == 4, -m - 1, m), np.float32, False),
     ["record 5", "negative count"]),
    (lambda m: recordio_bytes(np.where(np.arange(len(m))[:, None] == 2, np.nan, m), np.float64, False),
     ["record 3", "count nan"]),
])
def test_bad_recordio_records_name_file_and_record(tmp_path: Path, make, needles) -> None:
    ch = channel(tmp_path, {"bad.rec": make(counts())}, media_types.RECORDIO)
    with pytest.raises(ClientError) as info:
        DocumentStore.read(ch, D)
    for needle in ["bad.rec", *needles]:
        assert needle in info.value.message


def test_sparse_key_beyond_feature_dim_is_refused(tmp_path: Path) -> None:
    from sagetext.data import recordio
    record = recordio.Record()
    record.features["values"].CopyFrom(recordio.sparse_to_value(
        recordio.SparseTensor(np.array([2, 7], np.uint64), np.array([1.0, 2.0], np.float32), (D,))))
    tensor = record.features["values"].float32_tensor
    tensor.keys[1] = D + 5  # a key outside the declared shape
    out = io.BytesIO()
    recordio.write_records(out, [record])
    with pytest.raises(ClientError, match=r"bad\.rec: record 1.*key 35 is out of range"):
        DocumentStore.read(channel(tmp_path, {"bad.rec": out.getvalue()}, media_types.RECORDIO), D)


@pytest.mark.parametrize("text,needles", [
    ("1,2,3\n", ["line 1", "has 3 values", "expected 30"]),
    (",".join(["0"] * (D - 1) + ["x"]) + "\n", ["line 1", "'x' is not a number"]),
    (",".join(["1"] * D) + "\n" + ",".join(["-2"] + ["0"] * (D - 1)) + "\n", ["line 2", "negative count"]),
    (",".join(["1"] * D) + "\n" + ",".join(["inf"] + ["0"] * (D - 1)) + "\n", ["line 2", "count inf"]),
])
def test_bad_csv_lines_name_file_and_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    with pytest.raises(ClientError) as info:
        DocumentStore.read(channel(tmp_path, {"bad.csv": text.encode()}, media_types.CSV), D)
    for needle in ["bad.csv", *needles]:
        assert needle in info.value.message


def test_unsupported_content_type_and_empty_channel(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="application/json.*not supported"):
        DocumentStore.read(channel(tmp_path / "a", {"x": b"{}"}, "application/json"), D)
    with pytest.raises(ClientError, match="no documents"):
        DocumentStore.read(channel(tmp_path / "b", {"x.csv": b"\n\n"}, media_types.CSV), D)


def test_vocab_plain_and_word_id_lines(tmp_path: Path) -> None:
    (tmp_path / "v1.txt").write_text("apple\nbanana\ncherry\n")
    (tmp_path / "v2.txt").write_text("apple 1\nbanana 2\ncherry 3\n")
    expected = ["apple", "banana", "cherry"]
    assert bow.read_vocab(tmp_path / "v1.txt", 3) == bow.read_vocab(tmp_path / "v2.txt", 3) == expected
    with pytest.raises(ClientError, match="has 3 words.*feature_dim=4"):
        bow.read_vocab(tmp_path / "v1.txt", 4)


def test_word_vectors_keep_vocabulary_words_only(tmp_path: Path) -> None:
    (tmp_path / "vectors.txt").write_text("3 2\nbanana 1 0\nzebra 5 5\napple 0 1\n")
    vectors, found = bow.read_word_vectors(tmp_path / "vectors.txt", ["apple", "banana", "cherry"])
    np.testing.assert_array_equal(vectors, [[0, 1], [1, 0], [0, 0]])
    assert found.tolist() == [True, True, False]


def test_the_document_store_reads_back_any_rows_across_windows(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """Documents spilled to disk come back exactly, by range or shuffled, from cached windows
    (consecutive rows) or one record at a time (scattered rows of a shard larger than the cache)."""
    monkeypatch.setattr(documents, "WINDOW_DOCS", 7)
    monkeypatch.setattr(documents, "WHOLE_WINDOW_SHARE", 1)  # only a call that wants a whole window reads it
    matrix = counts(n=60, seed=4)
    store = DocumentStore.read(channel(tmp_path, {"a.csv": csv_bytes(matrix)}, media_types.CSV), D)
    assert len(store) == 60 and store.total_words() == matrix.sum()
    np.testing.assert_array_equal(store.dense(np.arange(60)), matrix)
    rng = np.random.default_rng(0)
    rows = store.shuffled(rng, 45)
    assert len(set(rows.tolist())) == 45 and rows.max() < 60
    for b in range(0, 45, 8):
        np.testing.assert_array_equal(store.dense(rows[b:b + 8]), matrix[rows[b:b + 8]])
    assert len(store._cache) <= documents.CACHED_WINDOWS
    assert [ids.tolist() for ids in store.word_ids(10, 13)] == [np.flatnonzero(r).tolist() for r in matrix[10:13]]
    assert sorted(store.shuffled(np.random.default_rng(1), 60).tolist()) == list(range(60))
    store.close()


def test_shuffled_batches_mix_the_whole_shard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A file sorted by class (20 Newsgroups' is) must not give mini-batches from one part of it:
    every batch of an epoch draws from the whole shard, not from one window after another."""
    monkeypatch.setattr(documents, "WINDOW_DOCS", 50)
    store = DocumentStore.read(channel(tmp_path, {"a.csv": csv_bytes(counts(n=200, seed=5))}, media_types.CSV), D)
    rows = store.shuffled(np.random.default_rng(0), 200)
    halves = [(rows[b:b + 20] < 100).mean() for b in range(0, 200, 20)]  # share from the file's first half
    assert all(0.15 <= share <= 0.85 for share in halves), halves
    store.close()
