"""A cnn Seq2Seq model (``encoder_type=cnn``, ``decoder_type=cnn``) through the real executables
on a fake /opt/ml: ``train`` writes the model, ``serve`` answers with translations and attention
matrices, a SIGTERM mid-run leaves a checkpoint that a restarted ``train`` resumes from, two CPU
workers train it data-parallel, and a refused combination fails the job with a ClientError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.conftest import REPO, FakeOptMl, RunTrain, train_env
from tests.contract.test_seq2seq_train import (  # noqa: F401
    TINY,
    add_channels,
    assert_client_error,
    prepared,
    stop_after_first_checkpoint,
)
from tests.serving.conftest import Server, free_port

CNN = {**TINY, "encoder_type": "cnn", "decoder_type": "cnn", "cnn_num_hidden": "32", "num_layers_encoder": "2",
       "num_layers_decoder": "2", "cnn_kernel_width_decoder": "3", "max_num_batches": "60"}


def train(opt_ml: FakeOptMl, prepared: dict[str, Path], hyperparameters: dict[str, str],  # noqa: F811
          run_train: RunTrain) -> str:
    opt_ml.hyperparameters(hyperparameters)
    add_channels(opt_ml, prepared)
    result = run_train(opt_ml, "seq2seq")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.slow
def test_cnn_trains_and_serves_through_the_executables(opt_ml: FakeOptMl, prepared: dict[str, Path],  # noqa: F811
                                                       tmp_path: Path, run_train: RunTrain) -> None:
    log = train(opt_ml, prepared, CNN, run_train)
    assert "Seq2Seq cnn encoder, cnn decoder:" in log
    assert ("Hyperparameter rnn_num_hidden is ignored: used only with encoder_type=rnn or decoder_type=rnn "
            "(this job: encoder_type=cnn, decoder_type=cnn)") in log  # TINY's rnn settings, said not silent
    meta = json.loads((opt_ml.model / "config.json").read_text())
    assert (meta["model"]["encoder_type"], meta["model"]["decoder_type"]) == ("cnn", "cnn")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(REPO / "serve")], stdout=out, stderr=subprocess.STDOUT,
                                   env=train_env(opt_ml, "seq2seq", {"SAGEMAKER_BIND_TO_PORT": str(port),
                                                                    "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}))
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        server.wait_ready()
        sources = ["1 2 3 4", "5 6 7"]
        body = {"instances": [{"data": sources[0]},
                              {"data": sources[1], "configuration": {"attention_matrix": "true"}}]}
        response = requests.post(f"{server.url}/invocations", json=body, timeout=60)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == 2 and all(isinstance(p["target"], str) for p in predictions)
        assert "matrix" not in predictions[0]
        matrix = np.array(predictions[1]["matrix"])  # one row per target token, one column per source token
        assert matrix.shape == (len(predictions[1]["target"].split()), 3)
        assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
    finally:
        server.stop()


@pytest.mark.slow
def test_cnn_resumes_from_the_checkpoint_a_sigterm_left(opt_ml: FakeOptMl, prepared: dict[str, Path],  # noqa: F811
                                                        tmp_path: Path, run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**CNN, "checkpoint_frequency_num_batches": "10", "max_num_batches": "40",
                            "checkpoint_threshold": "1000"})
    add_channels(opt_ml, prepared)
    opt_ml.checkpoints(tmp_path / "checkpoints")
    stop_after_first_checkpoint(opt_ml)
    assert list(opt_ml.model.iterdir()) == []
    resumed = run_train(opt_ml, "seq2seq")
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log
    assert "Resuming from checkpoint" in log and "Checkpoint [1]\t" not in log, log
    assert "Training finished after 40 updates" in log, log
    assert (opt_ml.model / "model.pt").exists()


@pytest.mark.slow
def test_cnn_trains_data_parallel_on_two_cpu_workers(opt_ml: FakeOptMl, prepared: dict[str, Path],  # noqa: F811
                                                     run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**CNN, "max_num_batches": "40"})
    add_channels(opt_ml, prepared)
    result = run_train(opt_ml, "seq2seq", {"SAGETEXT_CPU_WORKERS": "2"}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (opt_ml.model / "model.pt").exists()


@pytest.mark.parametrize("encoder,decoder", [("cnn", "transformer"), ("transformer", "rnn")])
def test_a_refused_combination_fails_the_job_naming_the_accepted_ones(
        opt_ml: FakeOptMl, prepared: dict[str, Path], encoder: str, decoder: str,  # noqa: F811
        run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**CNN, "encoder_type": encoder, "decoder_type": decoder})
    add_channels(opt_ml, prepared)
    assert_client_error(run_train(opt_ml, "seq2seq"), opt_ml, f"encoder_type={encoder} with decoder_type={decoder}",
                        "rnn/rnn, rnn/cnn, cnn/rnn, cnn/cnn, transformer/transformer")

