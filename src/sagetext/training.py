"""Run a SageMaker training job: what the ``train`` executable does.

The launcher process reads and checks the whole contract first (settings from the
environment, hyperparameters, channels, hosts), so a user's mistake fails at once with a
``ClientError``; then it runs one worker per GPU (or ``cpu_workers`` CPU workers) on this
host. A single worker runs in this process; several are started by
``sagetext.distributed.launch`` and each runs ``python -m sagetext.training ROOT SETTINGS``
with the launcher's contract root and settings. Every process reports its own failure (first
one wins) and exits non-zero; rank 0 writes the model.

SIGTERM (SageMaker's stop, a spot interruption) and SIGINT (Ctrl-C in ``sagetext train`` or
``docker run``) both ask the training loop to stop at its next step: it saves a checkpoint
when checkpoints are configured and the job exits 128 + the signal's number (143 or 130),
without a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sagetext import __version__, algorithms, specs
from sagetext.algorithms.base import Algorithm
from sagetext.contract import channels as channels_config
from sagetext.contract import checkpoints, failure, tensorboard
from sagetext.contract.artifacts import write_bytes_atomic
from sagetext.contract.channels import Channel, read_json
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.cluster import Cluster
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.hyperparameters import Hyperparameters, Spec, parse
from sagetext.contract.metrics import MetricLogger, configure_logging
from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger("sagetext.training")  # also when run as __main__ (the workers)

METRICS_FILE = "metrics.json"  # the final value of each metric line, beside the model
EXIT_STOPPED = failure.EXIT_STOPPED
EXIT_INTERRUPTED = failure.EXIT_INTERRUPTED


@dataclass(frozen=True)
class Job:
    algorithm: Algorithm
    hyperparameters: Hyperparameters
    channels: Mapping[str, Channel]
    cluster: Cluster
    paths: Paths
    settings: Settings


def load_job(paths: Paths, settings: Settings) -> Job:
    """Read and validate everything the contract gives; raise ClientError on the user's mistakes."""
    algorithm = algorithms.get(settings.algorithm)
    if not paths.hyperparameters_file.exists():
        raw: object = {}
    else:
        raw = read_json(paths.hyperparameters_file)
    if not isinstance(raw, dict):
        raise ClientError("hyperparameters.json must hold a JSON object of name: value strings")
    spec = Spec.load(algorithm.name)
    hp = parse(raw, spec)
    channels = channels_config.load(paths, settings.pipe_wait_seconds)
    mode = hp.get(spec.mode_key) if spec.mode_key else None
    title = specs.load(algorithm.name)["title"]
    channels_config.check_names(channels, list(specs.channels(algorithm.name, mode)),
                                f"{title} in mode {mode}" if mode else title)
    algorithm.validate(hp, channels)
    return Job(algorithm, hp, channels, Cluster.load(paths), paths, settings)


def workers_per_host(settings: Settings) -> int:
    """One per GPU when CUDA is used, else the ``cpu_workers`` setting."""
    if runtime.choose_device(settings.device).startswith("cuda"):
        import torch

        return torch.cuda.device_count()
    return settings.cpu_workers


def main(paths: Paths | None = None, settings: Settings | None = None) -> int:
    """The ``train`` entrypoint: exit code 0 on success, 1 on failure, 143 or 130 when stopped
    by SIGTERM or SIGINT.

    ``paths`` and ``settings`` default to what the environment gives ($SAGEMAKER_BASE_DIR and
    the variables of ``Settings.from_env``); ``sagetext train`` passes its own."""
    configure_logging()
    log.info("sagetext %s: train", __version__)
    paths = paths if paths is not None else Paths.from_env()
    started = time.monotonic()
    stop, previous = _stop_on_signals()
    try:
        return _run_job(paths, settings, started, stop)
    finally:
        _restore_handlers(previous)


def _run_job(paths: Paths, settings: Settings | None, started: float, stop: "StopRequest") -> int:
    try:
        job = load_job(paths, settings if settings is not None else Settings.from_env())
        log.info("Arguments: train (algorithm %s, hosts %s, current %s)", job.algorithm.name,
                 list(job.cluster.hosts), job.cluster.current_host)
        for name, why in job.hyperparameters.unused.items():
            log.warning("Hyperparameter %s is ignored: %s", name, why)
        nproc = workers_per_host(job.settings)
        if job.cluster.num_hosts * nproc == 1:
            code = run_worker(job, runtime.Runtime(device=runtime.choose_device(job.settings.device)), stop)
        else:
            code = _launch_workers(job, nproc, paths, stop)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the failure file
        return _report(paths, exc)
    if code == 0:
        failure.write_success(paths)
        log.info("Training job finished in %.1f s", time.monotonic() - started)
    return code


