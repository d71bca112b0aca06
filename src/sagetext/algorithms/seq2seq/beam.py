"""Batched beam search for both Seq2Seq architectures (greedy search is ``beam_size=1``).

All sentences of a batch are searched together: the encoded source is repeated once per
beam, each step scores every (beam, token) extension, keeps the best ``beam_size`` per
sentence and reorders the decoder state. A finished hypothesis (it produced ``</s>``) only
extends with ``<pad>`` at no cost; a sentence whose hypotheses have all finished leaves the
batch. At the end each sentence's best hypothesis is the one with
the highest log-probability divided by its length (Sockeye's length penalty with alpha=1,
beta=0). The attention weights of the chosen hypothesis come back too: one row per output
token, one column per source token, each row summing to 1 (the weight a model that reads its
sources with ``</s>`` put on that ``</s>`` is left out and the row rescaled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast

import torch
from torch import nn

from sagetext.algorithms.seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID

State = dict[str, torch.Tensor]


class Decodable(Protocol):
    """What beam search needs of a model: every Seq2Seq architecture has these three."""

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> State: ...

    def init_state(self, encoded: State) -> State: ...

    def step(self, previous: torch.Tensor, state: State,
             encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]: ...


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # output ids without </s>
    score: float  # length-normalised log-probability (</s> counted in the length)
    attention: list[list[float]]  # len(tokens) rows × source-length columns


@torch.no_grad()
def beam_search(module: nn.Module, source: torch.Tensor, length: torch.Tensor, beam_size: int,
                max_output_length: int) -> list[Hypothesis]:
    """Translate a padded batch ``source`` (B, S) with lengths (B,); one Hypothesis per row.
    A sentence leaves the batch once its ``beam_size`` hypotheses have all finished (nothing
    could change them any more), so that the last long sentences decode alone."""
    model = cast(Decodable, module)
    k = beam_size
    encoded = model.encode(source, length)
    encoded = {name: value.repeat_interleave(k, dim=0) for name, value in encoded.items()}
    state = model.init_state(encoded)
    beams = _Beams(source.size(0), k, source.size(1), source.device)
    results: list[Hypothesis | None] = [None] * source.size(0)
    for step in range(max_output_length):
        logits, weights, state = model.step(beams.tokens[:, -1], state, encoded)
        origin = beams.extend(logits, weights)
        state = {name: value[origin] for name, value in state.items()}
        done = beams.finished.view(-1, k).all(dim=1)
        if step == max_output_length - 1:
            done[:] = True
        if bool(done.any()):
            for sentence, hypothesis in beams.pop(done, length):
                results[sentence] = hypothesis
            keep = (~done).repeat_interleave(k)
            state = {name: value[keep] for name, value in state.items()}
            encoded = {name: value[keep] for name, value in encoded.items()}
            if not len(beams.sentences):
                break
    return [hypothesis if hypothesis is not None else Hypothesis([], 0.0, []) for hypothesis in results]


class _Beams:
    """The ``k`` hypotheses of each sentence still in the search: scores (active, k), tokens and
    attention rows (active * k, ...), which have finished, and which sentences they are."""

    def __init__(self, batch: int, k: int, source_length: int, device: torch.device) -> None:
        self.k = k
        self.scores = torch.full((batch, k), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
        self.tokens = torch.full((batch * k, 1), BOS_ID, dtype=torch.long, device=device)
        self.attention = torch.zeros(batch * k, 0, source_length, device=device)
        self.finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
        self.sentences = torch.arange(batch, device=device)

    def extend(self, logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Keep the best ``k`` one-token extensions of each sentence's hypotheses; return the row
        each kept hypothesis came from (to reorder the decoder state)."""
        batch, k = self.scores.size(0), self.k
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs[:, PAD_ID] = float("-inf")  # never produced by a live hypothesis
        log_probs[:, BOS_ID] = float("-inf")
        log_probs[self.finished] = float("-inf")
        log_probs[self.finished, PAD_ID] = 0.0  # a finished hypothesis extends with <pad> at no cost
        vocab = log_probs.size(1)
        candidates = (self.scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        self.scores, best = candidates.topk(k, dim=1)
        offsets = (torch.arange(batch, device=best.device) * k).unsqueeze(1)
        origin = (offsets + torch.div(best, vocab, rounding_mode="floor")).view(-1)
        chosen = (best % vocab).view(-1, 1)
        self.tokens = torch.cat([self.tokens[origin], chosen], dim=1)
        columns = self.attention.size(2)  # the source's tokens (not a source-side </s> the model added)
        self.attention = torch.cat([self.attention[origin], weights.float()[origin, :columns].unsqueeze(1)], dim=1)
        self.finished = self.finished[origin] | (chosen.view(-1) == EOS_ID)
        return origin

    def pop(self, done: torch.Tensor, length: torch.Tensor) -> list[tuple[int, Hypothesis]]:
        """Take the sentences marked ``done`` (active,) out of the search, with their best
        hypotheses."""
        rows = done.repeat_interleave(self.k)
        sentences = self.sentences[done]
        found = _best(self.tokens[rows, 1:], self.scores[done], self.attention[rows], length[sentences],
                      len(sentences), self.k)
        self.scores, self.tokens = self.scores[~done], self.tokens[~rows]
        self.attention, self.finished = self.attention[~rows], self.finished[~rows]
        self.sentences = self.sentences[~done]
        return list(zip(sentences.tolist(), found))


def _best(tokens: torch.Tensor, scores: torch.Tensor, attention: torch.Tensor, length: torch.Tensor,
          batch: int, k: int) -> list[Hypothesis]:
    """Pick each sentence's best hypothesis by length-normalised score."""
    lengths = []
    for row in tokens.tolist():
        lengths.append(row.index(EOS_ID) + 1 if EOS_ID in row else len(row))
    lengths_t = torch.tensor(lengths, dtype=torch.float32, device=scores.device).clamp(min=1).view(batch, k)
    normalised = scores / lengths_t
    winners = normalised.argmax(dim=1)
    results = []
    for sentence in range(batch):
        row = sentence * k + int(winners[sentence])
        n = lengths[row] - (1 if EOS_ID in tokens[row].tolist()[:lengths[row]] else 0)
        weights = attention[row, :n, :int(length[sentence])]
        results.append(Hypothesis(
            tokens=tokens[row, :n].tolist(),
            score=float(normalised[sentence, winners[sentence]]),
            attention=(weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-9)).tolist()))
    return results
