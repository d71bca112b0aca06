"""Model combination across two gloo workers (two processes on loopback): only the rows some
worker changed are exchanged, and the result is the common model plus every worker's update."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from sagetext.algorithms.blazingtext.word2vec.model_sync import changed_rows

WORKER = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from sagetext.algorithms.blazingtext.word2vec.model_sync import ModelSync
    rank, store, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    common = torch.load(out + ".start")
    tensors = [t.clone() for t in common]
    sync = ModelSync(tensors, 2)
    for step in range(3):
        moves = torch.load(f"{out}.moves{rank}.{step}")
        for tensor, move in zip(tensors, moves):
            tensor.add_(move)
        sync()
    torch.save({"tensors": tensors, "rows_sent": sync.rows_sent}, f"{out}.result{rank}")
    dist.barrier()
    dist.destroy_process_group()  # as runtime.shutdown does: gloo's threads left running abort the exit
""")


def sparse_moves(generator: torch.Generator, shape: tuple[int, ...], rows: list[int]) -> torch.Tensor:
    move = torch.zeros(shape)
    move[torch.tensor(rows, dtype=torch.int64)] = torch.randn((len(rows), *shape[1:]), generator=generator)
    return move


def test_two_workers_sum_their_updates_of_the_rows_they_changed(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(3)
    shapes = [(50, 8), (30, 8)]
    start = [torch.randn(shape, generator=generator) for shape in shapes]
    out = str(tmp_path / "run")
    torch.save(start, out + ".start")
    # step by step: worker 0 changes rows {0..4}, worker 1 rows {3..9} (3 and 4 by both), then
    # other rows; a step where neither changes a row of the second matrix
    rows = [([0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 3, 4]), ([20, 21], [25]), ([], [])]
    expected = [t.clone() for t in start]
    for step, (rows0, rows1) in enumerate(rows):
        for rank, changed in enumerate((rows0, rows1)):
            moves = [sparse_moves(generator, shape, changed if i == 0 else changed[:1]) for i, shape in
                     enumerate(shapes)]
            torch.save(moves, f"{out}.moves{rank}.{step}")
            for e, move in zip(expected, moves):
                e.add_(move)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(rank), str(tmp_path / "store"), out])
               for rank in (0, 1)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    results = [torch.load(f"{out}.result{rank}") for rank in (0, 1)]
    for result in results:
        for tensor, e in zip(result["tensors"], expected):
            torch.testing.assert_close(tensor, e, rtol=1e-6, atol=1e-6)
    # rows changed by someone: 10 + 3 of the first matrix, 2 + 2 of the second; not all 80 thrice
    assert results[0]["rows_sent"] == 10 + 3 + 2 + 2


def test_the_compiled_row_comparison_flags_the_rows_torch_finds_changed() -> None:
    generator = torch.Generator().manual_seed(5)
    base = torch.randn(1000, 37, generator=generator)
    tensor = base.clone()
    changed = torch.randperm(1000, generator=generator)[:150]
    tensor[changed, torch.randint(0, 37, (150,), generator=generator)] += 1e-3  # one number of each row
    flags = changed_rows(tensor, base)
    assert flags.dtype == torch.uint8
    assert torch.equal(flags, (tensor != base).any(dim=1).to(torch.uint8)) and int(flags.sum()) == 150
