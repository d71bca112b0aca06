"""Which part of a channel each worker reads: ``S3DistributionType`` and the hosts of the job.

With ``ShardedByS3Key`` on several hosts SageMaker gives each host its own objects, so only the
host's own workers split them; with ``FullyReplicated`` every host holds everything and all the
job's workers split it. (The real executables on two loopback hosts: tests/contract/test_distributed.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sagetext.algorithms import seq2seq
from sagetext.algorithms.seq2seq import data
from sagetext.algorithms.seq2seq.config import DataConfig
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.cluster import Cluster
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

TWO_HOSTS = Cluster(hosts=("algo-1", "algo-2"), current_host="algo-2")


def context(root: Path, channels: dict[str, Channel], cluster: Cluster = TWO_HOSTS, rank: int = 0,
            world_size: int = 1) -> TrainingContext:
    hp = parse({}, Spec.load("seq2seq"))
    return TrainingContext(hyperparameters=hp, channels=channels, model_dir=root / "model",
                           output_data_dir=root / "output", checkpoints=Checkpoints(None, hp), cluster=cluster,
                           rank=rank, world_size=world_size)


@pytest.mark.parametrize("distribution,cluster,expected", [
    ("FullyReplicated", TWO_HOSTS, [(r, 4) for r in range(4)]),  # all workers split everything
    ("ShardedByS3Key", TWO_HOSTS, [(0, 2), (1, 2), (0, 2), (1, 2)]),  # each host's two split its own
    ("ShardedByS3Key", Cluster(), [(r, 4) for r in range(4)]),  # one host holds everything
])
def test_each_worker_reads_its_part_of_what_its_host_holds(tmp_path: Path, distribution: str, cluster: Cluster,
                                                           expected: list[tuple[int, int]]) -> None:
    channel = Channel("train", distribution=distribution)
    shards = [context(tmp_path, {"train": channel}, cluster, rank, 4).shard(channel) for rank in range(4)]
    assert shards == expected


def test_every_record_is_read_once_across_hosts_and_workers(tmp_path: Path) -> None:
    """Ranks 0-1 on algo-1, 2-3 on algo-2; each host holds different records (ShardedByS3Key)."""
    channel = Channel("train", distribution="ShardedByS3Key")
    held = {"algo-1": list(range(0, 70)), "algo-2": list(range(70, 100))}
    read = []
    for rank in range(4):
        index, count = context(tmp_path, {"train": channel}, TWO_HOSTS, rank, 4).shard(channel)
        host = TWO_HOSTS.hosts[rank // 2]
        read += held[host][index::count]
    assert sorted(read) == list(range(100))


def write_channel(root: Path, name: str, files: dict[str, str], distribution: str) -> Channel:
    paths = Paths(root)
    folder = paths.channel_dir(name)
    folder.mkdir(parents=True)
    for file_name, text in files.items():
        (folder / file_name).write_text(text)
    return Channel(name, distribution=distribution, paths=paths)


@pytest.mark.parametrize("sharded,files,refused", [
    ("train", {"train.rec": ""}, None),
    ("train", {"train.src": "1 2\n", "train.trg": "2 1\n"}, "the train channel when it holds text"),
    ("validation", {"val.rec": ""}, "the 'validation' channel"),
    ("vocab", {"vocab.src.json": "{}"}, "the 'vocab' channel"),
])
def test_seq2seq_on_several_hosts_shards_only_a_recordio_train_channel(
        tmp_path: Path, sharded: str, files: dict[str, str], refused: str | None) -> None:
    channels = {name: write_channel(tmp_path, name, files if name == sharded else {"x.rec": ""},
                                    "ShardedByS3Key" if name == sharded else "FullyReplicated")
                for name in seq2seq.CHANNELS}
    check = seq2seq.check_sharding
    check(context(tmp_path, channels, Cluster()))  # one host: every channel is whole there
    if refused is None:
        check(context(tmp_path, channels))
        return
    with pytest.raises(ClientError) as caught:
        check(context(tmp_path, channels))
    message = str(caught.value)
    assert f"channel '{sharded}': S3DistributionType='ShardedByS3Key' on 2 hosts" in message
    assert f"Seq2Seq needs FullyReplicated for {refused}" in message


def test_a_worker_has_the_same_number_of_batches_every_epoch() -> None:
    """What lets Seq2Seq's trainer fix every worker's epoch at the fewest batches any worker has
    (hosts with ShardedByS3Key hold different numbers of pairs) by counting epoch 0 once."""
    config = DataConfig(batch_size=4, batch_type="sentence", bucket_width=3, bucketing_enabled=True,
                        max_seq_len_source=10, max_seq_len_target=10)
    pairs = [(np.arange(1, 4 + i % 5), np.arange(1, 3 + i % 7)) for i in range(70)]
    plan = data.BatchPlan(pairs, config, seed=1)
    for index, count in ((0, 1), (0, 2), (1, 2), (2, 3)):
        lengths = {len(plan.epoch(epoch, index, count)) for epoch in range(6)}
        assert len(lengths) == 1 and lengths.pop() >= 70 // 4 // count
    assert len(plan.buckets) > 1  # several buckets, each with its own remainder
