"""The fused SGNS step (Triton) for cbow, skipgram and batch_skipgram without subwords.

One program per window does the whole of ``step.py``'s update for it in one pass: it gathers
its context rows and its 1 + K target rows (centre word, shared negatives) once, computes the
scores, sigmoids and gradients in fp32 registers, and adds the updates back with
``tl.atomic_add``, so no (P, W, D) intermediate ever reaches device memory. Programs run
concurrently and read rows that others are updating (Hogwild, as BlazingText's CUDA kernels
do). Given separate read and write buffers (``read_*`` copies of the parameters) the kernel
computes exactly the reference step, which is how ``tests/unit/test_word2vec_torch.py`` checks
it, on CUDA or, without a GPU, in Triton's interpreter (``TRITON_INTERPRET=1``).

Importable without Triton: ``fused_update`` then returns None and the trainer uses the
reference. Subwords always use the reference (bags of rows are not fused yet).

Compiled here for sm_90 without a GPU (Triton 3.6, ``triton.compile`` with a ``GPUTarget``;
dim 100, window 5, 5 negatives, 4 warps): skip-gram 156 registers a thread, cbow 72, no
spills; the updates are ``REDG.E.ADD.F32`` (relaxed atomics, no returned value). Not yet run
on a GPU: timings and the block shapes are for a GPU session to settle (bench/word2vec_gpu.py).
"""

from __future__ import annotations

import torch

from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import Windows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.input_rows import InputRows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.step import Update

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU images and CI do not install triton
    triton = None

NUM_WARPS = 4

if triton is not None:

    @triton.jit
    def _sgns_kernel(in_read, out_read, in_write, out_write, context, context_mask, context_scale, targets,
                     target_mask, target_scale, lr, dim, n_context, CBOW: tl.constexpr, N_TARGETS: tl.constexpr,
                     BLOCK_W: tl.constexpr, BLOCK_D: tl.constexpr):
        window = tl.program_id(0).to(tl.int64)
        d = tl.arange(0, BLOCK_D)
        d_ok = d < dim
        w = tl.arange(0, BLOCK_W)
        w_ok = w < n_context
        words = tl.load(context + window * n_context + w, mask=w_ok, other=0)
        word_mask = tl.load(context_mask + window * n_context + w, mask=w_ok, other=0.0)
        rows_ok = (word_mask > 0)[:, None] & d_ok[None, :]
        h = tl.load(in_read + words[:, None] * dim + d[None, :], mask=rows_ok, other=0.0)  # (BLOCK_W, BLOCK_D)
        word_scale = tl.load(context_scale + window * n_context + w, mask=w_ok, other=0.0)
        rate = tl.load(lr + window)
        count = tl.sum(word_mask, axis=0)
        mean = tl.sum(h, axis=0) / tl.maximum(count, 1.0)  # cbow's hidden vector
        has_context = tl.where(count > 0, 1.0, 0.0)
        grad_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
        grad_h = tl.zeros([BLOCK_W, BLOCK_D], dtype=tl.float32)
        for t in tl.static_range(N_TARGETS):
            target = tl.load(targets + window * N_TARGETS + t)
            weight = tl.load(target_mask + window * N_TARGETS + t) * rate
            out_scale = tl.load(target_scale + window * N_TARGETS + t)
            if t == 0:
                label = 1.0
            else:
                label = 0.0
            out = tl.load(out_read + target * dim + d, mask=d_ok, other=0.0)
            if CBOW:
                g = (label - tl.sigmoid(tl.sum(mean * out, axis=0))) * weight * has_context
                grad_mean += g * out
                tl.atomic_add(out_write + target * dim + d, g * out_scale * mean, mask=d_ok, sem="relaxed")
            else:
                g_w = (label - tl.sigmoid(tl.sum(h * out[None, :], axis=1))) * weight * word_mask  # (BLOCK_W,)
                grad_h += g_w[:, None] * out[None, :]
                tl.atomic_add(out_write + target * dim + d, tl.sum(g_w[:, None] * h, axis=0) * out_scale, mask=d_ok,
                              sem="relaxed")
        if CBOW:
            grad_h += grad_mean[None, :]
        tl.atomic_add(in_write + words[:, None] * dim + d[None, :], grad_h * word_scale[:, None], mask=rows_ok,
                      sem="relaxed")


def available(device: torch.device) -> bool:
    """Triton is importable and ``device`` is a CUDA GPU (the CPU interpreter is for tests only)."""
    return triton is not None and device.type == "cuda"


def sgns_step(read_in: torch.Tensor, read_out: torch.Tensor, write_in: torch.Tensor, write_out: torch.Tensor,
              windows: Windows, cbow: bool) -> None:
    """One fused step; ``read_*`` and ``write_*`` are the same tensors in training."""
    for matrix in (read_in, read_out, write_in, write_out):
        if matrix.dtype != torch.float32 or not matrix.is_contiguous():
            raise ValueError("the fused step needs contiguous float32 matrices")
    rows, n_context = windows.context.shape
    dim = read_in.shape[1]
    if rows == 0:
        return
    _sgns_kernel[(rows,)](read_in, read_out, write_in, write_out, windows.context.contiguous(),
                          windows.context_mask.contiguous(), windows.context_scale.contiguous(),
                          windows.targets.contiguous(), windows.target_mask.contiguous(),
                          windows.target_scale.contiguous(), windows.lr.contiguous(), dim, n_context,
                          CBOW=cbow, N_TARGETS=windows.targets.shape[1],
                          BLOCK_W=triton.next_power_of_2(n_context), BLOCK_D=triton.next_power_of_2(dim),
                          num_warps=NUM_WARPS)


def fused_update(mode: str, device: torch.device) -> Update | None:
    """The fused step for ``mode`` on ``device``, or None where it cannot run (then use the reference)."""
    if not available(device):
        return None
    cbow = mode == "cbow"

    def update(inputs: InputRows, output: torch.Tensor, windows: Windows) -> None:
        if inputs.subwords:
            raise ValueError("the fused step has no subwords; use step.reference_update")
        sgns_step(inputs.weight, output, inputs.weight, output, windows, cbow)

    return update
