"""Parse ``hyperparameters.json`` against an algorithm's spec in ``configs/``.

Values arrive as strings (the SageMaker API is a string-to-string map): Python
booleans as ``True``/``False``, lists JSON-encoded as ``"[30, 20]"``. Every problem is
collected and reported at once, each naming the field, the value and what is accepted.
Unknown names are errors, each with the closest accepted name when one is close and the list
of accepted names once, except the platform's own keys (``sagemaker_*`` and
``_tuning_objective_metric``).

Algorithms read a typed view: each declares a frozen dataclass with one field per name of its
spec, typed as ``field_type`` says and without defaults (the spec gives them), and gets it
filled from the parsed values with ``Hyperparameters.typed``; ``view_mismatches`` keeps the
dataclass and the spec equal (a unit test runs it for every algorithm).
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Optional, TypeVar, Union

from sagetext import specs
from sagetext.contract.channels import closest
from sagetext.errors import ClientError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

View = TypeVar("View", bound="DataclassInstance")

RESERVED_PREFIX = "sagemaker_"
RESERVED_KEYS = frozenset({"_tuning_objective_metric"})

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class Hyperparameters(Mapping[str, Any]):
    """The parsed, read-only hyperparameters (``hp["epochs"]``) with what the user gave; an
    algorithm reads them through its typed view (``hp.typed(NtmHyperparameters).epochs``)."""

    parsed: Mapping[str, Any]
    given: frozenset[str] = frozenset()  # names the user set explicitly
    unused: Mapping[str, str] = field(default_factory=dict)  # names the user set that this job ignores: why
    algorithm: str = ""
    may_differ_on_resume: frozenset[str] = frozenset()  # may change between a checkpoint and its resumption

    def __getitem__(self, key: str) -> Any:
        return self.parsed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parsed)

    def __len__(self) -> int:
        return len(self.parsed)

    def typed(self, view: type[View]) -> View:
        """These values as ``view``, a frozen dataclass with exactly the spec's names."""
        names = {f.name for f in fields(view)}
        if names != set(self.parsed):
            raise TypeError(f"{view.__name__} does not list the {self.algorithm} hyperparameters: "
                            f"missing {sorted(set(self.parsed) - names)}, extra {sorted(names - set(self.parsed))}")
        return view(**self.parsed)

    def as_strings(self) -> dict[str, str]:
        """The values back in hyperparameters.json form (used in checkpoints and models)."""
        return {k: json.dumps(v) if isinstance(v, (list, tuple)) else str(v) for k, v in self.parsed.items()}


@dataclass(frozen=True)
class Spec:
    algorithm: str
    entries: Mapping[str, Mapping[str, Any]]
    mode_key: str | None = None

    @classmethod
    def load(cls, algorithm: str) -> "Spec":
        raw = specs.load(algorithm)
        return cls(algorithm, raw["hyperparameters"], raw.get("mode_key"))


def parse(raw: Mapping[str, Any], spec: Spec) -> Hyperparameters:
    """Validate and type ``raw``; raise one ``ClientError`` listing every problem."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    given = {k for k in raw if not _reserved(k)}
    unknown = sorted(given - spec.entries.keys())
    for key in unknown:
        match = closest(key, sorted(spec.entries))
        errors.append(f"{key}: unknown hyperparameter for {spec.algorithm}"
                      + (f" (did you mean '{match}'?)" if match else ""))
    for key, entry in spec.entries.items():
        if key in raw:
            try:
                values[key] = _convert(raw[key], entry)
            except ValueError as exc:
                errors.append(f"{key}={_show(raw[key])}: {exc}")
        elif entry.get("required"):
            errors.append(f"{key}: required hyperparameter is missing ({_describe(entry)})")
        else:
            values[key] = _default(entry)
    if errors:
        accepted = f" Accepted names: {', '.join(sorted(spec.entries))}." if unknown else ""
        raise ClientError("Invalid hyperparameters: " + "; ".join(errors) + "." + accepted)
    unused = {k: why for k in sorted(given & spec.entries.keys()) if (why := _why_unused(k, values, spec))}
    resumable = frozenset(k for k, entry in spec.entries.items() if entry.get("may_differ_on_resume"))
    return Hyperparameters(values, frozenset(given & spec.entries.keys()), unused, spec.algorithm, resumable)


def _why_unused(name: str, values: Mapping[str, Any], spec: Spec) -> str | None:
    """Why this job ignores ``name`` (None when it reads it): the entry's ``modes`` leave out the
    job's mode, or none of its ``used_when`` conditions (``"encoder_type=rnn"``) holds."""
    entry = spec.entries[name]
    mode = values.get(spec.mode_key) if spec.mode_key else None
    if mode is not None and mode not in entry.get("modes", [mode]):
        return f"used only in mode {', '.join(entry['modes'])} (this job: {spec.mode_key}={mode})"
    conditions = [condition.split("=", 1) for condition in entry.get("used_when", [])]
    if conditions and not any(str(values[key]) == value for key, value in conditions):
        job = ", ".join(dict.fromkeys(f"{key}={values[key]}" for key, _ in conditions))
        return f"used only with {' or '.join(entry['used_when'])} (this job: {job})"
    return None


