"""BlazingText: supervised text classification (fastText's model and ``model.bin``).

``ALGORITHM`` is what ``sagetext.algorithms.get("blazingtext")`` returns: ``validate`` checks
the hyperparameters against the channels, ``train`` trains and writes ``model.bin`` (fastText
format v12), ``load`` returns the predictor for a ``model.bin`` (ours or fastText's). The
word2vec modes (cbow, skipgram, batch_skipgram) are not in this build yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sagetext.algorithms.blazingtext import trainer
from sagetext.algorithms.blazingtext.predictor import SupervisedPredictor
from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError

SUPPORTED_MODES = ("supervised",)


class BlazingText:
    name = "blazingtext"

    def validate(self, hyperparameters: Hyperparameters, channels: Mapping[str, Channel]) -> None:
        mode = hyperparameters.mode
        if mode not in SUPPORTED_MODES:
            raise ClientError(f"mode={mode} is not available in this build yet; supported: {', '.join(SUPPORTED_MODES)}")
        if "train" not in channels:
            given = ", ".join(sorted(channels)) or "none"
            raise ClientError(f"the 'train' channel is required (channels given: {given})")
        if hyperparameters.early_stopping and "validation" not in channels:
            raise ClientError("early_stopping=true needs a 'validation' channel; add one or set early_stopping=false")

    def train(self, ctx: TrainingContext) -> None:
        self.validate(ctx.hyperparameters, ctx.channels)
        trainer.train(ctx)

    def load(self, model_dir: Path) -> SupervisedPredictor:
        return SupervisedPredictor.load(model_dir)


ALGORITHM = BlazingText()
