"""Training windows, built on the device from a worker's word ids, one epoch at a time.

As in word2vec.c:

- frequent-word subsampling keeps a token of a word seen ``c`` times out of ``T`` kept-vocabulary
  tokens with probability ``(sqrt(c / (t T)) + 1) t T / c`` (``t`` = sampling_threshold), freshly
  drawn every epoch; windows are formed over the tokens kept;
- each centre word's window shrinks to a random ``b`` in ``[1, window_size]`` words each side and
  never crosses a sentence (line) boundary;
- negatives are drawn from the unigram distribution raised to the power 0.75 (by binary search in
  its cumulative table, as gensim does, rather than word2vec.c's 1e8-entry table), and a negative
  equal to the centre word is skipped;
- the learning rate decays linearly from ``learning_rate`` to ``learning_rate * 1e-4`` over all
  in-vocabulary words of all epochs (each window gets the rate of its position).

BlazingText / HogBatch sharing: the ``negative_samples`` negatives of a window serve every
context word of it; in ``batch_skipgram`` one set serves ``batch_size`` windows (``negative_sets``).

Minibatches and repeated rows: all windows of a minibatch are updated from the same parameters
and their updates summed, so a row that many windows touch (a frequent negative, a frequent
context word) would get hundreds of updates at once; summed, they overshoot and training
diverges (seen from 1,024 windows per step on the text8-like corpus). Each slot's update is
therefore scaled by ``min(1, repeat_cap / n)``, ``n`` being how many slots of the step update
that row: a row's summed update weighs at most ``repeat_cap`` windows' worth, while rows touched
fewer times (almost all of them) get plain SGD. (Hogwild threads that overwrite each other's
updates damp such rows in a cruder way.) ``trainer.REPEAT_CAPS`` gives the caps measured per mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import torch

from sagetext.algorithms.blazingtext.word2vec.learning_rate import MIN_ALPHA_FRACTION, Schedule

NEGATIVE_POWER = 0.75


@dataclass(frozen=True)
class Windows:
    """A minibatch of ``P`` windows; ``W = 2 * window_size`` context slots, ``K`` negatives.

    ``targets[:, 0]`` is the centre word (label 1), ``targets[:, 1:]`` its negatives (label 0).
    Masks are float32 so that they multiply gradients directly; a masked slot holds some valid
    word id and contributes nothing.
    """

    context: torch.Tensor  # (P, W) int64
    context_mask: torch.Tensor  # (P, W) float32
    targets: torch.Tensor  # (P, 1 + K) int64
    target_mask: torch.Tensor  # (P, 1 + K) float32
    lr: torch.Tensor  # (P,) float32
    context_scale: torch.Tensor  # (P, W) float32: factor on the update of the context word's input row
    target_scale: torch.Tensor  # (P, 1 + K) float32: factor on the update of the target's output row

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def rows(self, first: int, last: int) -> "Windows":
        """Windows ``first..last-1`` (views)."""
        return Windows(*(getattr(self, f.name)[first:last] for f in fields(self)))


class Sampler:
    """Subsampling and negative draws for one worker, from its own seeded generator.

    ``begin_epoch`` reseeds it from (``seed``, epoch): an epoch's windows depend on nothing
    before it, so a job resumed from a checkpoint draws the very windows of the first run.
    """

    def __init__(self, counts: np.ndarray, sampling_threshold: float, device: torch.device,
                 seed: int | tuple[int, ...]) -> None:
        self.keep_probability = torch.as_tensor(keep_probabilities(counts, sampling_threshold), dtype=torch.float32,
                                                device=device)
        cumulative = np.cumsum(counts.astype(np.float64) ** NEGATIVE_POWER)
        self.cumulative = torch.as_tensor(cumulative / cumulative[-1], dtype=torch.float64, device=device)
        self.seed = (seed,) if isinstance(seed, int) else tuple(seed)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(_mixed(self.seed))
        self.device = device

    def begin_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(_mixed((*self.seed, epoch)))

    def subsample(self, ids: torch.Tensor) -> torch.Tensor:
        """Positions (int64) of the tokens kept this epoch."""
        draw = torch.rand(ids.shape, generator=self.generator, device=self.device)
        return torch.nonzero(draw < self.keep_probability[ids]).squeeze(1)

    def negatives(self, rows: int, k: int) -> torch.Tensor:
        draw = torch.rand((rows, k), generator=self.generator, device=self.device, dtype=torch.float64)
        found = torch.searchsorted(self.cumulative, draw, right=True)
        return found.clamp_(max=len(self.cumulative) - 1)

    def shrunk_windows(self, rows: int, window: int) -> torch.Tensor:
        return torch.randint(1, window + 1, (rows,), generator=self.generator, device=self.device)


def keep_probabilities(counts: np.ndarray, sampling_threshold: float) -> np.ndarray:
    """word2vec.c's subsampling: the probability (float64, at most 1) of keeping a token of each word."""
    counts64 = counts.astype(np.float64)
    threshold = sampling_threshold * counts64.sum()
    return np.minimum((np.sqrt(counts64 / threshold) + 1) * threshold / counts64, 1.0)


