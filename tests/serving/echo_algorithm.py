"""A stand-in algorithm for the serving tests: its predictor echoes what it was sent.

``load`` reads ``greeting.txt`` from the model directory (and fails without it), so a test
can see that each worker loaded the model it was given. JSON requests can ask for a slow
answer (``{"sleep": s}``), a client error (``{"bad": ...}``) or a crash (``{"crash": ...}``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError

# request type -> the response types it can be answered with, the default first
ANSWERS = {
    JSON: (JSON, JSONLINES),
    JSONLINES: (JSONLINES, JSON),
    CSV: (JSON, CSV),
    RECORDIO: (RECORDIO, JSON),
}


class EchoPredictor:
    answers = ANSWERS
    honours_accept = True

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def predict(self, data: Any, content_type: str, response_type: str) -> Any:
        if content_type == JSON:
            items = self._commands(data)
        elif content_type == JSONLINES:
            items = data
        elif content_type == CSV:
            items = [{"sum": float(row.sum())} for row in data]
        else:
            items = [{"sum": float(np.asarray(record["features"]["values"]).sum()),
                      "uid": record["uid"]} for record in data]
        return self._answer(items, response_type)

    def _commands(self, data: Any) -> list[Any]:
        if isinstance(data, dict):
            if "crash" in data:
                raise RuntimeError("secret internal detail")
            if "bad" in data:
                raise ClientError("instance 0 has no 'data' field")
            time.sleep(float(data.get("sleep", 0)))
            return list(data.get("instances", []))
        return [data]

    def _answer(self, items: list[Any], response_type: str) -> Any:
        if response_type == JSON:
            import torch

            return {"predictions": items, "greeting": self.greeting, "pid": os.getpid(),
                    "torch_threads": torch.get_num_threads()}
        if response_type == JSONLINES:
            return items
        if response_type == CSV:
            return np.array([item["sum"] for item in items])
        return [{"label": {"sum": np.array([item["sum"]])}, "uid": item["uid"]} for item in items]


class EchoAlgorithm:
    name = "echo"

    def load(self, model_dir: Path) -> EchoPredictor:
        return EchoPredictor((model_dir / "greeting.txt").read_text("utf-8").strip())


ALGORITHM = EchoAlgorithm()
