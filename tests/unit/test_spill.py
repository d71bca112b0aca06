"""Spilled arrays (data/spill.py) and the planned batches kept in them (blazingtext/batches.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sagetext.algorithms.blazingtext.supervised.batches import LINES_PER_BATCH, PlannedBatches
from sagetext.algorithms.blazingtext.supervised.encoding import Encoded
from sagetext.data.spill import Spill

FIELDS = (("a", np.int32), ("b", np.float64), ("c", np.bool_), ("d", np.int64))


def random_record(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"a": rng.integers(-2**31, 2**31, rng.integers(0, 9), dtype=np.int32),
            "b": rng.standard_normal(rng.integers(0, 5)),
            "c": rng.random(rng.integers(0, 13)) < 0.5,
            "d": rng.integers(-2**62, 2**62, rng.integers(0, 3), dtype=np.int64)}


def test_records_come_back_equal_and_aligned_whatever_the_range() -> None:
    rng = np.random.default_rng(0)
    written = [random_record(rng) for _ in range(50)]
    spill = Spill(FIELDS)
    for record in written:
        spill.append(**record)
    assert len(spill) == 50
    for first, last in [(0, 50), (0, 1), (49, 50), (7, 31), (10, 10)]:
        records = spill.read(first, last)
        assert len(records) == last - first
        for got, want in zip(records, written[first:last]):
            for name, dtype in FIELDS:
                assert got[name].dtype == np.dtype(dtype)
                assert got[name].ctypes.data % 8 == 0
                np.testing.assert_array_equal(got[name], want[name])
                got[name][...] = 0  # writable, and a copy: the file is untouched
    np.testing.assert_array_equal(spill.read(3, 4)[0]["a"], written[3]["a"])
    assert [len(r["c"]) for r in spill.records(per_read=7)] == [len(r["c"]) for r in written]
    spill.close()


def test_a_record_needs_every_field() -> None:
    spill = Spill(FIELDS)
    with pytest.raises(KeyError):
        spill.append(a=np.zeros(1, np.int32))
    spill.close()


def lines(rng: np.random.Generator, count: int, rows: int) -> Encoded:
    lengths = rng.integers(1, 30, count)
    label_counts = rng.integers(1, 3, count)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    label_offsets = np.concatenate([[0], np.cumsum(label_counts)])
    return Encoded(rng.integers(0, rows, offsets[-1]).astype(np.int32), offsets,
                   rng.integers(0, 4, label_offsets[-1]).astype(np.int32), label_offsets, lengths + 2)


def test_batches_do_not_depend_on_how_the_lines_arrive_in_blocks() -> None:
    """Lines left over at the end of a block join the next one: the same batches either way."""
    rng = np.random.default_rng(1)
    data = lines(rng, 10 * LINES_PER_BATCH + 5, rows=300)
    whole = PlannedBatches(300)
    whole.add(data)
    whole.finish()
    pieces = PlannedBatches(300)
    cuts = [0, 3, 3, 40, 41, 100, data.num_lines]
    for a, b in zip(cuts, cuts[1:]):
        pieces.add(data.lines(a, b))
    pieces.finish()
    assert len(whole) == len(pieces) == 11
    assert whole.num_lines == pieces.num_lines == data.num_lines
    assert whole.ntokens == pieces.ntokens == int(data.ntokens.sum())
    for x, y in zip(whole.read(0, 11, "cpu"), pieces.read(0, 11, "cpu")):
        for name in ("rows", "local_inputs", "line_offsets", "lines_by_row", "row_offsets", "line_weights", "labels"):
            assert getattr(x, name).tolist() == getattr(y, name).tolist(), name
    # The plans give back the lines they were made from (rows in training order).
    back = Encoded.concatenate(list(pieces.lines(per_read=4)))
    assert pieces.row_order is not None
    np.testing.assert_array_equal(pieces.row_order[back.inputs], data.inputs)
    np.testing.assert_array_equal(back.offsets, data.offsets)
    np.testing.assert_array_equal(back.labels, data.labels)
    np.testing.assert_array_equal(back.label_offsets, data.label_offsets)


def test_a_batch_plan_maps_each_input_to_its_row() -> None:
    rng = np.random.default_rng(2)
    data = lines(rng, LINES_PER_BATCH, rows=50)
    planned = PlannedBatches(50)
    planned.add(data)
    planned.finish()
    (batch,) = planned.read(0, 1, "cpu")
    rows, local = batch.rows.numpy(), batch.local_inputs.numpy()
    assert sorted(rows.tolist()) == list(range(len(rows)))  # distinct, numbered in order of first use
    assert planned.row_order is not None
    np.testing.assert_array_equal(planned.row_order[rows[local]], data.inputs)
    assert sorted(planned.row_order.tolist()) == list(range(50))  # the rows never used come after
    # Grouped by row: each row's group lists the lines that use it, once per use.
    ends = np.append(batch.row_offsets.numpy()[1:], len(local))
    line_of_input = np.repeat(np.arange(data.num_lines), np.diff(data.offsets))
    for r, (a, b) in enumerate(zip(batch.row_offsets.numpy(), ends)):
        assert sorted(batch.lines_by_row.numpy()[a:b].tolist()) == sorted(line_of_input[local == r].tolist())
    np.testing.assert_allclose(batch.line_weights.numpy(), 1.0 / np.diff(data.offsets)[batch.lines_by_row.numpy()])
    assert batch.ntokens == int(data.ntokens.sum())
    # One label per line for softmax: the only one, or one of the line's labels.
    targets = batch.targets((0, 0, 0)).numpy()
    for j, target in enumerate(targets):
        assert target in data.labels[data.label_offsets[j]:data.label_offsets[j + 1]]


def test_rows_are_numbered_by_first_use_across_batches_unless_workers_share_the_order() -> None:
    rng = np.random.default_rng(4)
    data = lines(rng, 3 * LINES_PER_BATCH, rows=1000)
    planned = PlannedBatches(1000)
    planned.add(data)
    planned.finish()
    seen: set[int] = set()
    for batch in planned.read(0, 3, "cpu"):
        rows = batch.rows.numpy()
        assert planned.row_order is not None
        inputs = set(planned.row_order[rows].tolist())
        new = sorted(r for r in rows.tolist() if planned.row_order[r] not in seen)
        assert new == list(range(len(seen), len(seen) + len(new)))  # a batch's new rows side by side
        seen |= inputs
    shared = PlannedBatches(1000, renumber=False)
    shared.add(data)
    shared.finish()
    assert shared.row_order is None
    (batch, *_) = shared.read(0, 3, "cpu")
    np.testing.assert_array_equal(batch.rows.numpy()[batch.local_inputs.numpy()],
                                  data.inputs[:data.offsets[LINES_PER_BATCH]])


def test_take_reads_any_records_in_the_order_asked() -> None:
    rng = np.random.default_rng(3)
    written = [random_record(rng) for _ in range(3000)]  # several buffered writes
    spill = Spill(FIELDS)
    for record in written:
        spill.append(**record)
    order = rng.permutation(3000)[:500].tolist() + [5, 5]
    for index, got in zip(order, spill.take(order)):
        for name, _ in FIELDS:
            np.testing.assert_array_equal(got[name], written[index][name])
    spill.close()
