"""Training settings that come from the environment rather than from hyperparameters.

``Settings.from_env`` reads every variable the training side uses, once, when a job starts, and
reports every bad value at once (``ClientError``: the variable, its value and what is
accepted). The result travels in ``TrainingContext.settings``; nothing below ``training``
reads ``os.environ`` for these. ``sagetext train`` builds a ``Settings`` from its arguments,
and launched workers get the launcher's as JSON on their command line (``to_json``).

The defaults live here and only here; README's table of training settings names each variable.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sagetext.errors import ClientError

WORD2VEC_ENGINES = ("native", "gensim", "torch")
NTM_DECODERS = ("embedding", "free")


@dataclass(frozen=True)
class Settings:
    algorithm: str | None = None  # SAGETEXT_ALGORITHM: which algorithm the image trains
    device: str | None = None  # SAGETEXT_DEVICE: "cpu" or "cuda" forces one; None = CUDA when present
    cpu_workers: int = 1  # SAGETEXT_CPU_WORKERS: worker processes per host without a GPU
    # SAGETEXT_TRAIN_THREADS: BlazingText Hogwild threads per worker on CPU; None: 1 for supervised,
    # the worker's share of the cores for word2vec's native engine
    train_threads: int | None = None
    # SAGETEXT_WORD2VEC_ENGINE: native, gensim or torch; None: native where it was built, else gensim
    word2vec_engine: str | None = None
    # SAGETEXT_WORD2VEC_SYNCS: the native word2vec engine's model combinations (and stop points) an
    # epoch; None: its default
    word2vec_syncs: int | None = None
    # SAGETEXT_NTM_DECODER: embedding (topics among corpus word embeddings, the default where the
    # vocabulary allows) or free (a free topic-word matrix: lower perplexity, topics repeat more)
    ntm_decoder: str = "embedding"
    master_port: int = 29500  # SAGETEXT_MASTER_PORT: rendezvous port on the first host (several hosts)
    pipe_wait_seconds: float = 600.0  # SAGETEXT_PIPE_WAIT_SECONDS: how long to wait for a Pipe-mode FIFO
    job_name: str = "sagetext-job"  # TRAINING_JOB_NAME (SageMaker's): names the workers' rendezvous

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings the environment gives (defaults for unset or empty variables)."""
        values: dict[str, Any] = {}
        errors: list[str] = []
        for name, (variable, read) in VARIABLES.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            try:
                values[name] = read(text)
            except ValueError as exc:
                errors.append(f"{variable}={text!r}: {exc}")
        if errors:
            raise ClientError("Invalid settings: " + "; ".join(errors))
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


def env_var(setting: str) -> str:
    """The environment variable that sets ``setting``, e.g. ``cpu_workers`` -> SAGETEXT_CPU_WORKERS."""
    return VARIABLES[setting][0]


def read(setting: str, env: Mapping[str, str] = os.environ) -> Any:
    """One setting alone, checked as ``from_env`` checks it (serving reads ``device`` so)."""
    variable = env_var(setting)
    return getattr(Settings.from_env({variable: env[variable]} if variable in env else {}), setting)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("expected a positive integer")
    return int(text)


def _device(text: str) -> str:
    device = text.lower()
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError("expected cpu or cuda")
    return device


def _engine(text: str) -> str:
    engine = text.lower()
    if engine not in WORD2VEC_ENGINES:
        raise ValueError(f"expected one of {', '.join(WORD2VEC_ENGINES)}")
    return engine


def _ntm_decoder(text: str) -> str:
    decoder = text.lower()
    if decoder not in NTM_DECODERS:
        raise ValueError(f"expected one of {', '.join(NTM_DECODERS)}")
    return decoder


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("expected a port in [1, 65535]")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds >= 0")
    return value


VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {  # setting: (environment variable, reader)
    "algorithm": ("SAGETEXT_ALGORITHM", str),
    "device": ("SAGETEXT_DEVICE", _device),
    "cpu_workers": ("SAGETEXT_CPU_WORKERS", _positive_int),
    "train_threads": ("SAGETEXT_TRAIN_THREADS", _positive_int),
    "word2vec_engine": ("SAGETEXT_WORD2VEC_ENGINE", _engine),
    "word2vec_syncs": ("SAGETEXT_WORD2VEC_SYNCS", _positive_int),
    "ntm_decoder": ("SAGETEXT_NTM_DECODER", _ntm_decoder),
    "master_port": ("SAGETEXT_MASTER_PORT", _port),
    "pipe_wait_seconds": ("SAGETEXT_PIPE_WAIT_SECONDS", _seconds),
    "job_name": ("TRAINING_JOB_NAME", str),
}
