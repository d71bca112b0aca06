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

from sagetext.algorithms.blazingtext.supervised.batches import Batch
from sagetext.algorithms.blazingtext.supervised.encoding import Encoded
from sagetext.algorithms.blazingtext.supervised.losses import OutputLoss

PREDICT_CHUNK_LINES = 4096


@dataclass
class Model:
    """``input``: (rows, dim), rows = words + n-gram buckets; ``output``: (labels, dim).

    ``input`` holds its rows in training order (``batches``: row ``i`` is fastText's row
    ``order[i]``); ``fasttext_matrices`` puts them back in fastText's order. ``compiled.ArrayModel``
    has the same interface over numpy arrays.
    """

    input: torch.Tensor
    output: torch.Tensor
    order: torch.Tensor | None = None  # fastText's row of each row of ``input``; None: the same

    @classmethod
    def initial(cls, rows: int, nlabels: int, dim: int, seed: int, device: str,
                order: np.ndarray | None = None) -> "Model":
        """fastText's start: input uniform in (-1/dim, 1/dim), output zero (every row drawn,
        as ``compiled.ArrayModel.initial`` explains).

        The rows are drawn in training order (a permutation of i.i.d. rows is as random)."""
        generator = torch.Generator().manual_seed(seed)
        weights = torch.empty(rows, dim).uniform_(-1.0 / dim, 1.0 / dim, generator=generator)
        index = None if order is None else torch.from_numpy(order)
        return cls(weights.to(device), torch.zeros(nlabels, dim, device=device), index)

    def fasttext_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(input with its rows in fastText's order, output), on the CPU."""
        weights = self.input.cpu()
        if self.order is not None:
            ordered = torch.empty_like(weights)
            ordered[self.order] = weights
            weights = ordered
        return weights.numpy(), self.output.cpu().numpy()

    def load_fasttext_(self, input: np.ndarray, output: np.ndarray) -> None:
        """Set the weights from matrices in fastText's row order."""
        weights = torch.from_numpy(input)
        self.input.copy_(weights if self.order is None else weights[self.order])
        self.output.copy_(torch.from_numpy(output))

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.output).all())

    def clone(self) -> "Model":
        return Model(self.input.clone(), self.output.clone(), self.order)

    def copy_(self, other: "Model") -> None:
        self.input.copy_(other.input)
        self.output.copy_(other.output)

    def top_labels_of(self, lines: Encoded, loss: OutputLoss) -> np.ndarray:
        """The most probable label of each of ``lines``."""
        device = self.input.device
        inputs, offsets = torch.from_numpy(lines.inputs).to(device), torch.from_numpy(lines.offsets).to(device)
        return self.top_labels(inputs, offsets, loss).cpu().numpy()

    def top_labels(self, inputs: torch.Tensor, offsets: torch.Tensor, loss: OutputLoss) -> torch.Tensor:
        """The most probable label of each line (lines given as ragged ``inputs``/``offsets``)."""
        num_lines = len(offsets) - 1
        out = torch.empty(num_lines, dtype=torch.int64, device=self.input.device)
        with torch.no_grad():
            for first in range(0, num_lines, PREDICT_CHUNK_LINES):
                last = min(first + PREDICT_CHUNK_LINES, num_lines)
                begin, end = int(offsets[first]), int(offsets[last])
                hidden = F.embedding_bag(inputs[begin:end].long(), self.input, offsets[first:last] - begin, mode="mean")
                out[first:last] = loss.scores(self.output, hidden).argmax(dim=1)
        return out


def sgd_step(model: Model, batch: Batch, lr: float, loss: OutputLoss, seed: tuple[int, ...]) -> None:
    """One SGD update from the batch's lines through ``loss`` (one label per line, chosen with
    ``seed`` when a line has several, except for one-vs-all, which takes them all)."""
    touched = model.input.index_select(0, batch.rows)
    hidden = F.embedding_bag(batch.local_inputs, touched, batch.line_offsets, mode="mean")
    grad_hidden = loss.update(model.output, hidden, batch, lr, seed)
    delta = F.embedding_bag(batch.lines_by_row, grad_hidden, batch.row_offsets, mode="sum",
                            per_sample_weights=batch.line_weights)
    model.input.index_copy_(0, batch.rows, touched.add_(delta))



