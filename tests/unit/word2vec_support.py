"""What the word2vec engines' tests share: a training context on a folder, random windows for
one step against a reference, gensim's cbow on the same slice, and the artifact checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sagetext.algorithms.blazingtext.word2vec import evaluation
from sagetext.algorithms.blazingtext.word2vec.corpus import read_sentences
from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import Windows
from sagetext.algorithms.blazingtext.word2vec.vectors import read_vectors
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.metrics import MetricLogger
from sagetext.contract.paths import Paths
from tests.conftest import FakeOptMl

QUALITY = {"mode": "cbow", "epochs": "3", "vector_dim": "50", "seed": "0"}  # settings of the quality runs


def make_ctx(root: Path, text: bytes | None, **hp: str) -> TrainingContext:
    """A training context on ``root`` whose train channel holds ``text`` (none when None)."""
    folder = root / "input" / "data" / "train"
    if text is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "corpus.txt").write_bytes(text)
    values = parse(hp, Spec.load("blazingtext"))
    return TrainingContext(values, {"train": Channel("train", paths=Paths(root))}, root / "model", root / "output",
                           Checkpoints(None, values), metrics=MetricLogger(enabled=False))


def ws353(model_dir: Path) -> float:
    return json.loads((model_dir / "eval.json").read_text())["EN-WS-353-ALL.txt"]["spearmans_rho"]


def random_windows(generator: torch.Generator, n_words: int, windows: int, width: int, k: int, *,
                   unit_scales: bool = False, device: torch.device = torch.device("cpu")) -> Windows:
    """Random windows with repeated rows, padding, a window without context and skipped negatives;
    scales below 1 unless ``unit_scales`` (an engine that applies each window at once)."""
    context = torch.randint(0, n_words, (windows, width), generator=generator)
    context_mask = (torch.rand(windows, width, generator=generator) < 0.7).float()
    context_mask[0] = 0
    targets = torch.randint(0, n_words, (windows, 1 + k), generator=generator)
    target_mask = (torch.rand(windows, 1 + k, generator=generator) < 0.8).float()
    target_mask[:, 0] = 1
    lr = torch.rand(windows, generator=generator) * 0.2
    if unit_scales:
        scales = torch.ones(windows, width), torch.ones(windows, 1 + k)
    else:
        scales = (0.5 + torch.rand(windows, width, generator=generator) / 2,
                  0.5 + torch.rand(windows, 1 + k, generator=generator) / 2)
    parts = (context, context_mask, targets, target_mask, lr, *scales)
    return Windows(*(part.to(device) for part in parts))


def gensim_cbow_ws353(corpus_slice: Path) -> float:
    """WS-353 of gensim's cbow with the QUALITY settings on the slice, one worker."""
    from gensim.models import Word2Vec

    with open(corpus_slice, "rb") as f:
        sentences = list(read_sentences(f))
    reference = Word2Vec(sentences, sg=0, vector_size=50, window=5, negative=5, sample=1e-4, min_count=5,
                         epochs=3, alpha=0.05, min_alpha=0.05 * 1e-4, workers=1, seed=0)
    kv = reference.wv
    return evaluation.evaluate_ws353(lambda w: kv[w] if w in kv else None)["EN-WS-353-ALL.txt"]["spearmans_rho"]


def check_artifacts_load_in_gensim(model_dir: Path) -> None:
    """vectors.txt and vectors.bin load in gensim as the same vectors, with the slice's
    vocabulary and sense; eval.json names the three WS-353 files."""
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    text = KeyedVectors.load_word2vec_format(str(model_dir / "vectors.txt"), binary=False)
    binary = load_facebook_vectors(str(model_dir / "vectors.bin"))  # fastText's .bin in every mode
    assert text.index_to_key == binary.index_to_key and text.index_to_key[:3] == ["the", "of", "and"]
    np.testing.assert_array_equal(text.vectors, binary.vectors)
    assert text.vectors.shape[1] == 50 and np.isfinite(text.vectors).all()
    assert text.similarity("two", "three") > text.similarity("two", "anarchism") + 0.2
    result = json.loads((model_dir / "eval.json").read_text())
    assert list(result) == [*evaluation.WS353_FILES, "mean_rho"]


def check_sigterm_then_resume_is_uninterrupted(root: Path, text: bytes, env: dict[str, str], mode: str) -> None:
    """Two-worker jobs through ./train: one whole; one stopped by SIGTERM (exit 143, a checkpoint)
    and restarted, which must end with exactly the whole job's vectors."""
    from tests.reliability.faults import Watched, run_job

    def job(name: str) -> FakeOptMl:
        opt_ml = FakeOptMl(root / name)
        opt_ml.hyperparameters({"mode": mode, "epochs": "4", "vector_dim": "16", "evaluation": "false",
                                "min_count": "3"})
        opt_ml.channel("train", {"corpus.txt": text})
        opt_ml.checkpoints(root / f"{name}_checkpoints")
        return opt_ml

    whole = job("whole")
    done = run_job(whole, "word2vec", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stopped = job("stopped")
    watched = Watched(stopped, "word2vec", env)
    code, _, log, _ = watched.sigterm(timeout=120)
    assert code == 143, log[-3000:]
    assert "stopped by SIGTERM" in log, log[-3000:]
    restarted = run_job(stopped, "word2vec", env)
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-3000:]
    assert "Resuming from checkpoint: epoch " in restarted.stdout
    a, b = read_vectors(whole.model / "vectors.bin"), read_vectors(stopped.model / "vectors.bin")
    assert a.words == b.words
    np.testing.assert_array_equal(a.rows, b.rows)
