"""The NTM's embedding decoder: word embeddings from the corpus (PPMI of document co-occurrence,
SVD) on a real 20 Newsgroups slice, the transport plan and penalty of ECR, the model file's
format 3 (and that version 2 files still load), and training choosing the decoder."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from sagetext.algorithms.ntm import ecr, trainer, word_embeddings
from sagetext.algorithms.ntm import model as ntm_model
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.errors import ClientError
from tests.conftest import SHARED_DATA
from tests.unit.conftest import Recording

NEWS = SHARED_DATA / "20newsgroups" / "prodlda_20news_clean"
SLICE_DOCS = 2000


@pytest.fixture(scope="module")
def news() -> tuple[list[str], list[np.ndarray]]:
    """The vocabulary and the word ids of the first 2,000 training documents of 20 Newsgroups."""
    if not (NEWS / "train.feat.gz").is_file():
        pytest.skip(f"20 Newsgroups not found at {NEWS} (needs ../shared/data beside the checkout)")
    vocab = [line.split()[0] for line in (NEWS / "vocab.txt").read_text().splitlines()]
    docs = []
    with gzip.open(NEWS / "train.feat.gz", "rt") as f:
        for line in f:
            docs.append(np.array([int(pair.split(":")[0]) - 1 for pair in line.split()[1:]], dtype=np.int64))
            if len(docs) == SLICE_DOCS:
                break
    return vocab, docs


def _counts(news: tuple[list[str], list[np.ndarray]]) -> tuple[np.ndarray, int]:
    vocab, docs = news
    return word_embeddings.count_corpus(len(vocab), len(docs), lambda a, b: docs[a:b], lambda x: x)


def test_pair_counts_are_document_frequencies_and_add_up_across_workers(news) -> None:
    vocab, docs = news
    counts, total = _counts(news)
    assert total == SLICE_DOCS
    present = np.zeros((len(docs), len(vocab)), dtype=bool)
    for r, ids in enumerate(docs):
        present[r, ids] = True
    assert np.array_equal(np.diag(counts), present.sum(0))
    i, j = vocab.index("god"), vocab.index("jesus")
    assert counts[i, j] == counts[j, i] == (present[:, i] & present[:, j]).sum() > 0
    # two workers' halves, summed by the all-reduce, give the whole; repeated ids count once
    halves = [word_embeddings.pair_document_counts(len(vocab), docs[a:b]).toarray()
              for a, b in ((0, 700), (700, SLICE_DOCS))]
    assert np.array_equal(halves[0] + halves[1], counts)
    doubled = word_embeddings.pair_document_counts(len(vocab), [np.concatenate([d, d]) for d in docs]).toarray()
    assert np.array_equal(doubled, counts)


def test_ppmi_is_the_positive_pmi_off_the_diagonal(news) -> None:
    vocab, _ = news
    counts, total = _counts(news)
    m = word_embeddings.ppmi(counts, total).toarray()
    assert (m >= 0).all() and not np.diag(m).any() and np.allclose(m, m.T)
    i, j = vocab.index("god"), vocab.index("jesus")
    assert m[i, j] == pytest.approx(np.log(counts[i, j] * total / (counts[i, i] * counts[j, j])))
    assert m[i, j] > 1.0  # words of one newsgroup


def test_embeddings_put_words_of_a_theme_together(news) -> None:
    vocab, _ = news
    counts, total = _counts(news)
    e, lengths = word_embeddings.embed(word_embeddings.ppmi(counts, total), word_embeddings.DIMS)
    assert e.shape == (len(vocab), word_embeddings.DIMS) and e.dtype == torch.float32
    seen = np.diag(counts) > 0
    assert torch.allclose(e[seen].norm(dim=1), torch.ones(int(seen.sum())), atol=1e-5)
    assert not e[~seen].any() and not lengths[~seen].any()  # words absent from the slice
    for word, theme in (("god", {"atheist", "religious", "religion", "christian", "belief", "believe", "bible"}),
                        ("windows", {"window", "unix", "application", "screen", "disk", "dos", "program"})):
        i = vocab.index(word)
        nearest = {vocab[j] for j in ((e - e[i]) ** 2).sum(1).argsort()[1:11].tolist()}
        assert len(nearest & theme) >= 2, (word, nearest)
    # the most common words co-occur with everything alike: short before the unit scaling
    common = np.argsort(-np.diag(counts))[:20]
    assert np.median(lengths[common].numpy()) < np.median(lengths[seen].numpy())


def test_the_truncated_svd_above_the_dense_limit_gives_the_same_geometry(news, monkeypatch) -> None:
    counts, total = _counts(news)
    m = word_embeddings.ppmi(counts, total)
    dense, dense_lengths = word_embeddings.embed(m, word_embeddings.DIMS)
    monkeypatch.setattr(word_embeddings, "DENSE_SVD_WORDS", 100)
    arpack, arpack_lengths = word_embeddings.embed(m, word_embeddings.DIMS)
    # the same subspace: inner products (so distances) agree; columns may differ in sign
    dense64, arpack64 = dense.double(), arpack.double()
    assert torch.allclose(dense64 @ dense64.T, arpack64 @ arpack64.T, atol=1e-5)
    assert torch.allclose(dense_lengths, arpack_lengths, atol=1e-8)


def test_the_embedding_decoder_needs_room() -> None:
    assert word_embeddings.fits(1994, 100) and word_embeddings.fits(word_embeddings.MAX_WORDS, 1000)
    assert not word_embeddings.fits(word_embeddings.MAX_WORDS + 1, 50)  # V x V counts too large
    assert not word_embeddings.fits(word_embeddings.DIMS, 2)  # no more words than dimensions
    assert not word_embeddings.fits(200, 300)  # fewer words than topics to start at


def test_sinkhorn_plan_has_the_topic_and_word_masses() -> None:
    torch.manual_seed(0)
    cost = torch.rand(4, 30) * 2
    mass = torch.rand(30) + 0.1
    log_b = torch.log(mass / mass.sum())
    plan, g = ecr.sinkhorn(cost, log_b, torch.zeros(30), 500)
    assert torch.allclose(plan.sum(1), torch.full((4,), 0.25), atol=1e-4)
    assert torch.allclose(plan.sum(0), mass / mass.sum(), atol=1e-5)
    warm, _ = ecr.sinkhorn(cost, log_b, g, 1)  # from the converged dual: the same plan at once
    assert torch.allclose(warm, plan, atol=1e-5)


def test_the_penalty_pulls_each_topic_to_its_own_words() -> None:
    """Two clusters of words, both topics started in one: the penalty's gradient sends one topic
    to the other cluster (each topic must carry half the mass)."""
    words = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(5, 1), torch.tensor([[0.0, 1.0]]).repeat(5, 1)])
    decoder = ecr.EmbeddingDecoder(2, 10, 2)
    decoder.set_words(words, torch.ones(10, dtype=torch.float64), seed=0)
    with torch.no_grad():
        decoder.topic_emb.copy_(torch.tensor([[0.9, 0.1], [0.8, 0.2]]))
    optimizer = torch.optim.SGD(decoder.parameters(), lr=1e-3)
    for _ in range(200):
        optimizer.zero_grad()
        decoder.penalty().backward()
        optimizer.step()
    nearest = decoder.cost().argmin(dim=1)
    assert {int(nearest[0]) // 5, int(nearest[1]) // 5} == {0, 1}
    assert bool(decoder.sinkhorn_warm)


def _embedding_model(feature_dim: int = 40, topics: int = 3) -> ntm_model.ProdLDA:
    torch.manual_seed(1)
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(feature_dim, topics, (6,), "relu", True, 5))
    e = torch.nn.functional.normalize(torch.randn(feature_dim, 5), dim=1)
    model.set_word_embeddings(e, torch.rand(feature_dim, dtype=torch.float64) + 0.5, seed=0)
    return model


def test_format_3_keeps_the_embedding_decoder(tmp_path: Path) -> None:
    model = _embedding_model()
    recon, kl = model(torch.rand(4, 40) * 3)
    (recon.sum() + kl.sum() + model.regulariser()).backward()
    assert model.embedding_decoder is not None and model.embedding_decoder.topic_emb.grad is not None
    model.eval()
    ntm_model.save(model, tmp_path)
    loaded = ntm_model.load(tmp_path)
    assert loaded.config.embedding_dims == 5 and loaded.decoder is None
    assert torch.equal(loaded.topic_word_logits(), model.topic_word_logits())
    counts = torch.rand(4, 40) * 3
    assert torch.allclose(loaded.topic_weights(counts), model.topic_weights(counts))
    beta = torch.softmax(model.topic_word_logits(), dim=1)  # the decoder's topics, ranked by log-beta
    assert torch.allclose(beta, model.embedding_decoder.beta().detach())


def test_a_version_2_file_loads_as_the_free_decoder_it_was(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(40, 3, (6,), "relu", True)).eval()
    ntm_model.save(model, tmp_path)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["format_version"] = 2
    del payload["config"]["embedding_dims"]
    torch.save(payload, tmp_path / "model.pt")
    loaded = ntm_model.load(tmp_path)
    assert loaded.config.embedding_dims == 0 and loaded.embedding_decoder is None
    assert torch.equal(loaded.topic_word_logits(), model.topic_word_logits())
    assert not loaded.regulariser().requires_grad and float(loaded.regulariser()) == 0.0


def _news_ctx(tmp_path: Path, vocab: list[str], docs: list[np.ndarray], checkpoint_dir: Path | None = None,
              **hyperparameters: str) -> TrainingContext:
    paths = Paths(tmp_path)
    rows = np.zeros((len(docs), len(vocab)), dtype=np.int64)
    for r, ids in enumerate(docs):
        np.add.at(rows[r], ids, 1)
    folder = paths.channel_dir("train")
    folder.mkdir(parents=True)
    (folder / "data.csv").write_text("".join(",".join(map(str, row)) + "\n" for row in rows.tolist()))
    aux = paths.channel_dir("auxiliary")
    aux.mkdir(parents=True)
    (aux / "vocab.txt").write_text("\n".join(vocab) + "\n")
    channels = {"train": Channel("train", content_type="text/csv", paths=paths),
                "auxiliary": Channel("auxiliary", content_type="text/plain", paths=paths)}
    hp = parse({"feature_dim": str(len(vocab)), **hyperparameters}, Spec.load("ntm"))
    return TrainingContext(hyperparameters=hp, channels=channels, model_dir=tmp_path / "model",
                           output_data_dir=tmp_path / "output", checkpoints=Checkpoints(checkpoint_dir, hp),
                           metrics=Recording())


def test_training_on_a_real_slice_uses_the_embedding_decoder(news, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """SageMaker's defaults (feature_dim, num_topics) on 600 documents, 3 epochs: the decoder is the
    embedding one, the model file keeps it, and the topics are distinct."""
    vocab, docs = news
    ctx = _news_ctx(tmp_path, vocab, docs[:600], num_topics="8", epochs="3")
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    assert "NTM: embedding decoder on 25-dimensional word embeddings from the training corpus" in caplog.text
    loaded = ntm_model.load(ctx.model_dir)
    assert loaded.config.embedding_dims == word_embeddings.DIMS and loaded.decoder is None
    report = json.loads((ctx.model_dir / "topics.json").read_text())
    # each topic owns a cluster of words: 8 topics' top 10 words barely overlap (the free decoder
    # after 3 epochs repeats the common words across topics)
    assert report["tu"] >= 0.85, report
    # words absent from these 600 documents have no embedding: they head no topic
    seen = {vocab[i] for d in docs[:600] for i in d.tolist()}
    assert len(seen) < len(vocab) and all(w in seen for t in report["topics"] for w in t["words"][:10]), report


def test_too_few_words_keep_the_free_decoder_and_say_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vocab = [f"w{i}" for i in range(20)]
    docs = [np.array([i % 20, (i + 1) % 20, (i + 7) % 20]) for i in range(40)]
    ctx = _news_ctx(tmp_path, vocab, docs, num_topics="3", epochs="1")
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    assert "NTM: free decoder matrix (no corpus word embeddings)" in caplog.text and "feature_dim is 20" in caplog.text
    assert ntm_model.load(ctx.model_dir).config.embedding_dims == 0


def test_the_free_decoder_setting_keeps_the_free_decoder(news, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """SAGETEXT_NTM_DECODER=free: the same job as the real-slice test trains today's free decoder."""
    vocab, docs = news
    ctx = _news_ctx(tmp_path, vocab, docs[:300], num_topics="4", epochs="1")
    ctx = dataclasses.replace(ctx, settings=Settings.from_env({"SAGETEXT_NTM_DECODER": "Free"}))
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer.train(ctx)
    assert "NTM: free decoder matrix, as SAGETEXT_NTM_DECODER=free asks" in caplog.text
    loaded = ntm_model.load(ctx.model_dir)
    assert loaded.config.embedding_dims == 0 and loaded.embedding_decoder is None and loaded.decoder is not None
    with pytest.raises(ClientError, match="SAGETEXT_NTM_DECODER='lda': expected one of embedding, free"):
        Settings.from_env({"SAGETEXT_NTM_DECODER": "lda"})


