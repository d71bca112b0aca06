"""Channels, cluster, checkpoints and failure reporting read and write the contract's files."""

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sagetext.contract import channels, checkpoints, failure
from sagetext.contract.checkpoints import Checkpoints, Position, fingerprint
from sagetext.contract.cluster import Cluster
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError


def test_paths_follow_sagemaker_base_dir(tmp_path: Path) -> None:
    assert Paths.from_env({}).root == Path("/opt/ml")
    paths = Paths.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert paths.hyperparameters_file == tmp_path / "input/config/hyperparameters.json"
    assert paths.pipe_path("train", 3) == tmp_path / "input/data/train_3"
    assert paths.failure_file == tmp_path / "output/failure"


def test_file_mode_lists_files_in_order_and_undoes_gzip(opt_ml) -> None:
    import gzip

    opt_ml.channel("train", {"b.txt": "second\n", "a.txt.gz": gzip.compress(b"first\n"), ".hidden": "x"})
    chans = channels.load(Paths(opt_ml.root))
    assert chans["train"].mode == "File"
    contents = [stream.read() for _, stream in chans["train"].streams()]
    assert contents == [b"first\n", b"second\n"]


def test_pipe_mode_waits_for_the_fifo_of_each_epoch(opt_ml) -> None:
    opt_ml.channel("train", {}, mode="Pipe")
    paths = Paths(opt_ml.root)
    channel = channels.load(paths)["train"]
    fifo = paths.pipe_path("train", 1)

    def feed() -> None:
        time.sleep(0.3)  # the reader must wait for the FIFO to appear
        os.mkfifo(fifo)
        with open(fifo, "wb") as f:
            f.write(b"__label__a hello\n")

    writer = threading.Thread(target=feed)
    writer.start()
    data = [stream.read() for _, stream in channel.streams(epoch=1)]
    writer.join()
    assert data == [b"__label__a hello\n"]


def test_bad_input_mode_and_empty_channel_are_client_errors(opt_ml) -> None:
    paths = Paths(opt_ml.root)
    with pytest.raises(ClientError, match="TrainingInputMode='Stream'"):
        channels.parse({"train": {"TrainingInputMode": "Stream"}}, paths)
    opt_ml.channel("train", {})
    with pytest.raises(ClientError, match="channel 'train': no files"):
        list(channels.load(paths)["train"].streams())


def test_cluster_from_resourceconfig(opt_ml) -> None:
    opt_ml.resources(["algo-2", "algo-1"], "algo-2", "eth1")
    cluster = Cluster.load(Paths(opt_ml.root))
    assert cluster.hosts == ("algo-1", "algo-2")
    assert cluster.host_rank == 1 and cluster.master_host == "algo-1"
    assert cluster.network_interface == "eth1"
    with pytest.raises(ClientError, match="current_host='algo-9'"):
        Cluster.parse({"hosts": ["algo-1"], "current_host": "algo-9"})