def _mixed(seed: tuple[int, ...]) -> int:
    """One 63-bit generator seed from several integers (well mixed, unlike a sum)."""
    return int(np.random.SeedSequence([abs(x) for x in seed]).generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class WindowSettings:
    window: int
    negatives: int
    windows_per_negative_set: int  # 1, or batch_size in batch_skipgram
    learning_rate: float
    epochs: int
    repeat_cap: float  # a row's updates in one step weigh at most this many windows' worth
    n_words: int
    schedule: Schedule | None = None  # the rate line in force; None: learning_rate down to 0 at epochs

    @property
    def rate_line(self) -> Schedule:
        return self.schedule or Schedule(self.learning_rate, 0.0, 0.0, self.epochs)

    def rates(self, epochs_done: torch.Tensor) -> torch.Tensor:
        """The rate on ``rate_line``, floored at ``learning_rate * 1e-4``."""
        return torch.clamp(self.rate_line.at(epochs_done), min=self.learning_rate * MIN_ALPHA_FRACTION)  # type: ignore[arg-type,call-overload]


MAX_STEPS_PER_CHUNK = 64
CHUNK_COUNT_CELLS = 1 << 24  # steps x vocabulary counters for the repeat scale (64 MiB)


def epoch_windows(ids: torch.Tensor, sentences: torch.Tensor, sampler: Sampler, settings: WindowSettings,
                  epoch: int, windows_per_step: int) -> Iterator[tuple[Windows, float]]:
    """One epoch over a worker's ids: steps of ``windows_per_step`` windows, each with the
    fraction of the epoch done once it is trained (for progress and throughput).

    Windows are built for up to 64 steps at once (few, large device operations; a step is then
    only slices), with each step's repeat scale counted over that step alone.
    """
    kept = sampler.subsample(ids)
    kept_ids, kept_sentences = ids[kept], sentences[kept]
    total = len(kept)
    steps_per_chunk = max(1, min(MAX_STEPS_PER_CHUNK, CHUNK_COUNT_CELLS // max(settings.n_words, 1)))
    chunk = windows_per_step * steps_per_chunk
    for start in range(0, total, chunk):
        centre = torch.arange(start, min(start + chunk, total), device=ids.device)
        lr = settings.rates(epoch + kept[centre].to(torch.float32) / len(ids))
        windows = _windows(centre, kept_ids, kept_sentences, lr, sampler, settings, windows_per_step)
        for first in range(0, len(centre), windows_per_step):
            last = min(first + windows_per_step, len(centre))
            yield windows.rows(first, last), (start + last) / total


def _windows(centre: torch.Tensor, ids: torch.Tensor, sentences: torch.Tensor, lr: torch.Tensor,
             sampler: Sampler, settings: WindowSettings, windows_per_step: int) -> Windows:
    rows, device = len(centre), centre.device
    offsets = torch.cat([torch.arange(-settings.window, 0), torch.arange(1, settings.window + 1)]).to(device)
    shrunk = sampler.shrunk_windows(rows, settings.window)
    position = centre[:, None] + offsets[None, :]
    inside = (position >= 0) & (position < len(ids)) & (offsets.abs()[None, :] <= shrunk[:, None])
    position = position.clamp(0, len(ids) - 1)
    inside &= sentences[position] == sentences[centre][:, None]
    centre_ids = ids[centre].to(torch.int64)
    group, sets = negative_sets(rows, settings.windows_per_negative_set, device)  # the set of each window
    negatives = sampler.negatives(sets, settings.negatives)[group]
    targets = torch.cat([centre_ids[:, None], negatives], dim=1)
    target_mask = torch.cat([torch.ones_like(centre_ids[:, None], dtype=torch.bool),
                             negatives != centre_ids[:, None]], dim=1).to(torch.float32)
    context, context_mask = ids[position].to(torch.int64), inside.to(torch.float32)
    step = torch.arange(rows, device=device)[:, None] // windows_per_step
    steps = -(-rows // windows_per_step)
    return Windows(context, context_mask, targets, target_mask, lr,
                   repeat_scale(step, steps, context, context_mask, settings),
                   repeat_scale(step, steps, targets, target_mask, settings))


def negative_sets(rows: int, per_set: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """The set of negatives each of ``rows`` windows takes, and how many sets there are: every
    set serves ``per_set`` windows that stand ``per_set`` apart (window r takes set
    (r // per_set**2) * per_set + r % per_set), not ``per_set`` neighbours, whose context words
    are mostly the same: pushing the same negatives away from the same words per_set times over
    halved batch_skipgram's analogies."""
    r = torch.arange(rows, device=device)
    blocks = -(-rows // (per_set * per_set))
    return (r // (per_set * per_set)) * per_set + r % per_set, blocks * per_set


def repeat_scale(step: torch.Tensor, steps: int, words: torch.Tensor, mask: torch.Tensor,
                 settings: WindowSettings) -> torch.Tensor:
    """``min(1, repeat_cap / n)`` per slot, ``n`` = the slots of its step that update the same row."""
    cell = (step * settings.n_words + words).reshape(-1)
    counts = torch.zeros(steps * settings.n_words, device=words.device).index_add_(0, cell, mask.reshape(-1))
    return (settings.repeat_cap / counts[cell].reshape(words.shape).clamp(min=1)).clamp(max=1)
