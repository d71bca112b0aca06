"""The algorithms sagetext serves, by the name ``SAGETEXT_ALGORITHM`` gives."""

from __future__ import annotations

import importlib

from sagetext.algorithms.base import Algorithm
from sagetext.errors import ClientError

ALGORITHM_ENV = "SAGETEXT_ALGORITHM"
MODULES = {
    "blazingtext": "sagetext.algorithms.blazingtext",
}


def get(name: str | None) -> Algorithm:
    """The algorithm object exported as ``ALGORITHM`` by its module."""
    if name not in MODULES:
        known = ", ".join(sorted(MODULES))
        raise ClientError(f"{ALGORITHM_ENV}={name!r} is not an algorithm of this build (known: {known})")
    return importlib.import_module(MODULES[name]).ALGORITHM
