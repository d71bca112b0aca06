"""Mini-batches of training lines, planned once and kept on disk, read back every epoch.

A batch is ``lines_per_step`` consecutive trainable lines. Planning works out, once, what a
step needs besides the weights: the batch's distinct input rows, each input's index among
them, the lines grouped by row (to scatter the input gradient), and the labels. The plans
go to a ``Spill`` (a temporary file), not to memory, so a channel of any size trains in the
same memory; each epoch reads them back a segment at a time (from the page cache when memory
allows) as zero-copy tensors.

Planning also renumbers the input rows in the order training first uses them (``row_order``):
the rows a batch meets for the first time (mostly its rare words and hashed word n-grams)
then lie side by side in the weight matrix instead of scattered over millions of buckets, so
a step's gather and scatter read whole cache lines (IMDB: SGD about 1.4x faster). The model
trains in this order and is put back in fastText's order before it is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sagetext.algorithms.blazingtext.supervised.encoding import Encoded
from sagetext.data.spill import Spill

if TYPE_CHECKING:  # torch is imported by the PyTorch path only (``read``); the compiled path never needs it
    import torch

# Lines per SGD step. A step applies the sum of its lines' updates, like that many steps of
# fastText's per-line SGD without the feedback between them: 16 keeps fastText's accuracy
# (IMDB: 0.895 at 16, 0.891 at 32, 0.883 at 64); on short lines 64 already diverges at lr 0.5.
LINES_PER_BATCH = 16


def lines_per_step(world_size: int) -> int:
    """Each of ``world_size`` workers steps on LINES_PER_BATCH / world_size lines, so the lines
    of one step of all workers together stay LINES_PER_BATCH. Full IMDB, 2 workers (4 model
    averagings an epoch; 1 worker: 0.895): 16 lines each 0.887, 8 lines each 0.892, 4 each 0.893
    (but twice one worker's steps); averaging 16 or 64 times an epoch instead of 4: no change."""
    return max(1, LINES_PER_BATCH // world_size)

_FIELDS = (("rows", np.int32), ("row_offsets", np.int32), ("local_inputs", np.int32), ("lines_by_row", np.int32),
           ("line_weights", np.float32), ("line_offsets", np.int32), ("labels", np.int64),
           ("label_lines", np.int64), ("label_offsets", np.int64), ("ntokens", np.int64))


@dataclass(frozen=True)
class Batch:
    """One step's lines: the distinct rows they use and how lines map onto them, and labels."""

    index: int  # position in the epoch
    rows: torch.Tensor  # int64 distinct training rows used by the batch (see ``row_order``)
    local_inputs: torch.Tensor  # int32 index into ``rows`` for each input of each line
    line_offsets: torch.Tensor  # int32 start of each line in ``local_inputs``
    lines_by_row: torch.Tensor  # int32 line (within the batch) of each input, grouped by row
    row_offsets: torch.Tensor  # int32 start of each row's group in ``lines_by_row``
    line_weights: torch.Tensor  # float32 1/len(line) for each entry of ``lines_by_row``
    labels: torch.Tensor  # int64 every label of every line, line by line
    label_lines: torch.Tensor  # int64 line (within the batch) of each label
    label_offsets: np.ndarray  # int64 start of each line's labels, num_lines + 1
    ntokens: int  # tokens of these lines as fastText counts them (for the learning rate)

    @property
    def num_lines(self) -> int:
        return len(self.label_offsets) - 1

    def targets(self, seed: tuple[int, ...]) -> torch.Tensor:
        """One label per line: the only one, or (several labels) one at random, as fastText does."""
        import torch

        if len(self.labels) == self.num_lines:  # one label each (every line has at least one)
            return self.labels
        first = self.label_offsets[:-1]
        counts = np.diff(self.label_offsets)
        if (counts > 1).any():
            rng = np.random.default_rng([*seed, self.index])
            first = first + np.floor(rng.random(len(counts)) * counts).astype(np.int64)
        return self.labels[torch.from_numpy(first).to(self.labels.device)]

    def multi_hot(self, nlabels: int) -> torch.Tensor:
        """Every label of every line as a (lines, labels) 0/1 matrix, for one-vs-all."""
        import torch

        hot = torch.zeros(self.num_lines, nlabels, device=self.labels.device)
        hot[self.label_lines, self.labels] = 1.0
        return hot


@dataclass(frozen=True)
class LineBatch:
    """A planned batch as numpy arrays, for the compiled per-line SGD (line ``j``'s inputs are
    ``rows[local_inputs[line_offsets[j]:line_offsets[j + 1]]]``, the last line's run to the end)."""

    index: int
    rows: np.ndarray  # int32 distinct training rows
    local_inputs: np.ndarray  # int32
    line_offsets: np.ndarray  # int32, num_lines
    labels: np.ndarray  # int64
    label_offsets: np.ndarray  # int64, num_lines + 1
    ntokens: int


class PlannedBatches:
    """The batches of one worker's training lines, planned into a spill file (see module doc)."""

    def __init__(self, input_rows: int, renumber: bool = True, lines_per_batch: int = LINES_PER_BATCH) -> None:
        self._spill = Spill(_FIELDS)
        self.lines_per_batch = lines_per_batch
        self._last_seen = np.empty(input_rows, dtype=np.int32)
        # Training row of each input row, -1 until first used (identity when not renumbering).
        self._number = (np.full(input_rows, -1, dtype=np.int32) if renumber
                        else np.arange(input_rows, dtype=np.int32))
        self._renumber = renumber
        self._numbered = 0
        self._pending: Encoded | None = None
        self.num_lines = 0
        self.ntokens = 0
        self.row_order: np.ndarray | None = None  # input row of each training row (finish); None: the same

    def __len__(self) -> int:
        return len(self._spill)

    @property
    def nbytes(self) -> int:
        return self._spill.nbytes

    def add(self, lines: Encoded) -> None:
        """Plan the full batches of ``lines`` (after any lines left over from the last call)."""
        lines = lines.with_inputs(self._training_rows_first_use(lines.inputs))
        if self._pending is not None:
            lines = Encoded.concatenate([self._pending, lines])
        size = self.lines_per_batch
        full = lines.num_lines - lines.num_lines % size
        for first in range(0, full, size):
            self._plan(lines.lines(first, first + size))
        self._pending = lines.lines(full, lines.num_lines) if full < lines.num_lines else None

    def finish(self) -> "PlannedBatches":
        """Plan the last, shorter batch, and number the rows training never uses after the rest."""
        if self._pending is not None:
            self._plan(self._pending)
            self._pending = None
        if self._renumber and self.row_order is None:
            unused = np.flatnonzero(self._number < 0)
            self._number[unused] = np.arange(self._numbered, self._numbered + len(unused), dtype=np.int32)
            self.row_order = np.empty(len(self._number), dtype=np.int64)
            self.row_order[self._number] = np.arange(len(self._number))
        return self

    def _training_rows_first_use(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as training rows, numbering the rows not met before in order of first use.

        Done a block at a time (one pass of scattered reads over the numbering), so planning
        then works on training rows, which lie close together."""
        if not self._renumber:
            return rows
        numbers = self._number[rows]
        unseen = np.flatnonzero(numbers < 0)
        if len(unseen):
            new = rows[unseen]
            positions = np.arange(len(new), dtype=np.int32)
            self._last_seen[new[::-1]] = positions[::-1]  # the earliest position of each row survives
            first_uses = new[self._last_seen[new] == positions]
            self._number[first_uses] = np.arange(self._numbered, self._numbered + len(first_uses), dtype=np.int32)
            self._numbered += len(first_uses)
            numbers[unseen] = self._number[new]
        return numbers

    def training_rows(self, rows: np.ndarray) -> np.ndarray:
        """Input rows (fastText's numbering) as training rows (after ``finish``)."""
        return self._number[rows]

    def read(self, first: int, last: int, device: str) -> list[Batch]:
        """Batches ``first`` to ``last`` (exclusive) as tensors on ``device``."""
        return [_batch(first + i, record, device) for i, record in enumerate(self._spill.read(first, last))]

    def read_arrays(self, first: int, last: int) -> list[LineBatch]:
        """Batches ``first`` to ``last`` (exclusive) as numpy arrays (views of the spill's pages)."""
        return [LineBatch(first + i, r["rows"], r["local_inputs"], r["line_offsets"], r["labels"], r["label_offsets"],
                          int(r["ntokens"][0])) for i, r in enumerate(self._spill.read(first, last))]

    def lines(self, per_read: int = 256) -> Iterator[Encoded]:
        """The planned lines back as training rows and labels, ``per_read`` batches at a time."""
        for first in range(0, len(self), per_read):
            records = self._spill.read(first, min(first + per_read, len(self)))
            yield _joined(records)

    def close(self) -> None:
        self._spill.close()

    def _plan(self, lines: Encoded) -> None:
        """Plan one batch; ``lines.inputs`` are training rows."""
        ids, lengths = lines.inputs, np.diff(lines.offsets)
        positions = np.arange(len(ids), dtype=np.int32)  # int32 throughout: half the cache misses
        last_seen = self._last_seen
        last_seen[ids] = positions  # one position per distinct row survives
        representative = last_seen[ids]
        is_first = representative == positions
        rank = np.cumsum(is_first, dtype=np.int32) - 1
        local = rank[representative]  # index of each input's row among the distinct rows
        distinct = ids[is_first]
        line = np.repeat(np.arange(lines.num_lines, dtype=np.int32), lengths)
        keys = local.astype(np.uint16) if len(distinct) <= 1 << 16 else local  # 16-bit keys: numpy radix sort
        order = np.argsort(keys, kind="stable")
        per_row = np.bincount(local, minlength=len(distinct))
        row_offsets = np.zeros(len(distinct), dtype=np.int32)
        np.cumsum(per_row[:-1], out=row_offsets[1:])
        label_lines = np.repeat(np.arange(lines.num_lines, dtype=np.int64), np.diff(lines.label_offsets))
        ntokens = int(lines.ntokens.sum())
        by_row = line[order]
        scales = (1.0 / np.maximum(lengths, 1)).astype(np.float32)
        self._spill.append(rows=distinct, row_offsets=row_offsets, local_inputs=local, lines_by_row=by_row,
                           line_weights=scales[by_row], line_offsets=lines.offsets[:-1],
                           labels=lines.labels, label_lines=label_lines, label_offsets=lines.label_offsets,
                           ntokens=np.array([ntokens]))
        self.num_lines += lines.num_lines
        self.ntokens += ntokens


def _joined(records: list[dict[str, np.ndarray]]) -> Encoded:
    """Consecutive batches' lines as one ``Encoded`` (each input's row looked up once, in bulk)."""
    def joined(name: str) -> np.ndarray:
        return np.concatenate([r[name] for r in records])

    def starts(name: str) -> np.ndarray:  # where each batch's values begin in the joined array
        sizes = np.array([len(r[name]) for r in records], dtype=np.int64)
        return np.cumsum(sizes) - sizes

    def per_value(name: str, by: np.ndarray) -> np.ndarray:
        return np.repeat(by, [len(r[name]) for r in records])

    rows, inputs_at, labels_at = joined("rows"), starts("local_inputs"), starts("labels")
    inputs = rows[joined("local_inputs") + per_value("local_inputs", starts("rows"))]
    offsets = np.append(joined("line_offsets") + per_value("line_offsets", inputs_at), len(inputs))
    label_offsets = np.append(np.concatenate([r["label_offsets"][:-1] for r in records])
                              + per_value("line_offsets", labels_at), labels_at[-1] + len(records[-1]["labels"]))
    lines = len(offsets) - 1
    return Encoded(inputs, offsets.astype(np.int64), joined("labels").astype(np.int32), label_offsets,
                   np.zeros(lines, dtype=np.int64))


def _batch(index: int, record: dict[str, np.ndarray], device: str) -> Batch:
    import torch

    def put(name: str) -> torch.Tensor:
        return torch.from_numpy(record[name]).to(device)

    return Batch(index, put("rows").long(), put("local_inputs"), put("line_offsets"), put("lines_by_row"),
                 put("row_offsets"), put("line_weights"), put("labels"), put("label_lines"),
                 record["label_offsets"], int(record["ntokens"][0]))
