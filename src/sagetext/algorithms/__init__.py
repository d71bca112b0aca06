"""The algorithms sagetext serves, by the name ``SAGETEXT_ALGORITHM`` gives."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sagetext.contract.settings import env_var
from sagetext.errors import ClientError

if TYPE_CHECKING:  # the algorithms import torch; the server's master process must not
    from sagetext.algorithms.base import Algorithm

ALGORITHM_ENV = env_var("algorithm")  # SAGETEXT_ALGORITHM
MODULES = {
    "blazingtext": "sagetext.algorithms.blazingtext",
    "ntm": "sagetext.algorithms.ntm",
    "seq2seq": "sagetext.algorithms.seq2seq",
}


def check(name: str | None) -> str:
    """``name`` if this build has that algorithm, else a ClientError listing the known ones."""
    if name not in MODULES:
        known = ", ".join(sorted(MODULES))
        raise ClientError(f"{ALGORITHM_ENV}={name!r} is not an algorithm of this build (known: {known})")
    return name


def get(name: str | None) -> "Algorithm":
    """The algorithm object exported as ``ALGORITHM`` by its module."""
    return importlib.import_module(MODULES[check(name)]).ALGORITHM
