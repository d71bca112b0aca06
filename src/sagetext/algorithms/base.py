"""The small interface through which an algorithm plugs into training and serving.

Not a base class to inherit code from: each algorithm module exposes an object with these
members, and ``sagetext.algorithms.get(name)`` finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters


class Predictor(Protocol):
    """A loaded model that answers decoded requests with plain Python values.

    ``content_types`` are the request types it accepts; ``response_type`` picks the type of
    the answer from the request's type and its Accept header (already parsed into a list;
    empty when missing or ``*/*``) and returns None when nothing acceptable can be produced.
    ``predict`` gets the decoded body (see ``sagetext.serving.codecs``) and returns what the
    codec for the response type encodes.
    """

    content_types: tuple[str, ...]

    def response_type(self, content_type: str, accept: list[str]) -> str | None: ...

    def predict(self, data: Any, content_type: str, response_type: str) -> Any: ...


class Algorithm(Protocol):
    name: str  # also the name of its spec in configs/
    hyperparameter_view: type[Any]  # its typed view of the spec (``Hyperparameters.typed``)

    def validate(self, hyperparameters: Hyperparameters, channels: Mapping[str, Channel]) -> None:
        """Checks that need no data (required channels, combinations); raise ClientError."""

    def train(self, ctx: TrainingContext) -> None:
        """Train and, on rank 0, write the model files into ``ctx.model_dir``."""

    def load(self, model_dir: Path) -> Predictor:
        """Load what ``train`` wrote (or a compatible pretrained model) for serving."""
