"""The body of SageMaker's ``CreateAlgorithm`` request for a sagetext image, built from configs/.

AWS's built-in algorithms need no ``metric_definitions`` and no list of hyperparameters:
SageMaker knows them. A custom image needs both on every Estimator, unless it is registered
once as an *algorithm resource*: its TrainingSpecification carries the hyperparameters (type,
range, default, required, tunable), the metric definitions and tuning objectives and the
channels (content types, input modes, gzip), and its InferenceSpecification the request and
response types. Then ``sagemaker.algorithm.AlgorithmEstimator(algorithm_arn=...)`` and
hyperparameter tuning work as with a built-in.

SageMaker's ranges are inclusive and need both ends: a bound our spec leaves open becomes the
int32 limit (Integer) or ``Infinity`` (Continuous), and an exclusive minimum (``learning_rate
> 0``) the next float above it. Booleans are Categorical ``true``/``false``; lists (NTM's
``encoder_layers``) FreeText.

``validate`` checks a body offline against the SageMaker service model that ships with
botocore: botocore's own parameter validation (the check boto3 runs before sending: required
members, types, minimum lengths), then what it leaves out (enum values, maximum lengths and
sizes, patterns), so a body that passes is one SageMaker's API accepts in form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sagetext import specs
from sagetext.errors import ClientError

INT32 = (-(2**31), 2**31 - 1)
TYPES = {"int": "Integer", "float": "Continuous", "enum": "Categorical", "bool": "Categorical",
         "int_list": "FreeText", "str": "FreeText"}
COMPRESSION_TYPES = ["None", "Gzip"]  # gzip (bzip2, xz too) is undone by the image in any input mode
DESCRIPTION_LIMIT = 1024


def request_body(algorithm: str, image: str, name: str | None = None) -> dict[str, Any]:
    """The CreateAlgorithm request for ``image`` (one URI for training and inference)."""
    spec = specs.load(algorithm)
    instances = specs.load("algorithm_spec")
    metrics = spec.get("metric_definitions", [])
    training = {
        "TrainingImage": image,
        "SupportedHyperParameters": [hyperparameter(key, entry) for key, entry in spec["hyperparameters"].items()],
        "SupportedTrainingInstanceTypes": list(instances["training_instance_types"]),
        "SupportsDistributedTraining": True,
        "MetricDefinitions": specs.metric_definitions(algorithm),
        "TrainingChannels": [channel(key, entry) for key, entry in spec["channels"].items()],
        "SupportedTuningJobObjectiveMetrics": [{"Type": m["objective"], "MetricName": m["Name"]}
                                               for m in metrics if "objective" in m],
    }
    inference = {
        "Containers": [{"Image": image}],
        "SupportedTransformInstanceTypes": list(instances["transform_instance_types"]),
        "SupportedRealtimeInferenceInstanceTypes": list(instances["realtime_inference_instance_types"]),
        "SupportedContentTypes": list(spec["inference"]["content_types"]),
        "SupportedResponseMIMETypes": list(spec["inference"]["response_types"]),
    }
    return {"AlgorithmName": name or f"sagetext-{algorithm}", "AlgorithmDescription": _text(spec["description"]),
            "TrainingSpecification": training, "InferenceSpecification": inference}


def hyperparameter(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One HyperParameterSpecification from a configs/ entry."""
    modes, conditions = entry.get("modes"), entry.get("used_when")
    doc = (entry.get("doc", "") + (f" Modes: {', '.join(modes)}." if modes else "")
           + (f" Used only with {' or '.join(conditions)}." if conditions else ""))
    result: dict[str, Any] = {"Name": name, "Description": _text(doc), "Type": TYPES[entry["type"]],
                              "IsTunable": bool(entry.get("tunable")), "IsRequired": bool(entry.get("required"))}
    value_range = _range(entry)
    if value_range is not None:
        result["Range"] = value_range
    if "default" in entry:
        result["DefaultValue"] = value_text(entry["default"])
    return result


def channel(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ChannelSpecification from a configs/ channel entry."""
    modes = entry.get("modes")
    doc = entry.get("doc", "") + (f" Modes: {', '.join(modes)}." if modes else "")
    return {"Name": name, "Description": _text(doc), "IsRequired": bool(entry.get("required")),
            "SupportedContentTypes": list(entry["content_types"]), "SupportedCompressionTypes": COMPRESSION_TYPES,
            "SupportedInputModes": list(entry["input_modes"])}


def value_text(value: Any) -> str:
    """A spec value as SageMaker passes hyperparameters (strings our parser reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(value)


def _range(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = entry["type"]
    if kind == "enum":
        return {"CategoricalParameterRangeSpecification": {"Values": list(entry["values"])}}
    if kind == "bool":
        return {"CategoricalParameterRangeSpecification": {"Values": ["true", "false"]}}
    if kind == "int":
        low = entry.get("min", INT32[0]) + (1 if entry.get("min_exclusive") else 0)
        return {"IntegerParameterRangeSpecification": {"MinValue": str(low),
                                                       "MaxValue": str(entry.get("max", INT32[1]))}}
    if kind == "float":
        low = float(entry.get("min", -math.inf))
        if entry.get("min_exclusive"):
            low = math.nextafter(low, math.inf)
        return {"ContinuousParameterRangeSpecification": {"MinValue": value_text(low),
                                                          "MaxValue": value_text(float(entry.get("max", math.inf)))}}
    return None


def _text(text: str) -> str:
    """A description SageMaker accepts: no control characters, at most 1024 characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_LIMIT else flat[:DESCRIPTION_LIMIT - 3] + "..."


def validate(body: Mapping[str, Any]) -> None:
    """Check ``body`` against the CreateAlgorithm input shape of botocore's SageMaker service
    model; a ``ClientError`` lists every problem. Needs botocore (``pip install boto3``)."""
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    shape = get_session().get_service_model("sagemaker").operation_model("CreateAlgorithm").input_shape
    report = ParamValidator().validate(body, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += _constraints(body, shape, "")
    if problems:
        raise ClientError("the CreateAlgorithm request is invalid: " + "; ".join(problems))


def _constraints(value: Any, shape: Any, path: str) -> list[str]:
    """Enum values, maximum lengths and sizes, and patterns, which botocore does not check."""
    problems = []
    limit = shape.metadata.get("max")
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for key, member in shape.members.items():
            if key in value:
                problems += _constraints(value[key], member, f"{path}.{key}" if path else key)
    elif shape.type_name == "list" and isinstance(value, list):
        if limit is not None and len(value) > limit:
            problems.append(f"{path}: {len(value)} items, at most {limit} allowed")
        for i, item in enumerate(value):
            problems += _constraints(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{path}={value!r}: not one of SageMaker's values")
        if limit is not None and len(value) > limit:
            problems.append(f"{path}: {len(value)} characters, at most {limit} allowed")
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(f"{path}={value[:60]!r}: does not match SageMaker's pattern {pattern}")
    return problems


def _matches(pattern: str, value: str) -> bool:
    """Java-style patterns of the service model, with ``\\p{..}`` classes when the ``regex``
    module (a sacreBLEU dependency) is present; ``\\p{..}`` patterns are skipped without it."""
    try:
        import regex  # type: ignore[import-untyped]
    except ImportError:
        return "\\p{" in pattern or re.fullmatch(pattern, value) is not None
    return regex.fullmatch(pattern, value) is not None
