"""NTM training in-process on a tiny corpus with known topics: artifacts, metric lines, early
stopping, sub-sampling, checkpoints and SIGTERM, and that the knobs do something."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sagetext.algorithms.ntm import model as ntm_model
from sagetext.algorithms.ntm import trainer
from sagetext.algorithms.ntm.hyperparameters import NtmHyperparameters
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.paths import Paths
from tests.unit.conftest import Recording

D, TOPICS, DOCS = 24, 3, 120
WORDS = [f"w{i}" for i in range(D)]


def synthetic(n: int, seed: int) -> np.ndarray:
    """Documents drawn from 3 disjoint topics of 8 words each."""
    rng = np.random.default_rng(seed)
    docs = np.zeros((n, D))
    for i in range(n):
        topic = i % TOPICS
        docs[i, topic * 8:(topic + 1) * 8] = rng.poisson(2.0, 8)
    return docs


def write_csv(folder: Path, matrix: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("".join(",".join(str(int(v)) for v in row) + "\n" for row in matrix))


def make_ctx(tmp_path: Path, checkpoint_dir: Path | None = None, validation: bool = True,
             **hyperparameters: str) -> tuple[TrainingContext, Recording]:
    paths = Paths(tmp_path)
    write_csv(paths.channel_dir("train"), synthetic(DOCS, 0))
    channels = {"train": Channel("train", content_type="text/csv", paths=paths)}
    if validation:
        write_csv(paths.channel_dir("validation"), synthetic(30, 1))
        channels["validation"] = Channel("validation", content_type="text/csv", paths=paths)
    write_csv(paths.channel_dir("test"), synthetic(30, 2))
    channels["test"] = Channel("test", content_type="text/csv", paths=paths)
    aux = paths.channel_dir("auxiliary")
    aux.mkdir(parents=True)
    (aux / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    (aux / "vectors.txt").write_text("".join(f"w{i} {' '.join('1' if j == i // 8 else '0' for j in range(3))}\n"
                                             for i in range(D)))
    channels["auxiliary"] = Channel("auxiliary", content_type="text/plain", paths=paths)
    raw = {"feature_dim": str(D), "num_topics": str(TOPICS), "epochs": "3", "mini_batch_size": "16",
           "optimizer": "adam", "learning_rate": "0.01", **hyperparameters}
    hp = parse(raw, Spec.load("ntm"))
    metrics = Recording()
    ctx = TrainingContext(hyperparameters=hp, channels=channels, model_dir=tmp_path / "model",
                          output_data_dir=tmp_path / "output", checkpoints=Checkpoints(checkpoint_dir, hp),
                          metrics=metrics)
    torch.manual_seed(0)
    return ctx, metrics


def typed(ctx: TrainingContext) -> NtmHyperparameters:
    return ctx.hyperparameters.typed(NtmHyperparameters)


def test_training_writes_model_topics_and_metrics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx, metrics = make_ctx(tmp_path, epochs="30", num_patience_epochs="40")
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    assert len(metrics.values("train:total_loss")) == len(metrics.values("validation:total_loss")) == 30
    assert metrics.values("validation:total_loss")[-1] < metrics.values("validation:total_loss")[0]
    assert metrics.values("test:perplexity")[0] > 1.0
    report = json.loads((ctx.model_dir / "topics.json").read_text())
    assert report["num_topics"] == TOPICS and len(report["topics"]) == TOPICS
    # three disjoint topics are recovered: each topic's top 8 words are one block.
    blocks = sorted({int(w[1:]) // 8 for w in t["words"][:8]}.pop() for t in report["topics"]
                    if len({int(w[1:]) // 8 for w in t["words"][:8]}) == 1)
    assert blocks == [0, 1, 2], report["topics"]
    assert report["tu"] == pytest.approx(metrics.values("tu")[0])
    assert report["wetc"] > 0.5 and report["npmi"] > 0.0
    text = caplog.text
    assert re.search(r"Topics from epoch:final \(num_topics:3\) \[wetc [0-9.]+, tu [0-9.]+, npmi [-0-9.]+\]:", text)
    assert len(re.findall(r" \[[0-9.]+, [0-9.]+, npmi [-0-9.]+\] w\d+( w\d+){19}$", text, re.M)) == TOPICS
    assert re.search(r"Topic quality of the run: tu [0-9.]+, npmi [-0-9.]+, wetc [0-9.]+ \(top 10 words of 3 topics\)",
                     text)
    assert re.search(r"Epoch 30/30: train total_loss ", text)
    model = ntm_model.load(ctx.model_dir)
    assert model.config.num_topics == TOPICS
    assert (ctx.model_dir / "vocab.txt").read_text().split() == WORDS


def test_early_stopping_counts_epochs(tmp_path: Path) -> None:
    ctx, metrics = make_ctx(tmp_path, epochs="50", tolerance="0.1", num_patience_epochs="2")
    trainer.train(ctx)
    ran = len(metrics.values("validation:total_loss"))
    assert 3 <= ran < 50
    losses = metrics.values("validation:total_loss")
    best = min(losses[:ran - 2])
    assert all(loss > best * 0.9 for loss in losses[-2:])  # the last two did not improve by 10%


def test_early_stopping_rule() -> None:
    stopper = trainer.EarlyStopping(tolerance=0.01, patience=2)
    assert [stopper.update(x) for x in (100.0, 90.0, 89.5, 89.2)] == [False, False, False, True]
    stopper = trainer.EarlyStopping(tolerance=0.01, patience=2)
    assert [stopper.update(x) for x in (100.0, 99.5, 90.0, 95.0, 91.0)] == [False, False, False, False, True]


def test_without_validation_the_training_loss_drives_early_stopping(tmp_path: Path) -> None:
    ctx, metrics = make_ctx(tmp_path, validation=False, epochs="50", tolerance="0.1", num_patience_epochs="1")
    trainer.train(ctx)
    assert metrics.values("validation:total_loss") == []
    assert 2 <= len(metrics.values("train:total_loss")) < 50


@pytest.mark.parametrize("fraction,expected", [("1.0", DOCS), ("0.25", 30), ("0", 2), ("0.1417", 17)])
# 0 is in AWS's range (two documents are kept: BatchNorm needs two); 17 documents in batches of
# 16 leave one over, which joins the batch before (alone it cannot train BatchNorm)
def test_sub_sample_sets_documents_per_epoch(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                             fraction: str, expected: int) -> None:
    ctx, _ = make_ctx(tmp_path, sub_sample=fraction, epochs="2")
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    seen = [int(n) for n in re.findall(r"Epoch \d/2: train total_loss .*?, (\d+) documents", caplog.text)]
    assert seen == [expected, expected]


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "adadelta", "rmsprop"])
def test_every_optimizer_trains(tmp_path: Path, name: str) -> None:
    ctx, metrics = make_ctx(tmp_path, optimizer=name, learning_rate="0.001", epochs="2")
    trainer.train(ctx)
    assert all(np.isfinite(metrics.values("train:total_loss")))


def test_architecture_knobs_shape_the_network(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path, encoder_layers="[7, 5]", encoder_layers_activation="tanh", batch_norm="true")
    network = ntm_model.ProdLDA(ntm_model.ModelConfig.from_hyperparameters(typed(ctx)))
    kinds = [type(m).__name__ for m in network.encoder]
    assert kinds == ["Linear", "BatchNorm1d", "Tanh", "Linear", "BatchNorm1d", "Tanh"]
    assert network.encoder[0].out_features == 7 and network.encoder[3].out_features == 5
    auto = ntm_model.ModelConfig.from_hyperparameters(typed(make_ctx(tmp_path / "b")[0]))
    assert auto.encoder_layers == (3 * TOPICS, 2 * TOPICS) and auto.activation == "sigmoid"


def test_gradient_rescale_then_per_component_clip() -> None:
    layer = torch.nn.Linear(2, 1, bias=False)
    layer.weight.grad = torch.tensor([[4.0, -0.5]])
    trainer.adjust_gradients(layer, rescale=0.5, clip=1.0)
    assert layer.weight.grad.tolist() == [[1.0, -0.25]]


def test_weight_decay_and_learning_rate_reach_the_optimizer(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path, weight_decay="0.3", learning_rate="0.05", optimizer="rmsprop")
    layer = torch.nn.Linear(2, 2)
    matrices, vectors = trainer.make_optimizer(layer, typed(ctx)).param_groups
    assert matrices["weight_decay"] == 0.3 and matrices["lr"] == 0.05 and matrices["params"] == [layer.weight]
    assert vectors["weight_decay"] == 0.0 and vectors["params"] == [layer.bias]  # MXNet: no decay on biases
    ctx, _ = make_ctx(tmp_path / "b", optimizer="adadelta", learning_rate="0.002")
    group = trainer.make_optimizer(torch.nn.Linear(2, 2), typed(ctx)).param_groups[0]
    assert group["lr"] == pytest.approx(2.0) and group["rho"] == 0.9 and group["eps"] == 1e-5  # MXNet's AdaDelta


def test_adadelta_at_the_default_learning_rate_takes_mxnets_step() -> None:
    """MXNet: acc_g = rho acc_g + (1 - rho) g^2; delta = sqrt(acc_d + eps) / sqrt(acc_g + eps) g;
    acc_d = rho acc_d + (1 - rho) delta^2; w -= delta (no learning rate), rho 0.9, eps 1e-5."""
    hp = parse({"feature_dim": "2", "num_topics": "2"}, Spec.load("ntm"))
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    model = torch.nn.Module()
    model.weight = weight
    optimizer = trainer.make_optimizer(model, hp.typed(NtmHyperparameters))
    acc_g = acc_d = np.zeros(2)
    expected = np.array([1.0, -2.0])
    for grad in ([0.5, -3.0], [0.1, 2.0], [-1.0, 0.0]):
        weight.grad = torch.tensor(grad)
        optimizer.step()
        g = np.array(grad)
        acc_g = 0.9 * acc_g + 0.1 * g * g
        delta = np.sqrt(acc_d + 1e-5) / np.sqrt(acc_g + 1e-5) * g
        acc_d = 0.9 * acc_d + 0.1 * delta * delta
        expected = expected - delta
    assert weight.detach().numpy() == pytest.approx(expected, rel=1e-5)


def test_the_decoder_starts_from_the_corpus_word_frequencies(tmp_path: Path) -> None:
    """Background: before the first step the decoder's shift is each word's centred log
    frequency in the training channel (sgd with a negligible step keeps it there)."""
    ctx, _ = make_ctx(tmp_path, optimizer="sgd", learning_rate="0.000001", epochs="1")
    trainer.train(ctx)
    counts = synthetic(DOCS, 0).sum(axis=0) + 1.0
    log_frequency = np.log(counts / counts.sum())
    shift = ntm_model.load(ctx.model_dir).decoder_bn.shift.detach().numpy()
    assert shift == pytest.approx(log_frequency - log_frequency.mean(), abs=1e-4)


def test_checkpoint_resume_and_sigterm(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    checkpoints = tmp_path / "checkpoints"
    ctx, metrics = make_ctx(tmp_path / "a", checkpoint_dir=checkpoints, epochs="2", num_patience_epochs="9")
    trainer.train(ctx)
    assert (checkpoints / "checkpoint.pt").exists()
    ctx, metrics = make_ctx(tmp_path / "b", checkpoint_dir=checkpoints, epochs="4", num_patience_epochs="9")
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    assert "Resuming from checkpoint: epoch 3, step 0" in caplog.text
    assert len(metrics.values("train:total_loss")) == 2  # epochs 3 and 4 only
    state = torch.load(checkpoints / "checkpoint.pt", weights_only=True)
    assert state["position"]["epoch"] == 4
    ctx, _ = make_ctx(tmp_path / "c", checkpoint_dir=checkpoints, epochs="9", num_patience_epochs="9")
    ctx.stop_requested.set()
    with pytest.raises(TrainingStopped):
        trainer.train(ctx)
    assert torch.load(checkpoints / "checkpoint.pt", weights_only=True)["position"]["epoch"] == 4
    assert not (ctx.model_dir / "model.pt").exists()


def test_a_job_restarted_from_an_epochs_checkpoint_ends_with_the_uninterrupted_model(tmp_path: Path) -> None:
    """Killed right after epoch 2's checkpoint, restarted: the same weights as a run never
    killed (model sampling and shuffles draw the same numbers after the restart)."""
    torch.manual_seed(7)  # as training.py seeds a fresh process
    whole, _ = make_ctx(tmp_path / "whole", checkpoint_dir=tmp_path / "whole_ckpt", epochs="4",
                        num_patience_epochs="9")
    trainer.train(whole)
    torch.manual_seed(7)
    first, _ = make_ctx(tmp_path / "first", checkpoint_dir=tmp_path / "ckpt", epochs="2", num_patience_epochs="9")
    trainer.train(first)
    torch.manual_seed(7)  # the restarted process seeds afresh; the checkpoint's state replaces it
    second, _ = make_ctx(tmp_path / "second", checkpoint_dir=tmp_path / "ckpt", epochs="4", num_patience_epochs="9")
    trainer.train(second)
    expected = torch.load(tmp_path / "whole_ckpt" / "checkpoint.pt", weights_only=True)["state"]["model"]
    got = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)["state"]["model"]
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_pipe_mode_reads_a_new_fifo_per_pass(tmp_path: Path) -> None:
    """Pipe mode: train_0, train_1 for the two epochs, validation_0/_1, test_0 once; the topic
    metrics reuse the last pass instead of opening another FIFO."""
    ctx, metrics = make_ctx(tmp_path, epochs="2", num_patience_epochs="9")
    paths = Paths(tmp_path)
    channels = dict(ctx.channels)
    for name, n in (("train", 2), ("validation", 2), ("test", 1)):
        source = paths.channel_dir(name) / "data.csv"
        for number in range(n):  # regular files stand in for the FIFOs
            (tmp_path / "input" / "data" / f"{name}_{number}").write_bytes(source.read_bytes())
        source.unlink()
        channels[name] = Channel(name, mode="Pipe", content_type="text/csv", paths=paths,
                                 pipe_wait_seconds=2)  # a missing FIFO fails fast
    pipe_ctx = TrainingContext(hyperparameters=ctx.hyperparameters, channels=channels, model_dir=ctx.model_dir,
                               output_data_dir=ctx.output_data_dir, checkpoints=ctx.checkpoints, metrics=metrics)
    trainer.train(pipe_ctx)
    assert len(metrics.values("validation:total_loss")) == 2 and len(metrics.values("test:perplexity")) == 1
    assert (ctx.model_dir / "model.pt").exists()


def test_spec_defaults_and_ranges_follow_sagemaker() -> None:
    spec = Spec.load("ntm")
    hp = parse({"feature_dim": "1994", "num_topics": "50"}, spec)
    assert {k: hp[k] for k in ("batch_norm", "clip_gradient", "encoder_layers", "encoder_layers_activation",
                               "epochs", "learning_rate", "mini_batch_size", "num_patience_epochs", "optimizer",
                               "rescale_gradient", "sub_sample", "tolerance", "weight_decay")} == {
        "batch_norm": False, "clip_gradient": float("inf"), "encoder_layers": "auto",
        "encoder_layers_activation": "sigmoid", "epochs": 50, "learning_rate": 0.001, "mini_batch_size": 256,
        "num_patience_epochs": 3, "optimizer": "adadelta", "rescale_gradient": 1.0, "sub_sample": 1.0,
        "tolerance": 0.001, "weight_decay": 0.0}
    for text in ("30,20", "[30, 20]"):
        given = {"feature_dim": "5", "num_topics": "2", "encoder_layers": text}
        assert parse(given, spec)["encoder_layers"] == (30, 20)
    given = {"feature_dim": "5", "num_topics": "2", "clip_gradient": "Infinity"}
    assert parse(given, spec)["clip_gradient"] == float("inf")
    from sagetext.errors import ClientError
    with pytest.raises(ClientError) as info:
        parse({"feature_dim": "0", "num_topics": "1001", "sub_sample": "1.5", "rescale_gradient": "2",
               "encoder_layers_activation": "gelu"}, spec)
    for needle in ("feature_dim='0'", "num_topics='1001'", "sub_sample='1.5'", "rescale_gradient='2'",
                   "encoder_layers_activation='gelu'", "sigmoid, tanh, relu"):
        assert needle in info.value.message



def test_free_bits_mask_the_kl_gradient_of_topics_below_the_floor_only() -> None:
    """Training: a topic whose batch-mean KL is under FREE_BITS gets no KL gradient (here topics
    1-3 sit near the prior, KL about 0.06); topic 0 does, and the value reported is the true KL."""
    torch.manual_seed(0)
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(30, 4, (8,), "sigmoid", False))
    model.dropout.p = 0.0
    counts = torch.poisson(torch.full((16, 30), 0.5))
    with torch.no_grad():
        model.mu.weight[1:] = 0.0
        model.mu.bias[1:] = 0.0
        model.logvar.weight.zero_()
        model.logvar.bias.zero_()
        model.logvar_bn.shift.copy_(torch.log(model.prior_var))
        model.mu_bn.shift.copy_(torch.tensor([1.0, 0.3, 0.3, 0.3]))
    model.train()
    _, kl = model(counts, torch.Generator().manual_seed(1))
    model.zero_grad()
    kl.sum().backward()
    grad = model.mu_bn.shift.grad
    assert grad is not None and grad[0] > 1.0 and torch.all(grad[1:] == 0)
    with torch.no_grad():
        mu, logvar = model.encode(counts)
        expected = 0.5 * (torch.exp(logvar) / model.prior_var + (mu - model.prior_mean) ** 2 / model.prior_var
                          - 1.0 + torch.log(model.prior_var) - logvar).sum(dim=1)
    assert torch.allclose(kl.detach(), expected, atol=1e-5)
    assert kl.mean().item() > ntm_model.FREE_BITS  # topic 0 alone is over the floor
