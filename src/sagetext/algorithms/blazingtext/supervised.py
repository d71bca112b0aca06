"""The fastText supervised model in PyTorch: parameters, one SGD step, and class probabilities.

The model is fastText's: a line's hidden vector is the mean of its input rows (words,
``</s>`` and hashed word n-grams), the scores are ``output @ hidden``, the loss is softmax
cross-entropy (or, with ``loss=ova``, an independent sigmoid per label against every label of
the line, fastText's one-vs-all). fastText trains it one line at a time with Hogwild SGD in C++; here a step
takes a mini-batch of consecutive lines and applies the sum of their per-line updates, each
computed as fastText computes it (``alpha = lr * (onehot - p)``, input gradient divided by
the number of input rows), so a small batch behaves like the sequence of per-line updates.

The gradients are written by hand rather than taken from autograd: the step touches only
the rows the batch uses, and each batch's distinct rows and the inverse mapping are worked
out once before training (the batches are the same every epoch), so a step is two gathers,
two ``embedding_bag`` calls, two tiny matrix products and one scatter of distinct rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sagetext.algorithms.blazingtext.encoding import Encoded

PREDICT_CHUNK_LINES = 4096


@dataclass
class Model:
    """``input``: (rows, dim), rows = words + n-gram buckets; ``output``: (labels, dim)."""

    input: torch.Tensor
    output: torch.Tensor

    @classmethod
    def initial(cls, rows: int, nlabels: int, dim: int, seed: int, device: str) -> "Model":
        """fastText's start: input uniform in (-1/dim, 1/dim), output zero."""
        generator = torch.Generator().manual_seed(seed)
        weights = torch.empty(rows, dim).uniform_(-1.0 / dim, 1.0 / dim, generator=generator)
        return cls(weights.to(device), torch.zeros(nlabels, dim, device=device))

    def clone(self) -> "Model":
        return Model(self.input.clone(), self.output.clone())

    def copy_(self, other: "Model") -> None:
        self.input.copy_(other.input)
        self.output.copy_(other.output)

    def top_labels(self, inputs: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The most probable label of each line (lines given as ragged ``inputs``/``offsets``)."""
        num_lines = len(offsets) - 1
        out = torch.empty(num_lines, dtype=torch.int64, device=self.input.device)
        with torch.no_grad():
            for first in range(0, num_lines, PREDICT_CHUNK_LINES):
                last = min(first + PREDICT_CHUNK_LINES, num_lines)
                begin, end = int(offsets[first]), int(offsets[last])
                hidden = F.embedding_bag(inputs[begin:end].long(), self.input, offsets[first:last] - begin, mode="mean")
                out[first:last] = (hidden @ self.output.T).argmax(dim=1)  # softmax keeps the order
        return out


@dataclass(frozen=True)
class Batch:
    """One step's lines, prepared once: the distinct rows and how lines map onto them."""

    first_line: int
    last_line: int  # exclusive
    rows: torch.Tensor  # int64 distinct input rows used by the batch
    local_inputs: torch.Tensor  # int64 index into ``rows`` for each input of each line
    line_offsets: torch.Tensor  # int64 start of each line in ``local_inputs``
    lines_by_row: torch.Tensor  # int64 line (within the batch) of each input, grouped by row
    row_offsets: torch.Tensor  # int64 start of each row's group in ``lines_by_row``
    line_weights: torch.Tensor  # float32 1/len(line) for each entry of ``lines_by_row``
    ntokens: int  # tokens of these lines as fastText counts them (for the learning rate)


def plan_batches(data: Encoded, lines_per_batch: int, rows: int, device: str) -> list[Batch]:
    """Cut ``data`` into consecutive batches and precompute each batch's row grouping."""
    lengths = np.diff(data.offsets)
    weights = (1.0 / np.maximum(lengths, 1)).astype(np.float32)
    last_seen = np.empty(rows, dtype=np.int64)
    batches = []
    for first in range(0, data.num_lines, lines_per_batch):
        last = min(first + lines_per_batch, data.num_lines)
        begin, end = int(data.offsets[first]), int(data.offsets[last])
        batches.append(_plan_batch(data.inputs[begin:end], lengths[first:last], weights[first:last],
                                   last_seen, first, last, int(data.ntokens[first:last].sum()), device))
    return batches


def _plan_batch(ids: np.ndarray, lengths: np.ndarray, weights: np.ndarray, last_seen: np.ndarray,
                first: int, last: int, ntokens: int, device: str) -> Batch:
    positions = np.arange(len(ids), dtype=np.int64)
    last_seen[ids] = positions  # one position per distinct row survives
    representative = last_seen[ids]
    is_first = representative == positions
    rank = np.cumsum(is_first) - 1
    local = rank[representative]  # index of each input's row among the distinct rows
    distinct = ids[is_first].astype(np.int64)
    line = np.repeat(np.arange(last - first, dtype=np.int64), lengths)
    keys = local.astype(np.uint16) if len(distinct) <= 1 << 16 else local  # 16-bit keys: numpy radix sort
    order = np.argsort(keys, kind="stable")
    per_row = np.bincount(local, minlength=len(distinct))
    row_offsets = np.zeros(len(distinct), dtype=np.int64)
    np.cumsum(per_row[:-1], out=row_offsets[1:])
    line_offsets = np.zeros(last - first, dtype=np.int64)
    np.cumsum(lengths[:-1], out=line_offsets[1:])
    by_row = line[order]

    def put(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device)

    return Batch(first, last, put(distinct), put(local), put(line_offsets), put(by_row), put(row_offsets),
                 put(weights[by_row]), ntokens)


@dataclass(frozen=True)
class LabelSets:
    """Every label of every line, for one-vs-all: ``labels[offsets[j]:offsets[j+1]]`` are line j's."""

    labels: torch.Tensor  # int64
    line_of_label: torch.Tensor  # int64
    offsets: np.ndarray  # int64, num_lines + 1

    @classmethod
    def of(cls, data: Encoded, device: str) -> "LabelSets":
        lines = np.repeat(np.arange(data.num_lines, dtype=np.int64), np.diff(data.label_offsets))
        return cls(torch.from_numpy(data.labels.astype(np.int64)).to(device), torch.from_numpy(lines).to(device),
                   data.label_offsets)

    def multi_hot(self, first: int, last: int, nlabels: int) -> torch.Tensor:
        a, b = int(self.offsets[first]), int(self.offsets[last])
        hot = torch.zeros(last - first, nlabels, device=self.labels.device)
        hot[self.line_of_label[a:b] - first, self.labels[a:b]] = 1.0
        return hot


def sgd_step(model: Model, batch: Batch, targets: torch.Tensor | LabelSets, lr: float) -> None:
    """One SGD update from the batch's lines: softmax when ``targets`` holds one label per line,
    one-vs-all (a sigmoid per label, fastText's ``ova``) when it holds every line's ``LabelSets``."""
    touched = model.input.index_select(0, batch.rows)
    hidden = F.embedding_bag(batch.local_inputs, touched, batch.line_offsets, mode="mean")
    scores = hidden @ model.output.T
    if isinstance(targets, LabelSets):
        alpha = targets.multi_hot(batch.first_line, batch.last_line, scores.shape[1]).sub_(torch.sigmoid(scores))
    else:
        probs = torch.softmax(scores, dim=1)
        alpha = torch.zeros_like(probs).scatter_(1, targets[batch.first_line:batch.last_line, None], 1.0)
        alpha.sub_(probs)
    alpha.mul_(lr)
    grad_hidden = alpha @ model.output  # before the output update, as fastText does
    model.output.addmm_(alpha.T, hidden)
    delta = F.embedding_bag(batch.lines_by_row, grad_hidden, batch.row_offsets, mode="sum",
                            per_sample_weights=batch.line_weights)
    model.input.index_copy_(0, batch.rows, touched.add_(delta))


def choose_targets(data: Encoded, rng: np.random.Generator, device: str) -> torch.Tensor:
    """One label per line: the only one, or (several labels) one at random, as fastText does."""
    counts = np.diff(data.label_offsets)
    pick = data.label_offsets[:-1]
    if (counts > 1).any():
        pick = pick + np.floor(rng.random(len(counts)) * counts).astype(np.int64)
    return torch.from_numpy(data.labels[pick].astype(np.int64)).to(device)


def accuracy_counts(model: Model, data: Encoded) -> tuple[int, int]:
    """(lines whose top label is one of their labels, lines) — fastText's precision@1."""
    if data.num_lines == 0:
        return 0, 0
    device = model.input.device
    top = model.top_labels(torch.from_numpy(data.inputs).to(device), torch.from_numpy(data.offsets).to(device))
    top = top.cpu().numpy()
    line_of_label = np.repeat(np.arange(data.num_lines), np.diff(data.label_offsets))
    hit = np.zeros(data.num_lines, dtype=bool)
    hit[line_of_label[data.labels == top[line_of_label]]] = True
    return int(hit.sum()), data.num_lines
