"""NTM: SageMaker's Neural Topic Model, reimplemented as ProdLDA in PyTorch.

``ALGORITHM`` plugs into training (``SAGETEXT_ALGORITHM=ntm``: channels ``train``, optional
``validation``, ``test`` and ``auxiliary``) and serving (topic weights per document).
Modules: ``model`` (the network and its file), ``trainer`` (the loop), ``coherence`` (TU,
WETC, NPMI), ``topics`` (summary and topics.json), ``predictor`` (requests).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sagetext.algorithms.ntm.hyperparameters import NtmHyperparameters
from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError

if TYPE_CHECKING:  # torch is imported only when training or serving starts
    from sagetext.algorithms.ntm.predictor import NtmPredictor

REPLICATED = ("validation", "test", "auxiliary")


class Ntm:
    name = "ntm"
    hyperparameter_view = NtmHyperparameters

    def validate(self, hyperparameters: Hyperparameters, channels: Mapping[str, Channel]) -> None:
        if "train" not in channels:
            given = ", ".join(sorted(channels)) or "none"
            raise ClientError(f"the 'train' channel is required but missing (channels given: {given})")
        for name in REPLICATED:
            channel = channels.get(name)
            if channel is not None and channel.distribution != "FullyReplicated":
                raise ClientError(f"channel '{name}': S3DistributionType={channel.distribution!r}; "
                                  "NTM needs FullyReplicated for validation, test and auxiliary")

    def train(self, ctx: TrainingContext) -> None:
        from sagetext.algorithms.ntm import trainer

        trainer.train(ctx)

    def load(self, model_dir: Path) -> "NtmPredictor":
        from sagetext.algorithms.ntm.predictor import NtmPredictor

        return NtmPredictor.load(model_dir)


ALGORITHM = Ntm()
