"""Seq2Seq serving: translate requests with batched beam search.

``application/json``: ``{"instances": [{"data": "tokenised source"}, ...]}`` →
``{"predictions": [{"target": "..."}]}``; ``"configuration": {"attention_matrix": "true"}``
(string or boolean) gives a prediction ``"matrix"`` too: one row per target token
(``len(target.split())`` rows, ``</s>`` left out), one column per source token. The
configuration may come at the top level of the body, for every instance (as BlazingText's
``{"k": N}`` does), or in an instance, which then overrides the top level for that instance.
``attention_matrix`` is its only key; any other is a 400 naming it (the beam width is the
model's ``beam_size`` hyperparameter, fixed at training).
``application/jsonlines``: ``{"source": "..."}`` lines → ``{"target": "..."}`` lines (batch
transform). ``application/x-recordio-protobuf``: Records with int32 ``features["source"]`` ids
→ Records with int32 ``features["target"]`` ids (no ``</s>``). The answer always has the
request's type, which Accept must allow. A blank source translates to an empty target.

A model trained with subwords (extension) takes raw text and answers detokenised text in JSON
and JSON Lines; its attention matrix is over subword pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagetext.algorithms.seq2seq import artifacts
from sagetext.algorithms.seq2seq.beam import Hypothesis, beam_search
from sagetext.algorithms.seq2seq.vocab import PAD_ID
from sagetext.contract import settings
from sagetext.data.media_types import JSON, JSONLINES, RECORDIO
from sagetext.data.recordio import SparseTensor
from sagetext.distributed.runtime import choose_device
from sagetext.errors import ClientError

BATCH_SIZE = 64
CONFIGURATION_KEYS = ("attention_matrix",)  # what a JSON request's "configuration" may set


class Seq2SeqPredictor:
    answers: Mapping[str, tuple[str, ...]] = {JSON: (JSON,), JSONLINES: (JSONLINES,), RECORDIO: (RECORDIO,)}
    honours_accept = True  # the answer has the request's type, and Accept must allow it

    def __init__(self, loaded: artifacts.LoadedModel, device: str = "cpu") -> None:
        self.loaded = loaded
        self.device = device
        self.encode: Callable[[str], list[int]] = loaded.source_vocab.ids
        self.decode: Callable[[list[int]], str] = lambda ids: " ".join(
            loaded.target_vocab.id_to_token[i] for i in ids)
        if loaded.subwords:
            import sentencepiece as spm
            source = spm.SentencePieceProcessor(model_proto=loaded.subwords["source"])
            target = spm.SentencePieceProcessor(model_proto=loaded.subwords["target"])
            self.encode = lambda text: list(source.encode(text))
            self.decode = lambda ids: str(target.decode(ids))

    @classmethod
    def load(cls, model_dir: Path) -> "Seq2SeqPredictor":
        device = choose_device(settings.read("device"))
        return cls(artifacts.load(model_dir, device), device)

    def predict(self, data: Any, content_type: str, response_type: str) -> Any:
        if content_type == JSON:
            return self._predict_json(data)
        if content_type == JSONLINES:
            return self._predict_jsonlines(data)
        return self._predict_recordio(data)

    # ---- per content type ---------------------------------------------------------------------

    def _predict_json(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
            raise ClientError('request body must be a JSON object {"instances": [{"data": "source text"}, ...]}')
        shared = self._configuration(data.get("configuration"), '"configuration"')
        texts, want_matrix = [], []
        for i, instance in enumerate(data["instances"]):
            if not isinstance(instance, dict) or not isinstance(instance.get("data"), str):
                raise ClientError(f'"instances"[{i}] must be an object with a string "data" field '
                                  '(the whitespace-tokenised source sentence)')
            texts.append(instance["data"])
            options = {**shared, **self._configuration(instance.get("configuration"),
                                                       f'"instances"[{i}].configuration')}
            want_matrix.append(options.get("attention_matrix", False))
        hypotheses = self.translate([self.encode(text) for text in texts])
        predictions = []
        for hypothesis, matrix in zip(hypotheses, want_matrix):
            answer: dict[str, Any] = {"target": self.decode(hypothesis.tokens)}
            if matrix:
                answer["matrix"] = hypothesis.attention
            predictions.append(answer)
        return {"predictions": predictions}

    def _predict_jsonlines(self, data: Any) -> list[dict[str, str]]:
        sources = []
        for i, line in enumerate(data):
            if not isinstance(line, dict) or not isinstance(line.get("source"), str):
                raise ClientError(f'{JSONLINES} line {i + 1} must be an object with a string "source" field')
            sources.append(self.encode(line["source"]))
        return [{"target": self.decode(h.tokens)} for h in self.translate(sources)]

    def _predict_recordio(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        size = len(self.loaded.source_vocab)
        sources = []
        for number, record in enumerate(records, start=1):
            where = f"{RECORDIO} record {number}"
            tensor = record["features"].get("source")
            if tensor is None:
                raise ClientError(f"{where}: features['source'] is missing; send source token ids there")
            if isinstance(tensor, SparseTensor):
                tensor = _leading_ids(tensor, self.loaded.config.max_seq_len_source, where)
            ids = np.asarray(tensor)
            if ids.dtype.kind not in "iu" or ids.ndim != 1:
                raise ClientError(f"{where}: features['source'] must be a 1-D int32 tensor of token ids")
            bad = np.flatnonzero((ids < 0) | (ids >= size))
            if len(bad):
                raise ClientError(f"{where}: source id {int(ids[bad[0]])} at position {int(bad[0])} is out of "
                                  f"range for the source vocabulary of {size} tokens")
            sources.append([int(i) for i in ids])
        return [{"features": {"target": np.asarray(h.tokens, dtype=np.int32)}} for h in self.translate(sources)]

    def _configuration(self, value: Any, where: str) -> dict[str, bool]:
        """The options a ``configuration`` object (at ``where`` in the body) sets; absent = none."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ClientError(f'{where} must be an object such as {{"attention_matrix": "true"}}')
        unknown = sorted(set(value) - set(CONFIGURATION_KEYS))
        if unknown:
            names = ", ".join(repr(key) for key in unknown)
            raise ClientError(f"{where} has unknown key {names}; accepted: {', '.join(CONFIGURATION_KEYS)} "
                              f"(beam search uses the model's beam_size, {self.loaded.beam_size})")
        if "attention_matrix" not in value:
            return {}
        return {"attention_matrix": _boolean(value["attention_matrix"], f"{where}.attention_matrix")}

    # ---- translation ----------------------------------------------------------------------------

    def translate(self, sources: list[list[int]]) -> list[Hypothesis]:
        """Beam-search translations of id sequences, in order; an empty source gives an empty one."""
        config = self.loaded.config
        results: list[Hypothesis] = [Hypothesis([], 0.0, []) for _ in sources]
        work = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
        for start in range(0, len(work), BATCH_SIZE):
            chosen = work[start:start + BATCH_SIZE]
            rows = [sources[i][:config.max_seq_len_source] for i in chosen]
            source = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
            for r, ids in enumerate(rows):
                source[r, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            length = torch.tensor([len(ids) for ids in rows], dtype=torch.long)
            limit = min(config.max_seq_len_target, 2 * int(length.max()) + 10)
            found = beam_search(self.loaded.model, source.to(self.device), length.to(self.device),
                                self.loaded.beam_size, limit)
            for index, hypothesis in zip(chosen, found):
                results[index] = hypothesis
        return results


def _leading_ids(tensor: SparseTensor, length: int, where: str) -> np.ndarray:
    """The first ``length`` ids of a 1-D sparse source, densified: only those are translated,
    so a request of a few bytes declaring a huge shape never makes the server allocate it."""
    if len(tensor.shape) != 1:
        raise ClientError(f"{where}: features['source'] must be a 1-D int32 tensor of token ids")
    length = min(tensor.shape[0], length)
    keep = tensor.keys < length
    return SparseTensor(tensor.keys[keep], tensor.values[keep], (length,)).to_dense()


def _boolean(value: Any, where: str) -> bool:
    """true/false as a JSON boolean or a string in any case (the AWS example sends "true")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ClientError(f"{where}={value!r}: expected true or false")
