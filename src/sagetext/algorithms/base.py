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

    It declares its media types (``sagetext.data.media_types``) and ``serving.negotiation``
    decides, for every algorithm alike, which of them a request gets:

    ``answers`` maps each request type it accepts to the response types it can answer that
    request with, its default first. ``honours_accept`` is False for a predictor that answers
    with that default whatever Accept says (BlazingText), True where Accept chooses among the
    answers (406 when none is acceptable).

    ``predict`` gets the decoded body (see ``sagetext.serving.codecs``) with the request and
    response types, and returns what the codec for the response type encodes.
    """

    answers: Mapping[str, tuple[str, ...]]
    honours_accept: bool

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
