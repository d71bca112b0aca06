"""Read the TOML specs shipped in ``configs/`` (packaged as ``sagetext.configs``)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import tomllib


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """The parsed ``configs/<name>.toml``, e.g. ``load("blazingtext")``."""
    text = resources.files("sagetext.configs").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def metric_definitions(algorithm: str) -> list[dict[str, str]]:
    """The ``MetricDefinitions`` to give an Estimator for this algorithm's images."""
    return [{"Name": d["Name"], "Regex": d["Regex"]} for d in load(algorithm).get("metric_definitions", [])]


def channels(algorithm: str, mode: str | None = None) -> dict[str, dict[str, Any]]:
    """The channels the algorithm reads (in ``mode``, when its channels depend on the mode), by name."""
    return {name: entry for name, entry in load(algorithm).get("channels", {}).items()
            if mode is None or mode in entry.get("modes", [mode])}