def test_a_restarted_job_ends_with_the_uninterrupted_embedding_model(news, tmp_path: Path) -> None:
    """Killed after epoch 1's checkpoint and restarted: the same topic embeddings and Sinkhorn
    warm start as a run never killed (both are in the checkpoint)."""
    vocab, docs = news
    states = []
    for name, runs in (("whole", ("2",)), ("restarted", ("1", "2"))):
        for epochs in runs:
            torch.manual_seed(7)
            ctx = _news_ctx(tmp_path / name / epochs, vocab, docs[:300], tmp_path / name / "ckpt",
                            num_topics="4", epochs=epochs, num_patience_epochs="9")
            trainer.train(ctx)
        states.append(torch.load(tmp_path / name / "ckpt" / "checkpoint.pt", weights_only=True)["state"]["model"])
    assert states[0].keys() == states[1].keys() and "embedding_decoder.sinkhorn_g" in states[0]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_word_masses_follow_topical_words_as_far_as_the_topics_allow(news) -> None:
    """On real embeddings the power rises with fewer topics, leaves ``OWNED_WORDS`` effective
    words per topic, and puts more mass on a topical word than on a general one."""
    vocab, docs = news
    counts, total = _counts(news)
    _, lengths = word_embeddings.embed(word_embeddings.ppmi(counts, total), word_embeddings.DIMS)
    few, many = ecr.mass_power(lengths, 5), ecr.mass_power(lengths, 60)
    assert ecr.MIN_POWER <= many < few <= ecr.MAX_POWER
    assert ecr.effective_words(lengths, many) == pytest.approx(ecr.OWNED_WORDS * 60, rel=1e-4)
    assert ecr.mass_power(lengths, len(vocab)) == ecr.MIN_POWER  # not enough words: the floor
    masses = ecr.log_masses(lengths, few).exp()
    assert masses.sum().item() == pytest.approx(1.0)
    topical, general = vocab.index("atheism"), vocab.index("however")
    assert masses[topical] > 10 * masses[general]


def test_flat_lengths_keep_the_highest_power_and_equal_masses() -> None:
    lengths = torch.full((50,), 2.0, dtype=torch.float64)
    assert ecr.mass_power(lengths, 2) == ecr.MAX_POWER  # every power leaves all 50 words
    decoder = ecr.EmbeddingDecoder(2, 50, 3)
    decoder.set_words(torch.nn.functional.normalize(torch.randn(50, 3), dim=1), lengths, seed=0)
    assert torch.allclose(decoder.log_word_mass.exp(), torch.full((50,), 0.02))
