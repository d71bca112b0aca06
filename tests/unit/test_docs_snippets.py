"""docs/sagemaker.md cannot drift from the code: every Python snippet parses, every
``hyperparameters={...}`` given to an Estimator is valid for the snippet's algorithm (as the SDK
sends it: ``str()`` of each value), and the metric definitions shown equal configs/."""

from __future__ import annotations

import ast
import json
import re

import pytest

from sagetext import specs
from sagetext.contract.hyperparameters import Spec, parse
from tests.conftest import REPO

DOC = REPO / "docs" / "sagemaker.md"
ALGORITHMS = ("blazingtext", "seq2seq", "ntm")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
MARKER = re.compile(r"^# sagetext: (\w+)", re.M)


def blocks(language: str) -> list[tuple[int, str]]:
    text = DOC.read_text("utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == language]


def estimator_calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "Estimator"]


def test_every_python_snippet_parses() -> None:
    snippets = blocks("python")
    assert len(snippets) >= 6
    for line, code in snippets:
        try:
            ast.parse(code)
        except SyntaxError as exc:
            pytest.fail(f"docs/sagemaker.md line {line + (exc.lineno or 0)}: {exc.msg}")


def test_estimator_hyperparameters_exist_and_parse() -> None:
    seen = set()
    for line, code in blocks("python"):
        calls = estimator_calls(ast.parse(code))
        if not any(k.arg == "hyperparameters" for call in calls for k in call.keywords):
            continue
        marker = MARKER.search(code)
        assert marker and marker.group(1) in ALGORITHMS, f"line {line}: snippet lacks '# sagetext: ALGORITHM'"
        algorithm = marker.group(1)
        for call in calls:
            keywords = {k.arg: k.value for k in call.keywords}
            assert {"image_uri", "role", "instance_count", "instance_type", "metric_definitions"} <= keywords.keys()
            assert f"sagetext-{algorithm}:" in code, f"line {line}: no sagetext-{algorithm} image in the snippet"
            values = ast.literal_eval(keywords["hyperparameters"])
            unknown = set(values) - set(specs.load(algorithm)["hyperparameters"])
            assert not unknown, f"line {line}: {sorted(unknown)} are not {algorithm} hyperparameters"
            parse({name: str(value) for name, value in values.items()}, Spec.load(algorithm))
            assert f'"--algorithm", "{algorithm}"' in ast.unparse(keywords["metric_definitions"]).replace("'", '"')
            seen.add(algorithm)
    assert seen == set(ALGORITHMS)


def test_fit_channels_per_algorithm() -> None:
    expected = {"blazingtext": {"train"}, "seq2seq": {"train", "validation", "vocab"},
                "ntm": {"train", "validation", "test", "auxiliary"}}
    for _, code in blocks("python"):
        marker = MARKER.search(code)
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "fit" and marker:
                channels = {ast.literal_eval(key) for key in node.args[0].keys}
                assert expected[marker.group(1)] <= channels, (marker.group(1), channels)


def test_metric_definitions_shown_match_configs() -> None:
    text = DOC.read_text("utf-8")
    shown = re.findall(r"<!-- metric-definitions: (\w+) -->\n```json\n(.*?)```", text, re.S)
    assert sorted(name for name, _ in shown) == sorted(ALGORITHMS)
    for algorithm, block in shown:
        assert json.loads(block) == specs.metric_definitions(algorithm), algorithm
