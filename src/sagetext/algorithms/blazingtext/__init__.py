"""BlazingText: fastText-style text classification (``mode=supervised``) and word2vec
(``cbow``, ``skipgram``, ``batch_skipgram``).

Parts: ``fasttext_format`` (fastText's dictionary, ``.bin`` and ``.ftz`` files), ``supervised``
(the classifier: training and serving) and ``word2vec`` (the word-vector modes, with two
engines, ``gensim_engine`` and ``torch_engine``, writing the same artifacts).

``ALGORITHM`` is what ``sagetext.algorithms.get("blazingtext")`` returns: ``validate`` checks
the hyperparameters against the channels, ``train`` runs the mode's trainer, and ``load`` picks
the predictor from the files in the model folder, as SageMaker's hosting does: ``model.bin``
(a supervised model, ours or fastText's; an unsupervised fastText .bin is served as word
vectors) or ``vectors.bin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagetext.algorithms.blazingtext import word2vec
from sagetext.algorithms.blazingtext.fasttext_format import model_file
from sagetext.algorithms.blazingtext.fasttext_format.model_file import MODEL_FILE
from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec import vectors
from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError


class BlazingText:
    name = "blazingtext"
    hyperparameter_view = BlazingTextHyperparameters

    def validate(self, hyperparameters: Hyperparameters, channels: Mapping[str, Channel]) -> None:
        if "train" not in channels:
            given = ", ".join(sorted(channels)) or "none"
            raise ClientError(f"the 'train' channel is required (channels given: {given})")
        hp = hyperparameters.typed(BlazingTextHyperparameters)
        if hp.mode != "supervised":
            word2vec.check_hyperparameters(hp)
        elif hp.early_stopping and "validation" not in channels:
            raise ClientError("early_stopping=true needs a 'validation' channel; add one or set early_stopping=false")

    def train(self, ctx: TrainingContext) -> None:  # the runner has called validate
        if ctx.hyperparameters.typed(BlazingTextHyperparameters).mode == "supervised":
            from sagetext.algorithms.blazingtext.supervised import trainer

            trainer.train(ctx)
        else:
            word2vec.train(ctx)

    def load(self, model_dir: Path) -> Any:
        from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor

        model_bin = Path(model_dir) / MODEL_FILE
        if model_bin.is_file() and model_file.model_name(model_bin) in ("cbow", "skipgram"):
            return vectors.VectorsPredictor(vectors.read_vectors(model_bin))
        if model_bin.is_file() or not (Path(model_dir) / vectors.VECTORS_BIN).is_file():
            return SupervisedPredictor.load(model_dir)
        return vectors.load_vectors(model_dir)


ALGORITHM = BlazingText()