def test_failure_file_first_writer_wins_and_separates_client_from_algorithm_errors(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    failure.write(paths, ClientError("epochs='x': expected an integer\nsecond line"))
    failure.write(paths, RuntimeError("later"))
    assert paths.failure_file.read_text() == "ClientError: epochs='x': expected an integer second line"
    assert failure.describe(ValueError("boom")).startswith("AlgorithmError: ValueError: boom")


def test_checkpoints_round_trip_and_ignore_another_jobs(opt_ml, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    spec = Spec.load("blazingtext")
    opt_ml.checkpoints(tmp_path / "ckpt")
    folder = checkpoints.directory(Paths(opt_ml.root))
    assert folder == tmp_path / "ckpt"
    vocabulary = {"vocabulary": fingerprint(["a", "b"])}
    saved = Checkpoints(folder, parse({"mode": "supervised", "vector_dim": "8"}, spec), {"channel files": "f1"})
    saved.save("test/1", Position(2, 5), {"weights": torch.arange(4.0)}, vocabulary)
    longer = Checkpoints(folder, parse({"mode": "supervised", "vector_dim": "8", "epochs": "9"}, spec),
                         {"channel files": "f1"})
    with caplog.at_level(logging.INFO, logger="sagetext"):
        resumed = longer.load("test/1", vocabulary)
    assert resumed is not None and resumed.position == Position(2, 5)
    assert torch.equal(resumed.state["weights"], torch.arange(4.0))
    assert "Resuming from checkpoint: epoch 3, step 5" in caplog.text
    # Another job's checkpoint is ignored, in one line naming what differs.
    other = Checkpoints(folder, parse({"mode": "supervised", "vector_dim": "16"}, spec), {"channel files": "f2"})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sagetext"):
        assert other.load("test/1", {"vocabulary": fingerprint(["a", "c"])}) is None
        assert longer.load("test/2", vocabulary) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all(line.startswith(f"Not resuming the checkpoint in {folder}: ") for line in lines)
    assert "other hyperparameters (vector_dim: checkpoint '8' vs job '16')" in lines[0], lines
    assert "other data (different channel files and vocabulary)" in lines[0], lines
    assert "it holds 'test/1' state, this job 'test/2'" in lines[1], lines
    assert not list(folder.glob(".*tmp"))  # no temporary files left behind
    # A worker other than rank 0 decides alike, silently.
    quiet = Checkpoints(folder, parse({"mode": "supervised", "vector_dim": "8"}, spec), {"channel files": "f1"},
                        writer=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sagetext"):
        assert quiet.load("test/1", vocabulary) is not None
    assert caplog.text == ""


def test_a_finished_jobs_checkpoint_is_not_resumed_but_its_successors_are(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    hp = parse({"mode": "supervised"}, Spec.load("blazingtext"))
    first = Checkpoints(tmp_path, hp)
    first.save("test/1", Position(5), {})
    first.finish()
    assert (tmp_path / checkpoints.FINISHED_FILE).exists()
    second = Checkpoints(tmp_path, hp)
    with caplog.at_level(logging.INFO, logger="sagetext"):
        assert second.load("test/1") is None
    assert f"Not resuming the checkpoint in {tmp_path}: its job finished; training afresh" in caplog.text
    second.save("test/1", Position(1), {})  # then the second job is stopped (spot): its restart resumes
    resumed = Checkpoints(tmp_path, hp).load("test/1")
    assert resumed is not None and resumed.position == Position(1)
    # A job that ignored a finished checkpoint and is killed before its first save: its restart
    # ignores that checkpoint again.
    third = Checkpoints(tmp_path, hp)
    third.load("test/1")
    third.finish()
    assert Checkpoints(tmp_path, hp).load("test/1") is None
    (tmp_path / checkpoints.FINISHED_FILE).write_text("{not json")
    with pytest.raises(ClientError, match=checkpoints.FINISHED_FILE):
        Checkpoints(tmp_path, hp).load("test/1")


def test_checkpoint_fingerprints_frame_their_parts() -> None:
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
    assert fingerprint(["a", "b"]) != fingerprint("a", "b") != fingerprint(("a",), "b")
    assert fingerprint([b"a", b"b"], [b"c"]) != fingerprint([b"a"], [b"b", b"c"])
    assert fingerprint("1") != fingerprint(1) != fingerprint(1.0)
    assert fingerprint(np.array([1, 2], dtype=np.int64)) == fingerprint(np.array([1, 2], dtype=np.int64))
    assert fingerprint(np.array([1, 2], dtype=np.int64)) != fingerprint(np.array([1, 2], dtype=np.int32))
    assert fingerprint(np.arange(3)) != fingerprint(np.arange(4))
    with pytest.raises(TypeError):
        fingerprint(object())


def test_channel_files_fingerprint_names_and_sizes_but_not_times(opt_ml) -> None:
    paths = Paths(opt_ml.root)
    folder = opt_ml.channel("train", {"a.txt": "one\n", "b.txt": "two\n"})
    opt_ml.channel("validation", {"v.txt": "three\n"})
    before = checkpoints.channel_files(channels.load(paths))
    os.utime(folder / "a.txt", (0, 0))  # a fresh download after a spot restart: new times, same objects
    assert checkpoints.channel_files(channels.load(paths)) == before
    (folder / "a.txt").write_text("ONE\n")  # same size: not told apart without reading (the vocabulary is)
    assert checkpoints.channel_files(channels.load(paths)) == before
    (folder / "a.txt").write_text("one more\n")
    grown = checkpoints.channel_files(channels.load(paths))
    (folder / "a.txt").rename(folder / "c.txt")
    (folder / "c.txt").write_text("one\n")
    renamed = checkpoints.channel_files(channels.load(paths))
    assert len({before, grown, renamed}) == 3
    opt_ml.channel("train", {}, mode="Pipe")  # Pipe mode: only the channel and its mode
    piped = checkpoints.channel_files(channels.load(paths))
    (folder / "c.txt").write_text("other data\n")
    assert checkpoints.channel_files(channels.load(paths)) == piped != renamed


def test_checkpoint_save_removes_leftovers_of_a_killed_write_and_reports_unwritable_paths(tmp_path: Path) -> None:
    hp = parse({"mode": "supervised"}, Spec.load("blazingtext"))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    leftover = folder / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    Checkpoints(folder, hp).save("test/1", Position(1), {})
    assert not leftover.exists() and (folder / "checkpoint.pt").exists()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(ClientError, match="cannot write the checkpoint"):
        Checkpoints(blocked / "ckpt", hp).save("test/1", Position(1), {})
