"""Serve a trained NTM: documents' word counts in, topic weights out.

Requests (decoded by ``sagetext.serving.codecs``):

* ``text/csv``: one dense row of counts per line;
* ``application/json``: ``{"instances": [...]}`` where an instance is ``{"features": [dense]}``,
  ``{"data": {"features": {"values": [dense]}}}`` or the sparse
  ``{"data": {"features": {"keys": [...], "shape": [D], "values": [...]}}}``; a single
  instance object on its own is accepted too;
* ``application/jsonlines``: one instance per line;
* ``application/x-recordio-protobuf``: Records with a dense or sparse ``features["values"]``.

Responses: ``application/json`` ``{"predictions": [{"topic_weights": [K floats]}]}`` (the
default), ``application/jsonlines`` one ``{"topic_weights": [...]}`` per line, and
``application/x-recordio-protobuf`` one Record per document with ``label["topic_weights"]``.
Topic weights are the posterior mean topic proportions, softmax(mu), summing to 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagetext.algorithms.ntm import model as ntm_model
from sagetext.data import bow, recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError

RESPONSE_TYPES = (JSON, JSONLINES, RECORDIO)
BATCH = 1024


class NtmPredictor:
    answers: Mapping[str, tuple[str, ...]] = {request: RESPONSE_TYPES for request in (JSON, JSONLINES, CSV, RECORDIO)}
    honours_accept = True

    def __init__(self, model: ntm_model.ProdLDA) -> None:
        self.model = model.eval()
        self.feature_dim = model.config.feature_dim

    @classmethod
    def load(cls, model_dir: Path) -> "NtmPredictor":
        return cls(ntm_model.load(model_dir))

    def predict(self, data: Any, content_type: str, response_type: str) -> Any:
        if content_type == CSV:  # already one dense row per document: no per-row objects
            weights = self.dense_topic_weights(self._checked_rows(data))
        else:
            weights = self.topic_weights(self.documents(data, content_type))
        if response_type == RECORDIO:
            return [{"label": {"topic_weights": row}} for row in weights]
        items = [{"topic_weights": [float(w) for w in row]} for row in weights]
        return {"predictions": items} if response_type == JSON else items

    def topic_weights(self, documents: list[bow.Document]) -> np.ndarray:
        """(len(documents), num_topics) float32 topic proportions."""
        out = np.zeros((len(documents), self.model.config.num_topics), dtype=np.float32)
        with torch.no_grad():
            for lo in range(0, len(documents), BATCH):
                chunk = documents[lo:lo + BATCH]
                x = np.zeros((len(chunk), self.feature_dim), dtype=np.float32)
                for i, doc in enumerate(chunk):
                    x[i, doc.ids] = doc.counts
                out[lo:lo + len(chunk)] = self.model.topic_weights(torch.from_numpy(x)).numpy()
        return out

    def dense_topic_weights(self, rows: np.ndarray) -> np.ndarray:
        """Topic proportions of checked dense count rows (n, feature_dim), ``BATCH`` rows at a time."""
        out = np.zeros((len(rows), self.model.config.num_topics), dtype=np.float32)
        with torch.no_grad():
            for lo in range(0, len(rows), BATCH):
                x = np.ascontiguousarray(rows[lo:lo + BATCH], dtype=np.float32) + np.float32(0)  # -0.0 -> 0.0
                out[lo:lo + len(x)] = self.model.topic_weights(torch.from_numpy(x)).numpy()
        return out

    def _checked_rows(self, rows: np.ndarray) -> np.ndarray:
        """CSV rows checked all at once; the first bad row raises the error ``_dense`` gives it."""
        if rows.size == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        bad = (rows.shape[1] != self.feature_dim) | ~np.isfinite(rows).all(axis=1) | (rows < 0).any(axis=1)
        if np.any(bad):
            first = int(np.argmax(bad))
            self._dense(rows[first], f"{CSV} line {first + 1}")
        return rows

    def documents(self, data: Any, content_type: str) -> list[bow.Document]:
        if content_type == CSV:
            return [self._dense(row, f"{CSV} line {i + 1}") for i, row in enumerate(data)]
        if content_type == RECORDIO:
            return [self._record(record, i + 1) for i, record in enumerate(data)]
        if content_type == JSONLINES:
            return [self._instance(item, f"{JSONLINES} line {i + 1}") for i, item in enumerate(data)]
        return [self._instance(item, f"instance {i}") for i, item in enumerate(_instances(data))]

    def _dense(self, values: Any, where: str) -> bow.Document:
        row = _numbers(values, where)
        if row.ndim != 1:
            raise ClientError(f"{where}: expected a flat list of {self.feature_dim} counts")
        if len(row) != self.feature_dim:
            raise ClientError(f"{where}: has {len(row)} values; expected {self.feature_dim} (feature_dim)")
        keys = np.flatnonzero(row)
        return bow.checked_document(keys, row[keys], (self.feature_dim,), self.feature_dim, where)

    def _record(self, record: Mapping[str, Any], number: int) -> bow.Document:
        where = f"{RECORDIO} record {number}"
        tensor = record["features"].get("values")
        if tensor is None:
            raise ClientError(f"{where}: has no features['values'] tensor")
        if isinstance(tensor, recordio.SparseTensor):
            return bow.checked_document(tensor.keys, tensor.values, tensor.shape, self.feature_dim, where)
        return self._dense(np.asarray(tensor).reshape(-1), where)

    def _instance(self, item: Any, where: str) -> bow.Document:
        if not isinstance(item, Mapping):
            raise ClientError(f"{where}: expected an object with 'features' or 'data'")
        if "features" in item:
            return self._dense(item["features"], f"{where} features")
        data = item.get("data")
        features = data.get("features") if isinstance(data, Mapping) else None
        if not isinstance(features, Mapping) or "values" not in features:
            raise ClientError(f"{where}: expected {{\"features\": [...]}} or "
                              "{\"data\": {\"features\": {\"values\": [...]}}} (with keys and shape when sparse)")
        if "keys" not in features:
            return self._dense(features["values"], f"{where} data.features.values")
        return self._sparse(features, f"{where} data.features")

    def _sparse(self, features: Mapping[str, Any], where: str) -> bow.Document:
        values = _numbers(features["values"], f"{where}.values")
        keys = _numbers(features["keys"], f"{where}.keys")
        shape = features.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ClientError(f"{where}.shape: {shape!r}; a sparse instance needs shape [{self.feature_dim}]")
        if values.ndim != 1 or keys.ndim != 1 or len(keys) != len(values):
            raise ClientError(f"{where}: keys and values must be flat lists of the same length "
                              f"(got {keys.size} keys, {values.size} values)")
        if len(keys) and (keys.min() < 0 or not np.all(keys == np.floor(keys))):
            raise ClientError(f"{where}.keys: keys must be non-negative integers")
        if len(keys) and keys.max() >= max(self.feature_dim, 1):
            raise ClientError(f"{where}.keys: key {int(keys.max())} is out of range; keys must be "
                              f"< {self.feature_dim} (feature_dim)")
        return bow.checked_document(keys.astype(np.int64), values, tuple(shape), self.feature_dim, where)


def _instances(data: Any) -> list[Any]:
    if isinstance(data, Mapping) and "instances" in data:
        if not isinstance(data["instances"], list):
            raise ClientError("instances: expected a list of instances")
        return data["instances"]
    if isinstance(data, Mapping) and ("features" in data or "data" in data):
        return [data]
    raise ClientError(f"{JSON} body: expected {{\"instances\": [...]}} or a single instance object")


def _numbers(values: Any, where: str) -> np.ndarray:
    if not isinstance(values, (list, np.ndarray)):
        raise ClientError(f"{where}: expected a list of numbers")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClientError(f"{where}: expected a flat list of numbers") from None
