"""Serve a supervised ``model.bin``: BlazingText's JSON and JSON Lines requests.

``application/json``: ``{"instances": ["sentence", ...], "configuration": {"k": N}}`` gives
``[{"label": ["__label__x", ...], "prob": [p, ...]}, ...]``. ``application/jsonlines``: one
``{"source": "sentence", "k": N}`` object per line, one answer object per line. BlazingText
answers in the request's content type whatever Accept says. All sentences of a request are
tokenized and encoded by the code that prepares training data and scored in one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sagetext.algorithms.blazingtext.fasttext_format import model_file
from sagetext.algorithms.blazingtext.fasttext_format.model_file import MODEL_FILE
from sagetext.algorithms.blazingtext.supervised.encoding import TokenMaps, TokenTable, encode, group_by_line
from sagetext.algorithms.blazingtext.supervised.scoring import Scorer
from sagetext.data.media_types import JSON, JSONLINES
from sagetext.data.text import LabeledBlock, tokenize_lines
from sagetext.errors import ClientError

# Sentences scored together: bounds the (lines x labels) probability matrix of a large request.
BATCH_LINES = 8192


class SupervisedPredictor:
    answers: Mapping[str, tuple[str, ...]] = {JSON: (JSON,), JSONLINES: (JSONLINES,)}
    honours_accept = False  # BlazingText answers in the request's type, whatever Accept says

    def __init__(self, model: model_file.FastTextModel, device: str = "cpu") -> None:
        args = model.args
        if args.model != 3:
            raise ClientError(f"{MODEL_FILE} is a word-vector model ({model_file.MODEL_NAMES.get(args.model)}), "
                              "not a text classifier; serve vectors.bin for word vectors")
        self.model = model
        self.dictionary = model.dictionary
        self.buckets = args.bucket if args.word_ngrams > 1 else 0
        self.input = torch.from_numpy(model.input).to(device)
        self.scorer = Scorer(args.loss, torch.from_numpy(model.output).to(device), model.dictionary.label_counts)
        self.labels = model.dictionary.label_names()

    @classmethod
    def load(cls, model_dir: Path, device: str = "cpu") -> "SupervisedPredictor":
        path = Path(model_dir) / MODEL_FILE
        if not path.is_file():
            raise ClientError(f"no {MODEL_FILE} in {model_dir}: a supervised BlazingText or fastText model is needed")
        return cls(model_file.read(path.read_bytes(), MODEL_FILE), device)

    def predict(self, data: Any, content_type: str, response_type: str) -> Any:
        if content_type == JSON:
            sentences, ks = _json_request(data)
        elif content_type == JSONLINES:
            sentences, ks = _json_lines_request(data)
        else:
            raise ClientError(f"content type {content_type!r} is not accepted; use {JSON} or {JSONLINES}")
        return self.classify(sentences, ks)

    def classify(self, sentences: list[str], ks: list[int]) -> list[dict[str, list]]:
        """Top ``ks[i]`` labels of ``sentences[i]`` by descending probability, ``BATCH_LINES``
        sentences at a time (each line is scored on its own, so batches change nothing but memory)."""
        answers: list[dict[str, list]] = []
        for start in range(0, len(sentences), BATCH_LINES):
            answers += self._classify(sentences[start:start + BATCH_LINES], ks[start:start + BATCH_LINES])
        return answers

    def _classify(self, sentences: list[str], ks: list[int]) -> list[dict[str, list]]:
        if not sentences:
            return []
        probs, empty = self.reported_probabilities(sentences)
        order = np.argsort(-probs, axis=1, kind="stable")
        answers = []
        for i, k in enumerate(ks):
            top = [] if empty[i] else [j for j in order[i, :k].tolist() if probs[i, j] > 0.0]  # 0: pruned (hs)
            answers.append({"label": [self.labels[j] for j in top], "prob": [float(probs[i, j]) for j in top]})
        return answers

    def reported_probabilities(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(lines x labels) probabilities as fastText reports them, and which lines had no input."""
        block = tokenize_lines(sentences)
        table = TokenTable()
        ids = table.ids(block)
        maps = TokenMaps.build(table, self.dictionary)
        encoded = encode(ids, block.is_label, block.line_lengths, maps, self.dictionary.nwords,
                         self.model.args.word_ngrams, self.buckets)
        rows, offsets_np = encoded.inputs, encoded.offsets
        if self.model.args.maxn > 0:
            rows, offsets_np = self._with_char_ngrams(table, ids[~block.is_label], block, rows, offsets_np)
        if self.model.ngram_rows is not None:
            rows, offsets_np = self._pruned(rows, offsets_np)
        inputs = torch.from_numpy(rows.astype(np.int64)).to(self.input.device)
        offsets = torch.from_numpy(offsets_np[:-1]).to(self.input.device)
        with torch.no_grad():
            hidden = F.embedding_bag(inputs, self.input, offsets, mode="mean")
            probs = self.scorer.reported(hidden).cpu().numpy()
        return probs, np.diff(offsets_np) == 0

    def _pruned(self, rows: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A pruned (quantized) model keeps some n-gram buckets, renumbered; the others are dropped."""
        nwords, ngram_rows = self.dictionary.nwords, self.model.ngram_rows
        assert ngram_rows is not None
        rows = rows.astype(np.int64)
        is_ngram = rows >= nwords
        rows[is_ngram] = nwords + ngram_rows[rows[is_ngram] - nwords]
        keep = ~is_ngram | (rows >= nwords)
        kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept rows before each position
        return rows[keep], kept_before[offsets]

    def _with_char_ngrams(self, table: TokenTable, word_ids: np.ndarray, block: LabeledBlock, rows: np.ndarray,
                          offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each line's rows plus its words' character n-gram rows (models trained with ``minn``/``maxn``,
        e.g. fastText's language identifier): fastText's ``computeSubwords`` over ``<word>``, n-gram
        ``g`` at row ``nwords + hash(g) % bucket``, for known and unknown words alike."""
        from gensim.models.fasttext import ft_ngram_hashes  # fastText's n-gram hashing, byte for byte

        args, nwords = self.model.args, self.dictionary.nwords
        per_token = [np.asarray(ft_ngram_hashes(token.decode("utf-8", "replace"), args.minn, args.maxn, args.bucket),
                                dtype=np.int64) + nwords for token in table.tokens]
        lengths = np.array([len(r) for r in per_token], dtype=np.int64)
        flat = np.concatenate(per_token) if per_token else np.zeros(0, dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        count = lengths[word_ids]  # n-grams of each word occurrence, in line order
        take = np.repeat(starts[word_ids] - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        num_lines = len(block.line_lengths)
        labels_per_line = np.bincount(np.repeat(np.arange(num_lines), block.line_lengths), weights=block.is_label,
                                      minlength=num_lines).astype(np.int64)
        word_line = np.repeat(np.arange(num_lines), block.line_lengths - labels_per_line)
        row_line = np.repeat(np.arange(num_lines), np.diff(offsets))
        return group_by_line([(row_line, rows), (np.repeat(word_line, count), flat[take].astype(np.int32))],
                             num_lines)


def _json_request(data: Any) -> tuple[list[str], list[int]]:
    if not isinstance(data, dict) or "instances" not in data:
        raise ClientError('the request body must be a JSON object with "instances": a list of sentences')
    instances = data["instances"]
    if not isinstance(instances, list):
        raise ClientError('"instances" must be a list of strings')
    for i, sentence in enumerate(instances):
        if not isinstance(sentence, str):
            raise ClientError(f'"instances"[{i}] must be a string, got {type(sentence).__name__}')
    configuration = data.get("configuration", {})
    if not isinstance(configuration, dict):
        raise ClientError('"configuration" must be an object such as {"k": 2}')
    k = _k(configuration.get("k", 1), '"configuration"."k"')
    return instances, [k] * len(instances)


def _json_lines_request(data: Any) -> tuple[list[str], list[int]]:
    records = data if isinstance(data, list) else [data]
    sentences, ks = [], []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("source"), str):
            raise ClientError(f'line {i + 1}: each JSON Lines record must be an object with "source": a string')
        sentences.append(record["source"])
        ks.append(_k(record.get("k", 1), f'line {i + 1}: "k"'))
    return sentences, ks


def _k(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClientError(f"{field}={value!r}: expected a positive integer")
    return value
