"""The inference server's settings: names and defaults from ``configs/serving.toml``, each
overridable by the environment variable it names (SageMaker's names, or ours,
``SAGETEXT_*``, where SageMaker has none). A setting may give some algorithms their own
default (``algorithm_defaults``); the environment variable, when set, wins for every algorithm.

A bad value raises ``ClientError`` naming every bad variable, its value and what is accepted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from sagetext import algorithms, specs
from sagetext.contract.cluster import cpu_count
from sagetext.data.media_types import media_type
from sagetext.errors import ClientError
from sagetext.serving import codecs

BATCH_STRATEGIES = ("MULTI_RECORD", "SINGLE_RECORD")
MEGABYTE = 1024 * 1024
MAX_TRANSFORM_PAYLOAD_MB = 100  # the largest MaxPayloadInMB a transform job may have

_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (int, "an integer"),
    "float": (float, "a number"),
    "str": (str, "a string"),
}


@dataclass(frozen=True)
class ServerSettings:
    port: int
    workers: int  # resolved: never 0
    timeout: int
    max_payload_mb: float
    default_accept: str  # a canonical media type, or "" for the predictor's own choice
    max_concurrent_transforms: int  # resolved: never 0
    batch_strategy: str
    batch_payload_mb: int
    max_instances_per_request: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ,
                 algorithm: str | None = None) -> "ServerSettings":
        """Defaults from the spec (``algorithm``'s own where it has one), overridden by the
        environment; 0 workers = CPU count, 0 concurrent transforms = the worker count."""
        table = _spec()
        values: dict[str, Any] = {}
        errors: list[str] = []
        for name, entry in table.items():
            raw = env.get(entry["env"], "").strip()
            if not raw:
                values[name] = entry.get("algorithm_defaults", {}).get(algorithm, entry["default"])
                continue
            parse, expected = _PARSERS[entry["type"]]
            try:
                values[name] = parse(raw)
            except ValueError:
                errors.append(f"{entry['env']}={raw!r}: expected {expected}")
        errors += [f"{table[name]['env']}={values[name]!r}: {problem}"
                   for name, problem in _problems(values)]
        if errors:
            raise ClientError("invalid server settings: " + "; ".join(errors))
        values["default_accept"] = media_type(values["default_accept"])
        values["batch_strategy"] = values["batch_strategy"].upper()
        values["workers"] = values["workers"] or cpu_count()
        values["max_concurrent_transforms"] = values["max_concurrent_transforms"] or values["workers"]
        return cls(**values)

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * MEGABYTE)

    @property
    def transform_payload_mb(self) -> int:
        """MaxPayloadInMB for /execution-parameters: ``batch_payload_mb``, never more than the
        server accepts, in whole MB and at least 1 (0 would mean "stream without a limit")."""
        return max(1, min(self.batch_payload_mb, math.floor(self.max_payload_mb)))


def env_var(setting: str) -> str:
    """The environment variable that sets ``setting``, e.g. ``port`` -> SAGEMAKER_BIND_TO_PORT."""
    return str(_spec()[setting]["env"])


def _spec() -> dict[str, Any]:
    table = specs.load("serving")["settings"]
    names = {f.name for f in fields(ServerSettings)}
    if set(table) != names:  # the spec and this class must list the same settings
        raise RuntimeError(f"configs/serving.toml settings {sorted(table)} do not match "
                           f"ServerSettings fields {sorted(names)}")
    for name, entry in table.items():
        unknown = set(entry.get("algorithm_defaults", {})) - set(algorithms.MODULES)
        if unknown:
            raise RuntimeError(f"configs/serving.toml settings.{name}.algorithm_defaults names "
                               f"{sorted(unknown)}, which are not algorithms (known: "
                               f"{', '.join(sorted(algorithms.MODULES))})")
    return table


def _problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(setting, what is wrong) for each out-of-range value that did parse."""
    checks: list[tuple[str, Callable[[Any], bool], str]] = [
        ("port", lambda v: 1 <= v <= 65535, "expected a port in [1, 65535]"),
        ("workers", lambda v: v >= 0, "expected an integer >= 0 (0 = one per CPU)"),
        ("timeout", lambda v: v >= 1, "expected whole seconds >= 1"),
        ("max_payload_mb", lambda v: math.isfinite(v) and v > 0, "expected a number of MB > 0"),
        ("default_accept", lambda v: not v or media_type(v) in codecs.CODECS,
         f"expected empty or one of {', '.join(codecs.SUPPORTED)}"),
        ("max_concurrent_transforms", lambda v: v >= 0, "expected an integer >= 0"),
        ("batch_strategy", lambda v: v.upper() in BATCH_STRATEGIES,
         f"expected one of {', '.join(BATCH_STRATEGIES)}"),
        ("batch_payload_mb", lambda v: 1 <= v <= MAX_TRANSFORM_PAYLOAD_MB,
         f"expected whole MB in [1, {MAX_TRANSFORM_PAYLOAD_MB}]"),
        ("max_instances_per_request", lambda v: v >= 1, "expected an integer >= 1"),
    ]
    return [(name, problem) for name, ok, problem in checks
            if name in values and not ok(values[name])]
