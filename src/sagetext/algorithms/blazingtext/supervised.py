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
out once before training (``batches``: the batches are the same every epoch), so a step is two gathers,
two ``embedding_bag`` calls, two tiny matrix products and one scatter of distinct rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sagetext.algorithms.blazingtext.batches import Batch
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


def sgd_step(model: Model, batch: Batch, lr: float, one_vs_all: bool, seed: tuple[int, ...]) -> None:
    """One SGD update from the batch's lines: softmax over one label per line (chosen with
    ``seed`` when a line has several), or one-vs-all (a sigmoid per label, fastText's ``ova``)."""
    touched = model.input.index_select(0, batch.rows)
    hidden = F.embedding_bag(batch.local_inputs, touched, batch.line_offsets, mode="mean")
    scores = hidden @ model.output.T
    if one_vs_all:
        alpha = batch.multi_hot(scores.shape[1]).sub_(torch.sigmoid(scores))
    else:
        probs = torch.softmax(scores, dim=1)
        alpha = torch.zeros_like(probs).scatter_(1, batch.targets(seed)[:, None], 1.0)
        alpha.sub_(probs)
    alpha.mul_(lr)
    grad_hidden = alpha @ model.output  # before the output update, as fastText does
    model.output.addmm_(alpha.T, hidden)
    delta = F.embedding_bag(batch.lines_by_row, grad_hidden, batch.row_offsets, mode="sum",
                            per_sample_weights=batch.line_scales[batch.lines_by_row])
    model.input.index_copy_(0, batch.rows, touched.add_(delta))


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

