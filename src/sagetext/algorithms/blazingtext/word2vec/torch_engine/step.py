"""One training step: skip-gram negative sampling (SGNS) updates for a minibatch of windows.

The reference the fused kernels are tested against, and the engine wherever they do not run
(CPU, subwords). Every window's gradients are computed from the parameters as they were at the
start of the step, then added with ``index_add_``, each slot's update scaled by its
``Windows.context_scale`` / ``target_scale`` (below 1 only for rows repeated more than
``repeat_cap`` times in the step; see ``batches``). fp32 throughout.

For a window with context words ``c`` (inputs ``h_c``) and targets ``o`` (the centre word,
label 1, then the shared negatives, label 0), ``g = (label - sigmoid(h . out_o)) * lr``:

- skip-gram (HogBatch): each context word predicts the centre word against the shared
  negatives: ``in_c += sum_o g_co out_o`` and ``out_o += sum_c g_co h_c``;
- cbow: the mean ``h`` of the context vectors predicts the centre word: ``out_o += g_o h`` and
  every context word gets ``sum_o g_o out_o`` in full (word2vec.c's cbow_mean, not divided).

With subwords ``h_c`` is the mean of the word's rows and ``in_c``'s update goes to each row;
cbow's ``h`` is then the mean of all the context words' rows, as fastText and gensim's FastText
form it (a context word weighs as many rows as it has), not the mean of the words' means.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import Windows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.input_rows import InputRows

Update = Callable[[InputRows, torch.Tensor, Windows], None]


def _labels(windows: Windows) -> torch.Tensor:
    labels = torch.zeros(windows.targets.shape[1], dtype=torch.float32, device=windows.targets.device)
    labels[0] = 1.0
    return labels


@torch.no_grad()
def skipgram_update(inputs: InputRows, output: torch.Tensor, windows: Windows) -> None:
    """Every (context word, target) pair of every window, negatives shared across the window."""
    h, bags = inputs.gather(windows.context)  # (P, W, D)
    out = output[windows.targets]  # (P, 1 + K, D)
    scores = torch.bmm(h, out.transpose(1, 2))  # (P, W, 1 + K)
    scale = windows.lr[:, None, None] * windows.context_mask[:, :, None] * windows.target_mask[:, None, :]
    g = (_labels(windows) - torch.sigmoid(scores)) * scale
    grad_out = torch.bmm(g.transpose(1, 2), h) * windows.target_scale[:, :, None]  # (P, 1 + K, D)
    grad_h = torch.bmm(g, out) * windows.context_scale[:, :, None]  # (P, W, D)
    output.index_add_(0, windows.targets.reshape(-1), grad_out.reshape(-1, output.shape[1]))
    inputs.add_(windows.context, bags, grad_h)


@torch.no_grad()
def cbow_update(inputs: InputRows, output: torch.Tensor, windows: Windows) -> None:
    """The mean of each window's context vectors against its centre word and negatives."""
    h_context, bags = inputs.gather(windows.context)  # (P, W, D)
    mask = windows.context_mask
    weight = mask if bags is None else mask * inputs.bag_sizes(windows.context)  # subwords: rows per word
    count = weight.sum(1, keepdim=True)  # (P, 1)
    h = (h_context * weight[:, :, None]).sum(1) / count.clamp(min=1)  # (P, D)
    out = output[windows.targets]  # (P, 1 + K, D)
    scores = torch.bmm(out, h[:, :, None]).squeeze(2)  # (P, 1 + K)
    scale = windows.lr[:, None] * windows.target_mask * (count > 0)
    g = (_labels(windows) - torch.sigmoid(scores)) * scale
    grad_out = (g * windows.target_scale)[:, :, None] * h[:, None, :]  # (P, 1 + K, D)
    grad_h = torch.bmm(g[:, None, :], out).squeeze(1)  # (P, D)
    output.index_add_(0, windows.targets.reshape(-1), grad_out.reshape(-1, output.shape[1]))
    inputs.add_(windows.context, bags, grad_h[:, None, :] * (mask * windows.context_scale)[:, :, None])


def reference_update(mode: str) -> Update:
    """``cbow_update`` for cbow; ``skipgram_update`` for skipgram and batch_skipgram."""
    return cbow_update if mode == "cbow" else skipgram_update