def _launch_workers(job: Job, nproc: int, paths: Paths, stop: "StopRequest") -> int:
    """Start ``nproc`` worker processes on this host and wait for them all; the job's exit code.

    The launcher (torch's elastic agent) is imported here only: a one-worker job never needs it."""
    from sagetext.distributed import launch

    try:
        if stop.is_set():  # the signal came before torch's launcher could take it over
            raise launch.WorkersStopped(stop.signum)
        command = launch.worker_command(__name__, str(paths.root), job.settings.to_json())
        launch.launch(job.cluster, nproc, command, job.settings.job_name, job.settings.master_port)
    except launch.WorkersStopped as stopped:
        log.info("Training stopped by %s; the workers saved their checkpoint", signal.Signals(stopped.signum).name)
        return failure.stopped_exit_code(stopped.signum)
    except launch.WorkersFailed as exc:
        if not paths.failure_file.exists():
            failure.write(paths, exc)
        log.error("%s", exc)
        return failure.EXIT_FAILURE
    return 0


def worker_main(argv: list[str]) -> int:
    """Entry of each launched worker process: ``python -m sagetext.training ROOT SETTINGS``
    (the launcher's contract root and ``Settings.to_json``)."""
    configure_logging()
    if len(argv) != 2:
        log.error("usage: python -m sagetext.training ROOT SETTINGS_JSON (run by the launcher, not by hand)")
        return failure.EXIT_FAILURE
    root, settings = argv
    paths = Paths(Path(root))
    stop, _ = _stop_on_signals()
    try:
        job = load_job(paths, Settings.from_json(settings))
        rt = runtime.init(job.settings.device)
        try:
            return run_worker(job, rt, stop)
        finally:
            runtime.shutdown()
    except Exception as exc:  # noqa: BLE001
        return _report(paths, exc)


def run_worker(job: Job, rt: runtime.Runtime, stop: threading.Event | None = None) -> int:
    """Build the context for this worker and train; 143 or 130 if SIGTERM or SIGINT (``stop``) stopped it.

    Each algorithm seeds the generators it draws from with its ``seed`` hyperparameter and the
    rank (torch is imported only by the algorithms that need it, so it cannot be seeded here)."""
    events = tensorboard.open_writer(tensorboard.directory(job.paths)) if rt.rank == 0 else None
    folder = checkpoints.directory(job.paths)
    ctx = TrainingContext(
        hyperparameters=job.hyperparameters,
        channels=job.channels,
        model_dir=job.paths.model_dir,
        output_data_dir=job.paths.output_data_dir,
        checkpoints=Checkpoints(folder, job.hyperparameters, _data_fingerprint(job) if folder else None,
                                writer=rt.rank == 0),
        cluster=job.cluster,
        metrics=MetricLogger(enabled=rt.rank == 0, events=events),
        rank=rt.rank,
        world_size=rt.world_size,
        device=rt.device,
        stop_requested=stop if stop is not None else threading.Event(),
        settings=job.settings,
    )
    try:
        job.algorithm.train(ctx)
    except TrainingStopped:
        signum = stop.signum if isinstance(stop, StopRequest) else signal.SIGTERM
        log.info("Training stopped by %s%s", signal.Signals(signum).name,
                 "; checkpoint saved" if ctx.checkpoints.enabled else "")
        return failure.stopped_exit_code(signum)
    finally:
        ctx.metrics.close()
    if ctx.is_writer:
        write_bytes_atomic(ctx.model_dir / METRICS_FILE, (json.dumps(ctx.metrics.final, indent=2) + "\n").encode())
    ctx.checkpoints.finish()
    return 0


def _data_fingerprint(job: Job) -> dict[str, str]:
    """What every checkpoint of this job depends on besides its hyperparameters: the channels'
    files, as every worker sees them (hosts may hold different shards), so that all workers
    agree on resuming."""
    every_worker = runtime.all_gather_object(checkpoints.channel_files(job.channels))
    return {"channel files": checkpoints.fingerprint(*every_worker)}


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
    sys.exit(worker_main(sys.argv[1:]))
