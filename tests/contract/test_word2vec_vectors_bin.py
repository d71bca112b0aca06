"""``vectors.bin`` from the real ``train`` executable is fastText's ``.bin`` in every word2vec
mode: ``fasttext.load_model`` and gensim's ``load_facebook_vectors`` read it and give the
vectors of ``vectors.txt`` (word2vec text), and the endpoint serves it."""

from __future__ import annotations

import numpy as np
import pytest

from sagetext import algorithms
from tests.conftest import REPO, FakeOptMl, RunTrain

SAMPLE = REPO / "samples" / "blazingtext"


@pytest.mark.parametrize("mode", ["cbow", "skipgram", "batch_skipgram"])
def test_vectors_bin_loads_in_fasttext_and_gensim(opt_ml: FakeOptMl, mode: str, run_train: RunTrain) -> None:
    fasttext = pytest.importorskip("fasttext")
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    text = " ".join(line.split(" ", 1)[1] for line in (SAMPLE / "train.txt").read_text().splitlines())
    opt_ml.hyperparameters({"mode": mode, "epochs": "2", "min_count": "2", "vector_dim": "12", "evaluation": "false"})
    opt_ml.channel("train", {"corpus.txt": text + "\n"})
    done = run_train(opt_ml, "blazingtext", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr

    words = KeyedVectors.load_word2vec_format(str(opt_ml.model / "vectors.txt"), binary=False)
    model = fasttext.load_model(str(opt_ml.model / "vectors.bin"))
    assert model.words == words.index_to_key and model.get_dimension() == 12
    assert model.f.getArgs().model.name == ("cbow" if mode == "cbow" else "skipgram")
    np.testing.assert_array_equal(np.stack([model.get_word_vector(w) for w in model.words]), words.vectors)
    assert not model.get_word_vector("zzzunseen").any()  # no subwords: unknown words get zeros, as on AWS

    gensim_vectors = load_facebook_vectors(str(opt_ml.model / "vectors.bin"))
    assert gensim_vectors.index_to_key == words.index_to_key
    np.testing.assert_array_equal(gensim_vectors.vectors, words.vectors)

    predictor = algorithms.get("blazingtext").load(opt_ml.model)
    answer = predictor.predict({"instances": [words.index_to_key[0]]}, "application/json", "application/json")
    np.testing.assert_array_equal(np.float32(answer[0]["vector"]), words.vectors[0])
