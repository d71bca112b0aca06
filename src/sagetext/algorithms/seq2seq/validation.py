"""How a Seq2Seq model is scored: teacher-forced perplexity and token accuracy, and corpus BLEU
of beam-search translations, on SageMaker's Sockeye-based scale.

The trainer scores the validation channel with these at each internal checkpoint; the update
step shares ``scored_logits`` so that training and validation losses count the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import sacrebleu
import torch
from torch import nn

from sagetext.algorithms.seq2seq.beam import beam_search
from sagetext.algorithms.seq2seq.data import Batch, Pair, lengths, make_batch, sequential_batches
from sagetext.algorithms.seq2seq.vocab import PAD_ID

VALIDATION_BATCH = 64  # sentences per batch when scoring; does not change the figures


def autocast(device: str) -> Any:
    """bfloat16 autocast on a GPU; full precision on CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def scored_logits(network: nn.Module, batch: Batch, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced logits (N, V) and targets (N,) of the batch's N real target positions: the
    output layer and the loss skip the padding."""
    scored = batch.target_output != PAD_ID
    with autocast(device):
        logits = network(batch.source, batch.source_length, batch.target_input, scored).float()
    return logits, batch.target_output[scored]


@torch.no_grad()
def perplexity_and_accuracy(model: nn.Module, pairs: Sequence[Pair], device: str) -> dict[str, float]:
    """Teacher-forced perplexity (per target token, ``</s>`` included) and token accuracy."""
    model.eval()
    loss_sum, correct, tokens = 0.0, 0, 0
    for batch in sequential_batches(pairs, VALIDATION_BATCH):
        logits, target = scored_logits(model, batch.to(device), device)
        loss_sum += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(-1) == target).sum())
        tokens += len(target)
    return {"perplexity": math.exp(min(loss_sum / tokens, 100.0)), "accuracy": correct / tokens}


def translate_pairs(model: nn.Module, pairs: Sequence[Pair], beam_size: int, max_len: int, device: str,
                    batch_size: int = VALIDATION_BATCH) -> list[list[int]]:
    """Beam-search outputs (ids without </s>) for the sources of ``pairs``, in order."""
    model.eval()
    order = np.argsort(lengths(pairs)[0], kind="stable").tolist()
    outputs: list[list[int]] = [[] for _ in pairs]
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = make_batch(pairs, chosen).to(device)
        limit = min(max_len, 2 * int(batch.source_length.max()) + 10)
        with autocast(device):
            for index, hypothesis in zip(chosen, beam_search(model, batch.source, batch.source_length,
                                                             beam_size, limit)):
                outputs[index] = hypothesis.tokens
    return outputs


def corpus_bleu(hypotheses: list[str], references: list[str], tokenize: str) -> float:
    """Corpus BLEU on Sockeye 1.x's scale, 0 to 1 (sacreBLEU's 0-100 score / 100): the scale of
    ``validation:bleu`` in SageMaker's Sockeye-based Seq2Seq, so that tuning ranges and
    thresholds carry over."""
    return float(sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize, force=True).score) / 100.0
