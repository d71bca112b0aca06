"""What a training worker needs to cooperate with the others.

A worker started by ``sagetext.distributed.launch`` finds RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT in its environment (torch's elastic launcher sets them) and joins
the process group: NCCL when it drives a GPU, gloo on CPU. A single process needs no group and
every helper here degrades to a no-op, without importing torch: a one-worker CPU job that
does not otherwise need torch (BlazingText supervised with the compiled SGD) never loads it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

STOP_CHECK_STEPS = 8  # with several workers, how often they vote on a stop request


@dataclass(frozen=True)
class Runtime:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver may be loaded (its /proc entry, its device files, or WSL's GPU
    device): without one CUDA cannot be available, and there is no need to import torch to ask."""
    return (Path("/proc/driver/nvidia").exists() or Path("/dev/dxg").exists()
            or any(Path("/dev").glob("nvidia[0-9]*")))


def choose_device(forced: str | None = None, local_rank: int = 0) -> str:
    """CUDA when present (one GPU per local rank), else CPU; ``forced`` ("cpu" or "cuda", the
    ``device`` setting) decides instead."""
    if forced == "cpu" or (forced is None and not nvidia_driver_present()):
        return "cpu"
    import torch

    if forced is None and not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}"


def init(forced_device: str | None = None) -> Runtime:
    """Join the process group described by the environment (if any) and return this worker's place."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(forced_device, local_rank)
    if world > 1 and not _dist().is_initialized():
        import torch

        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        _dist().init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Runtime(rank, world, local_rank, device)


def shutdown() -> None:
    if "torch.distributed" in sys.modules and _dist().is_initialized():
        _dist().destroy_process_group()


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def active() -> bool:
    """Whether this process is one of several workers (a process group can exist only once
    torch.distributed was imported, so a single worker never imports it here)."""
    if "torch.distributed" not in sys.modules:
        return False
    dist = _dist()
    return dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over workers in place (no-op alone)."""
    if active():
        dist = _dist()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Elementwise maximum of ``tensor`` over workers in place (no-op alone)."""
    if active():
        dist = _dist()
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def stop_agreed(flag: threading.Event, step: int, device: str, every: int = STOP_CHECK_STEPS) -> bool:
    """Whether to stop now on a stop request (SIGTERM). Alone: as soon as it is set. With
    several workers, every ``every`` steps all of them vote (a collective each calls at the
    same step) and stop together, so that none is left waiting in a collective the others
    have left."""
    if not active():
        return flag.is_set()
    if step % every:
        return False
    import torch

    vote = torch.tensor([1.0 if flag.is_set() else 0.0], device=device)
    return bool(all_reduce_sum(vote).item() > 0)


def average_(tensors: Iterable[torch.Tensor]) -> None:
    """Replace each tensor by its mean over workers, in place (model averaging)."""
    if not active():
        return
    dist = _dist()
    world = dist.get_world_size()
    for tensor in tensors:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(world)


def all_gather_object(obj: Any) -> list[Any]:
    """Every worker's ``obj`` in rank order (a list of one alone). Objects are our own, never user bytes."""
    if not active():
        return [obj]
    dist = _dist()
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