_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def field_type(entry: Mapping[str, Any]) -> Any:
    """The Python type ``parse`` gives an entry's value: int, float, bool or str; a ``Literal``
    of an enum's values; ``tuple[int, ...]`` for an int_list, or ``"auto"`` where allowed;
    ``Optional`` when the entry has neither a default nor ``required``."""
    kind = entry["type"]
    if kind == "enum":
        result: Any = Literal[tuple(entry["values"])]
    elif kind == "int_list":
        result = tuple[int, ...]
    else:
        result = _SCALARS[kind]
    if entry.get("allow_auto"):
        result = Union[result, Literal["auto"]]
    if "default" not in entry and not entry.get("required"):
        result = Optional[result]
    return result


def view_mismatches(view: type[DataclassInstance], spec: Spec) -> list[str]:
    """How ``view``'s fields differ from ``spec``'s names and types (empty when they agree)."""
    hints = typing.get_type_hints(view)
    declared = {f.name: hints[f.name] for f in fields(view)}
    problems = [f"{name}: in the spec, not in {view.__name__}" for name in sorted(spec.entries.keys() - declared)]
    problems += [f"{name}: in {view.__name__}, not in the spec" for name in sorted(declared.keys() - spec.entries)]
    for name in sorted(spec.entries.keys() & declared.keys()):
        expected = field_type(spec.entries[name])
        if _normal(declared[name]) != _normal(expected):
            problems.append(f"{name}: {view.__name__} says {declared[name]}, the spec gives {expected}")
    problems += [f"{f.name}: has a default in {view.__name__}; the spec gives defaults" for f in fields(view)
                 if f.default is not MISSING or f.default_factory is not MISSING]
    return problems


def _normal(hint: Any) -> Any:
    """A type hint comparable across spellings: ``X | None`` and ``Optional[X]``, Literal order."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return frozenset(_normal(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return ("Literal", frozenset(typing.get_args(hint)))
    return hint


def _reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIX) or key in RESERVED_KEYS


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _default(entry: Mapping[str, Any]) -> Any:
    value = entry.get("default")
    return tuple(value) if isinstance(value, list) else value


def _describe(entry: Mapping[str, Any]) -> str:
    kind = entry["type"]
    if kind == "enum":
        return "one of " + ", ".join(entry["values"])
    if kind == "bool":
        return "true or false"
    if kind == "int_list":
        text = "a list of positive integers such as 30,20 or [30, 20]"
        return text + (" or auto" if entry.get("allow_auto") else "")
    if kind == "str":
        return "a string"
    noun = "an integer" if kind == "int" else "a number"
    lo, hi = entry.get("min"), entry.get("max")
    if lo is not None and hi is not None:
        left = "(" if entry.get("min_exclusive") else "["
        return f"{noun} in {left}{lo}, {hi}]"
    if lo is not None:
        return f"{noun} {'>' if entry.get('min_exclusive') else '>='} {lo}"
    if hi is not None:
        return f"{noun} <= {hi}"
    return noun


def _convert(raw: Any, entry: Mapping[str, Any]) -> Any:
    kind = entry["type"]
    text = raw if isinstance(raw, str) else json.dumps(raw)
    text = text.strip()
    expected = f"expected {_describe(entry)}"
    if entry.get("allow_auto") and text.lower() == "auto":
        return "auto"
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(expected)
    if kind == "enum":
        for value in entry["values"]:
            if text.lower() == value.lower():
                return value
        raise ValueError(expected)
    if kind == "str":
        return text
    if kind == "int_list":
        return _int_list(text, expected)
    if kind == "int":
        number: float = _number(text, expected)
        if not float(number).is_integer():
            raise ValueError(expected)
        number = int(number)
    elif kind == "float":
        number = _number(text, expected)
    else:  # a spec error, not a user error
        raise TypeError(f"unknown hyperparameter type {kind!r} in spec")
    _check_range(number, entry, expected)
    return number


def _number(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(expected) from None
    if math.isnan(value):
        raise ValueError(expected)
    return value


def _check_range(number: float, entry: Mapping[str, Any], expected: str) -> None:
    lo, hi = entry.get("min"), entry.get("max")
    if lo is not None and (number < lo or (entry.get("min_exclusive") and number == lo)):
        raise ValueError(expected)
    if hi is not None and number > hi:
        raise ValueError(expected)


def _int_list(text: str, expected: str) -> tuple[int, ...]:
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(expected) from None
        if not isinstance(items, list):
            raise ValueError(expected)
    else:
        items = [part.strip() for part in text.split(",")]
    result = []
    for item in items:
        try:
            number = float(item) if not isinstance(item, bool) else math.nan
        except (TypeError, ValueError):
            raise ValueError(expected) from None
        if not number.is_integer() or number < 1:
            raise ValueError(expected)
        result.append(int(number))
    if not result:
        raise ValueError(expected)
    return tuple(result)
