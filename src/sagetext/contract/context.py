"""Everything an algorithm's ``train`` receives, in one frozen object.

Built by ``sagetext.training`` from the contract files and the environment's settings (or from
plain values in tests); an algorithm never opens ``/opt/ml`` paths itself nor reads
``os.environ``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.cluster import Cluster
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.contract.metrics import MetricLogger
from sagetext.contract.settings import Settings
from sagetext.errors import ClientError


class TrainingStopped(Exception):
    """Raised by a training loop after it saved its state because SIGTERM arrived."""


@dataclass(frozen=True)
class TrainingContext:
    hyperparameters: Hyperparameters
    channels: Mapping[str, Channel]
    model_dir: Path
    output_data_dir: Path
    checkpoints: Checkpoints
    cluster: Cluster = Cluster()
    metrics: MetricLogger = field(default_factory=MetricLogger)
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    stop_requested: threading.Event = field(default_factory=threading.Event)
    settings: Settings = Settings()

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the model, the metrics and the checkpoints."""
        return self.rank == 0

    @property
    def workers_per_host(self) -> int:
        """This job's workers on each host (the launcher starts as many on every host)."""
        return max(1, self.world_size // self.cluster.num_hosts)

    def shard(self, channel: Channel) -> tuple[int, int]:
        """``(index, count)``: this worker reads part ``index`` of ``count`` of the channel's records.

        With ``FullyReplicated`` every host holds the whole channel, and the job's workers split
        it among themselves (``rank`` of ``world_size``). With ``ShardedByS3Key`` on several
        hosts, SageMaker has already given each host its own objects, so only this host's
        workers split them (its local rank of its workers): every record is read once, not
        ``1 / num_hosts`` of them. Ranks run host by host (the launcher's node rank is the
        host's place in ``hosts``), so the local rank is ``rank % workers_per_host``.
        """
        if channel.distribution != "ShardedByS3Key" or self.cluster.num_hosts == 1:
            return self.rank, self.world_size
        return self.rank % self.workers_per_host, self.workers_per_host

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            given = ", ".join(sorted(self.channels)) or "none"
            raise ClientError(f"the '{name}' channel is required but missing (channels given: {given})") from None

    def optional_channel(self, name: str) -> Channel | None:
        return self.channels.get(name)
