"""Label probabilities from a line's hidden vector, for each loss a fastText model may use.

Our training writes softmax models; fastText models dropped in as ``model.bin`` may also use
one-vs-all or negative sampling (a sigmoid per label, which fastText reads from a 512-entry
table) or hierarchical softmax (a Huffman tree over the label counts). Each is reproduced
here as fastText computes it at prediction time (``loss.cc``), so the probabilities agree
with ``fasttext predict``. fastText reports ``exp(log(p + 1e-5))``; so do we.
"""

from __future__ import annotations

import math

import numpy as np
import torch

REPORT_EPSILON = 1e-5  # fastText's std_log(x) = log(x + 1e-5)
SIGMOID_TABLE_SIZE = 512
MAX_SIGMOID = 8
LOSS_HS, LOSS_NS, LOSS_SOFTMAX, LOSS_OVA = 1, 2, 3, 4


class Scorer:
    """Turns hidden vectors (lines x dim) into per-label probabilities (lines x labels)."""

    def __init__(self, loss: int, output: torch.Tensor, label_counts: np.ndarray) -> None:
        if loss not in (LOSS_HS, LOSS_NS, LOSS_SOFTMAX, LOSS_OVA):
            raise ValueError(f"unknown fastText loss {loss}")
        self.loss = loss
        self.output = output
        if loss == LOSS_HS:
            paths, codes = huffman_paths(label_counts)
            self.paths, self.codes = paths.to(output.device), codes.to(output.device)
        x = torch.arange(SIGMOID_TABLE_SIZE + 1, dtype=torch.float64) * 2 * MAX_SIGMOID / SIGMOID_TABLE_SIZE
        self.sigmoid_table = torch.sigmoid(x - MAX_SIGMOID).to(torch.float32).to(output.device)

    def reported(self, hidden: torch.Tensor) -> torch.Tensor:
        """The probabilities fastText reports (``p + 1e-5``); 0 marks a label fastText omits (hs only)."""
        if self.loss == LOSS_HS:
            return self._tree(hidden)
        scores = hidden @ self.output.T
        probs = torch.softmax(scores, dim=1) if self.loss == LOSS_SOFTMAX else self._table_sigmoid(scores)
        return probs + REPORT_EPSILON

    def _table_sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        index = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2).clamp(0, SIGMOID_TABLE_SIZE)
        values = self.sigmoid_table[index.to(torch.int64)]
        return torch.where(x < -MAX_SIGMOID, 0.0, torch.where(x > MAX_SIGMOID, 1.0, values))

    def _tree(self, hidden: torch.Tensor) -> torch.Tensor:
        node_scores = torch.sigmoid(hidden @ self.output.T)  # (lines, internal nodes)
        f = node_scores[:, self.paths.clamp(min=0)]  # (lines, labels, depth)
        step = torch.where(self.codes, f, 1.0 - f)
        logs = torch.log(step + REPORT_EPSILON)
        logs = torch.where(self.paths >= 0, logs, 0.0)
        score = logs.sum(dim=2)
        kept = score >= math.log(REPORT_EPSILON)  # fastText's dfs stops below std_log(threshold=0)
        return torch.where(kept, torch.exp(score), 0.0)


def huffman_paths(counts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """fastText's ``buildTree``: per label, its internal nodes (output rows) and codes, root last."""
    osz = len(counts)
    parent = [-1] * (2 * osz - 1)
    binary = [False] * (2 * osz - 1)
    count = [int(c) for c in counts] + [10 ** 15] * (osz - 1)
    leaf, node = osz - 1, osz
    for i in range(osz, 2 * osz - 1):
        mini = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini.append(leaf)
                leaf -= 1
            else:
                mini.append(node)
                node += 1
        count[i] = count[mini[0]] + count[mini[1]]
        parent[mini[0]] = parent[mini[1]] = i
        binary[mini[1]] = True
    paths, codes = [], []
    for i in range(osz):
        path, code, j = [], [], i
        while parent[j] != -1:
            path.append(parent[j] - osz)
            code.append(binary[j])
            j = parent[j]
        paths.append(path)
        codes.append(code)
    depth = max((len(p) for p in paths), default=0)
    padded = torch.full((osz, depth), -1, dtype=torch.int64)
    bits = torch.zeros((osz, depth), dtype=torch.bool)
    for i, (path, code) in enumerate(zip(paths, codes)):
        padded[i, :len(path)] = torch.tensor(path, dtype=torch.int64)
        bits[i, :len(code)] = torch.tensor(code, dtype=torch.bool)
    return padded, bits
