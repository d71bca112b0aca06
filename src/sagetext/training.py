"""Run a SageMaker training job: what the ``train`` executable does.

The launcher process reads and checks the whole contract first (hyperparameters, channels,
hosts), so a user's mistake fails at once with a ``ClientError``; then it runs one worker per
GPU (or ``SAGETEXT_CPU_WORKERS`` CPU workers) on this host. A single worker runs in this
process; several are started by ``sagetext.distributed.launch`` and each runs
``python -m sagetext.training``. Every process reports its own failure (first one wins) and
exits non-zero; rank 0 writes the model.

SIGTERM (SageMaker's stop, a spot interruption) and SIGINT (Ctrl-C in ``sagetext train`` or
``docker run``) both ask the training loop to stop at its next step: it saves a checkpoint
when checkpoints are configured and the job exits 128 + the signal's number (143 or 130),
without a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sagetext import algorithms, specs
from sagetext.algorithms.base import Algorithm
from sagetext.contract import channels as channels_config
from sagetext.contract import checkpoints, failure
from sagetext.contract.channels import Channel, read_json
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.cluster import Cluster
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.hyperparameters import Hyperparameters, Spec, parse
from sagetext.contract.metrics import MetricLogger, configure_logging
from sagetext.contract.paths import Paths
from sagetext.distributed import launch, runtime
from sagetext.errors import ClientError

log = logging.getLogger("sagetext.training")  # also when run as __main__ (the workers)

CPU_WORKERS_ENV = "SAGETEXT_CPU_WORKERS"
EXIT_STOPPED = failure.EXIT_STOPPED
EXIT_INTERRUPTED = failure.EXIT_INTERRUPTED


@dataclass(frozen=True)
class Job:
    algorithm: Algorithm
    hyperparameters: Hyperparameters
    channels: Mapping[str, Channel]
    cluster: Cluster
    paths: Paths


def load_job(paths: Paths, env: Mapping[str, str] = os.environ) -> Job:
    """Read and validate everything the contract gives; raise ClientError on the user's mistakes."""
    algorithm = algorithms.get(env.get(algorithms.ALGORITHM_ENV))
    if not paths.hyperparameters_file.exists():
        raw: object = {}
    else:
        raw = read_json(paths.hyperparameters_file)
    if not isinstance(raw, dict):
        raise ClientError("hyperparameters.json must hold a JSON object of name: value strings")
    spec = Spec.load(algorithm.name)
    hp = parse(raw, spec)
    channels = channels_config.load(paths)
    mode = hp.get(spec.mode_key) if spec.mode_key else None
    title = specs.load(algorithm.name)["title"]
    channels_config.check_names(channels, list(specs.channels(algorithm.name, mode)),
                                f"{title} in mode {mode}" if mode else title)
    algorithm.validate(hp, channels)
    return Job(algorithm, hp, channels, Cluster.load(paths), paths)


def workers_per_host(env: Mapping[str, str] = os.environ) -> int:
    """One per GPU when CUDA is used, else SAGETEXT_CPU_WORKERS (default 1)."""
    if runtime.choose_device().startswith("cuda"):
        return torch.cuda.device_count()
    text = env.get(CPU_WORKERS_ENV, "1")
    if not text.isdigit() or int(text) < 1:
        raise ClientError(f"{CPU_WORKERS_ENV}={text!r}: expected a positive integer")
    return int(text)


def main() -> int:
    """The ``train`` entrypoint: exit code 0 on success, 1 on failure, 143 or 130 when stopped
    by SIGTERM or SIGINT."""
    configure_logging()
    paths = Paths.from_env()
    started = time.monotonic()
    stop, previous = _stop_on_signals()
    try:
        return _run_job(paths, started, stop)
    finally:
        _restore_handlers(previous)


