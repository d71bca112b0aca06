"""Start one training worker per GPU (or N CPU workers) on every host of the job, with
torch's elastic launcher (the library behind ``torchrun``), and wait for them.

One host: a c10d rendezvous on a free local port. Several hosts (resourceconfig.json): a
static rendezvous at the first host, each host's agent knowing its node rank, exactly what
``torchrun --nnodes N --node-rank R --master-addr H`` does. Workers learn RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT from their environment (see ``runtime.init``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from sagetext.contract.cluster import Cluster, cpu_count
from sagetext.contract.failure import EXIT_INTERRUPTED, STOPPED_EXIT_CODES

log = logging.getLogger(__name__)

RENDEZVOUS_TIMEOUT_S = 900


class WorkersFailed(Exception):
    """At least one worker exited non-zero; each worker reported its own failure."""


class WorkersStopped(Exception):
    """SIGTERM or SIGINT reached the launcher: it passed the signal on, and every worker stopped
    (and saved). ``signum`` is the signal."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def launch(cluster: Cluster, nproc_per_node: int, command: list[str], job_id: str, master_port: int) -> None:
    """Run ``command`` (argv) as ``nproc_per_node`` workers on this host, joined with the other hosts
    at ``master_port`` of the first host; ``job_id``, the same on every host, names the rendezvous."""
    _network_interface(cluster)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_count() // nproc_per_node)))
    if cluster.num_hosts == 1:
        backend, endpoint, configs = "c10d", "localhost:0", {}
    else:
        backend, endpoint = "static", f"{cluster.master_host}:{master_port}"
        configs = {"rank": cluster.host_rank, "timeout": RENDEZVOUS_TIMEOUT_S}
    config = LaunchConfig(
        min_nodes=cluster.num_hosts,
        max_nodes=cluster.num_hosts,
        nproc_per_node=nproc_per_node,
        run_id=job_id,  # the rendezvous keys are prefixed with it
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=configs,
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    log.info("Launching %d worker(s) on host %s (%d of %d)", nproc_per_node, cluster.current_host,
             cluster.host_rank + 1, cluster.num_hosts)
    try:
        elastic_launch(config, command[0])(*command[1:])
    except SignalException as exc:
        # torch's agent forwards the signal to the workers and waits for them before raising
        raise WorkersStopped(exc.sigval) from None
    except ChildFailedError as exc:
        codes = {child.exitcode for child in exc.failures.values()}
        if codes <= set(STOPPED_EXIT_CODES):
            raise WorkersStopped(signal.SIGINT if codes == {EXIT_INTERRUPTED} else signal.SIGTERM) from None
        raise WorkersFailed(f"training worker(s) failed: {_summary(exc)}") from None


def _network_interface(cluster: Cluster) -> None:
    """Point gloo and NCCL at the interface SageMaker names (resourceconfig's network_interface_name)."""
    if cluster.network_interface:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", cluster.network_interface)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", cluster.network_interface)


def _summary(exc: ChildFailedError) -> str:
    return ", ".join(f"rank {rank} exit code {failure.exitcode}" for rank, failure in sorted(exc.failures.items()))


def worker_command(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
