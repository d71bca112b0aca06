"""The output layer of the supervised model, one class per fastText loss (``loss=...``).

Each loss takes a batch's hidden vectors, updates the output matrix in place, and returns the
gradient for the hidden vectors, each line's update computed as fastText's ``loss.cc``
computes it (``alpha = lr * (label - p)``, gradient taken before the output rows move) and
the lines of a batch summed:

- ``softmax``: one label per line against all labels;
- ``ova``: a sigmoid per label, every label of the line a positive (multi-label);
- ``ns``: a sigmoid for the line's label and for ``negative_samples`` labels drawn with
  probability proportional to the square root of their counts (never the line's own);
- ``hs``: hierarchical softmax, a sigmoid per node on the label's path in a Huffman tree over
  the label counts (fastText's ``buildTree``; the output rows are the tree's inner nodes), for
  many labels: a step costs log2(labels) instead of labels.

``scores`` ranks the labels of each line (the top label is the prediction) without computing
the probabilities fastText reports; ``scoring.Scorer`` does that for serving.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from sagetext.algorithms.blazingtext.supervised.batches import Batch
from sagetext.algorithms.blazingtext.supervised.scoring import huffman_paths


class OutputLoss(Protocol):
    def update(self, output: torch.Tensor, hidden: torch.Tensor, batch: Batch, lr: float,
               seed: tuple[int, ...]) -> torch.Tensor: ...

    def scores(self, output: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor: ...


class Softmax:
    def update(self, output: torch.Tensor, hidden: torch.Tensor, batch: Batch, lr: float,
               seed: tuple[int, ...]) -> torch.Tensor:
        probs = torch.softmax(hidden @ output.T, dim=1)
        alpha = torch.zeros_like(probs).scatter_(1, batch.targets(seed)[:, None], 1.0).sub_(probs).mul_(lr)
        grad_hidden = alpha @ output  # before the output update, as fastText does
        output.addmm_(alpha.T, hidden)
        return grad_hidden

    def scores(self, output: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ output.T  # softmax keeps the order


class OneVsAll(Softmax):
    def update(self, output: torch.Tensor, hidden: torch.Tensor, batch: Batch, lr: float,
               seed: tuple[int, ...]) -> torch.Tensor:
        alpha = batch.multi_hot(output.shape[0]).sub_(torch.sigmoid(hidden @ output.T)).mul_(lr)
        grad_hidden = alpha @ output
        output.addmm_(alpha.T, hidden)
        return grad_hidden


def _binary_logistic(output: torch.Tensor, hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                     lr: float) -> torch.Tensor:
    """fastText's ``binaryLogistic`` for each (line, row) of ``rows`` (lines x k, -1 = none)
    with 0/1 ``labels``; updates the rows and returns the lines' hidden gradients."""
    used = rows >= 0
    weights = output[rows.clamp(min=0)]  # (lines, k, dim)
    f = torch.sigmoid(torch.einsum("lkd,ld->lk", weights, hidden))
    alpha = (labels - f).mul_(lr).mul_(used)
    grad_hidden = torch.einsum("lk,lkd->ld", alpha, weights)
    lines = torch.arange(len(rows), device=rows.device)[:, None].expand_as(rows)
    output.index_put_((rows[used],), alpha[used][:, None] * hidden[lines[used]], accumulate=True)
    return grad_hidden


class NegativeSampling(Softmax):
    def __init__(self, label_counts: np.ndarray, negatives: int) -> None:
        weights = np.sqrt(np.asarray(label_counts, dtype=np.float64))
        self.probabilities = torch.from_numpy(weights / weights.sum())  # drawn on the CPU (seeded generator)
        self.negatives = negatives if len(label_counts) > 1 else 0

    def update(self, output: torch.Tensor, hidden: torch.Tensor, batch: Batch, lr: float,
               seed: tuple[int, ...]) -> torch.Tensor:
        targets = batch.targets(seed)
        rows = torch.cat([targets[:, None], self._negatives(targets, seed, batch.index)], dim=1)
        labels = torch.zeros(rows.shape, device=rows.device)
        labels[:, 0] = 1.0
        return _binary_logistic(output, hidden, rows, labels, lr)

    def _negatives(self, targets: torch.Tensor, seed: tuple[int, ...], index: int) -> torch.Tensor:
        """``negatives`` labels per line, drawn again wherever they hit the line's own label."""
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([*seed, index]).generate_state(1)[0]))
        shape = (len(targets), self.negatives)

        def draw(count: int) -> torch.Tensor:
            return torch.multinomial(self.probabilities, count, replacement=True,
                                     generator=generator).to(targets.device)

        drawn = draw(shape[0] * shape[1]).view(shape)
        clash = drawn == targets[:, None]
        while bool(clash.any()):
            drawn[clash] = draw(int(clash.sum()))
            clash = drawn == targets[:, None]
        return drawn


class HierarchicalSoftmax:
    def __init__(self, label_counts: np.ndarray, device: str) -> None:
        paths, codes = huffman_paths(label_counts)
        self.paths, self.codes = paths.to(device), codes.to(device).float()

    def update(self, output: torch.Tensor, hidden: torch.Tensor, batch: Batch, lr: float,
               seed: tuple[int, ...]) -> torch.Tensor:
        targets = batch.targets(seed)
        return _binary_logistic(output, hidden, self.paths[targets], self.codes[targets], lr)

    def scores(self, output: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probability of each label: the sum over its path of log sigmoid(+-node score)."""
        node = torch.nn.functional.logsigmoid
        logits = hidden @ output.T  # (lines, nodes)
        on_path = logits[:, self.paths.clamp(min=0)]  # (lines, labels, depth)
        steps = torch.where(self.codes.bool(), node(on_path), node(-on_path))
        return torch.where(self.paths >= 0, steps, 0.0).sum(dim=2)


def make(loss: str, label_counts: np.ndarray, negatives: int, device: str) -> OutputLoss:
    if loss == "softmax":
        return Softmax()
    if loss == "ova":
        return OneVsAll()
    if loss == "ns":
        return NegativeSampling(label_counts, negatives)
    if loss == "hs":
        return HierarchicalSoftmax(label_counts, device)
    raise ValueError(f"unknown loss {loss!r}")