def _run_job(paths: Paths, started: float, stop: "StopRequest") -> int:
    try:
        job = load_job(paths)
        log.info("Arguments: train (algorithm %s, hosts %s, current %s)", job.algorithm.name,
                 list(job.cluster.hosts), job.cluster.current_host)
        for name in job.hyperparameters.unused:
            log.warning("Hyperparameter %s is ignored in mode %s", name, job.hyperparameters.get("mode"))
        nproc = workers_per_host()
        if job.cluster.num_hosts * nproc == 1:
            code = run_worker(job, runtime.Runtime(device=runtime.choose_device()), stop)
        elif stop.is_set():  # the signal came before torch's launcher could take it over
            raise launch.WorkersStopped(stop.signum)
        else:
            launch.launch(job.cluster, nproc, launch.worker_command(__name__))
            code = 0
    except launch.WorkersStopped as stopped:
        log.info("Training stopped by %s; the workers saved their checkpoint", signal.Signals(stopped.signum).name)
        return failure.stopped_exit_code(stopped.signum)
    except launch.WorkersFailed as exc:
        if not paths.failure_file.exists():
            failure.write(paths, exc)
        log.error("%s", exc)
        return failure.EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - every failure must reach the failure file
        return _report(paths, exc)
    if code == 0:
        failure.write_success(paths)
        log.info("Training job finished in %.1f s", time.monotonic() - started)
    return code


def worker_main() -> int:
    """Entry of each launched worker process (``python -m sagetext.training``)."""
    configure_logging()
    paths = Paths.from_env()
    stop, _ = _stop_on_signals()
    try:
        job = load_job(paths)
        rt = runtime.init()
        try:
            return run_worker(job, rt, stop)
        finally:
            runtime.shutdown()
    except Exception as exc:  # noqa: BLE001
        return _report(paths, exc)


def run_worker(job: Job, rt: runtime.Runtime, stop: threading.Event | None = None) -> int:
    """Build the context for this worker and train; 143 or 130 if SIGTERM or SIGINT (``stop``) stopped it."""
    torch.manual_seed(job.hyperparameters.get("seed", 0) + rt.rank)
    ctx = TrainingContext(
        hyperparameters=job.hyperparameters,
        channels=job.channels,
        model_dir=job.paths.model_dir,
        output_data_dir=job.paths.output_data_dir,
        checkpoints=Checkpoints(checkpoints.directory(job.paths), job.hyperparameters),
        cluster=job.cluster,
        metrics=MetricLogger(enabled=rt.rank == 0),
        rank=rt.rank,
        world_size=rt.world_size,
        device=rt.device,
        stop_requested=stop if stop is not None else threading.Event(),
    )
    try:
        job.algorithm.train(ctx)
    except TrainingStopped:
        signum = stop.signum if isinstance(stop, StopRequest) else signal.SIGTERM
        log.info("Training stopped by %s%s", signal.Signals(signum).name,
                 "; checkpoint saved" if ctx.checkpoints.enabled else "")
        return failure.stopped_exit_code(signum)
    return 0


class StopRequest(threading.Event):
    """Set by SIGTERM or SIGINT; the training loop polls it between steps. ``signum`` is the
    first signal that arrived (its exit code is 128 + its number)."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int = signal.SIGTERM

    def request(self, signum: int, _frame: object = None) -> None:
        if not self.is_set():
            self.signum = signum
            self.set()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_on_signals() -> tuple[StopRequest, dict[int, object]]:
    """Turn SIGTERM and SIGINT into a flag that the training loop polls between steps (main
    thread only: elsewhere nothing can be installed); returns the flag and the handlers replaced."""
    flag = StopRequest()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, flag.request)
    return flag, previous


def _restore_handlers(previous: Mapping[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]


def _report(paths: Paths, exc: Exception) -> int:
    text = failure.write(paths, exc)
    if isinstance(exc, ClientError):
        log.error("%s", text)
    else:
        log.exception("Training failed with an internal error")
    return failure.EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(worker_main())
