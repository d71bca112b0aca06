"""Dropout whose mask costs a quarter of torch's on CPU.

torch's CPU dropout draws one Bernoulli sample, one generator call, per element; on a small
Transformer that is about a sixth of a training update. Here one 64-bit draw (``random_`` on an
int64 tensor, uniform on [0, 2**63)) gives four mask elements: each 16-bit quarter's low 15 bits,
read as an integer in [0, 32768), keeps its element when it is at least ``round(p * 32768)``. So
an element is dropped with probability p to within 1 / 65536, independently of the others, and
kept ones are scaled by 1 / (1 - p) as torch's are. On other devices torch's own dropout (fused
and fast on a GPU) runs unchanged. The draws come from torch's default generator, so
``torch.manual_seed`` makes them repeatable.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LEVELS = 1 << 15  # the values a 15-bit slice of a draw takes


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A bool tensor of ``shape``, each element True with probability 1 - p (to 1 / 65536)."""
    count = shape.numel()
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_()
    slices = words.view(torch.int16)[:count]
    return ((slices & (LEVELS - 1)) >= round(p * LEVELS)).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with the mask drawn as above on CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    scale = keep_mask(x.shape, p).to(x.dtype)
    scale.mul_(1.0 / (1.0 - p))  # one tensor of 0 and 1 / (1 - p): one product forward, one back
    return x * scale


class Dropout(nn.Module):
    """``nn.Dropout`` with the mask above (no parameters, so model files are unchanged)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1]")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
