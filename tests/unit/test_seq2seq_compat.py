"""Backward compatibility of model artifacts (issue 4): models trained by an earlier build still
load and answer the same.

``tests/fixtures/seq2seq_tiny/model`` (rnn, format version 1), ``seq2seq_cnn_tiny/model`` (cnn
encoder and decoder, format version 2) and ``ntm_tiny/model`` are tiny models trained by the real
``train`` executable and committed; ``expected.json`` beside each holds requests and the answers
recorded when the fixture was made (``tests/fixtures/make_seq2seq_tiny.py`` regenerates them —
only for a change that is meant to break old models, with a new format version). A change to
the network, the artifact files or the decoding that would break models already trained fails
here.
"""

from __future__ import annotations

import json
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sagetext import algorithms
from sagetext.serving import codecs
from sagetext.serving.negotiation import negotiate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KINDS = ["seq2seq", "seq2seq_cnn", "ntm"]
# The only globals a weights-only torch checkpoint may name (what ``torch.load(weights_only=True)``
# rebuilds tensors and containers from); anything else would need a real unpickler.
SAFE_GLOBALS = {"torch._utils _rebuild_tensor_v2", "collections OrderedDict", "torch FloatStorage",
                "torch LongStorage", "torch IntStorage", "torch BoolStorage", "torch._utils _rebuild_parameter"}


def fixture(kind: str) -> tuple[Path, dict[str, Any]]:
    folder = FIXTURES / f"{kind}_tiny"
    return folder / "model", json.loads((folder / "expected.json").read_text("utf-8"))


def close(got: Any, expected: Any, where: str = "response") -> None:
    """Equal, with floats compared to 1e-4 (the attention matrix, topic weights)."""
    if isinstance(expected, float) or isinstance(got, float):
        assert got == pytest.approx(expected, abs=1e-4), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(expected), where
        for key in expected:
            close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            close(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


@pytest.mark.parametrize("kind", KINDS)
def test_a_committed_model_still_answers_as_recorded(kind: str) -> None:
    model_dir, expected = fixture(kind)
    predictor = algorithms.get(expected["algorithm"]).load(model_dir)
    for case in expected["requests"]:
        content_type, body = case["content_type"], case["body"]
        raw = body.encode() if isinstance(body, str) else codecs.encode(content_type, body)
        response_type = negotiate(predictor, content_type, None)
        assert response_type == case["response_type"]
        result = json.loads(json.dumps(predictor.predict(codecs.decode(content_type, raw), content_type,
                                                         response_type)))
        close(result, case["response"], f"{kind} {content_type}")


@pytest.mark.parametrize("kind,encoder,version", [("seq2seq", "rnn", 1), ("seq2seq_cnn", "cnn", 2)])
def test_the_seq2seq_fixtures_learned_their_task(kind: str, encoder: str, version: int) -> None:
    """The recorded answers are the reversal, not noise that any rounding could flip."""
    model_dir, expected = fixture(kind)
    meta = json.loads((model_dir / "config.json").read_text("utf-8"))
    assert meta["format_version"] == version
    assert meta["model"].get("encoder_type", meta["model"].get("architecture")) == encoder
    request = expected["requests"][0]
    sources = [instance["data"] for instance in request["body"]["instances"]]
    targets = [p["target"] for p in request["response"]["predictions"]]
    assert targets == [" ".join(reversed(s.split())) for s in sources]
    matrix = np.array(request["response"]["predictions"][1]["matrix"])
    assert matrix.shape == (3, 3) and np.allclose(matrix.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_fixture_files_are_small_and_hold_no_code(kind: str) -> None:
    """No file is a pickle a loader would have to trust: the weights are a torch zip whose
    ``data.pkl`` names only tensor-rebuilding globals (what ``weights_only=True`` allows)."""
    model_dir, _ = fixture(kind)
    files = [p for p in model_dir.parent.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 200_000
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".pt":
            with zipfile.ZipFile(path) as archive:
                pickles = [n for n in archive.namelist() if n.endswith(".pkl")]
                assert len(pickles) == 1
                assert pickle_globals(archive.read(pickles[0])) <= SAFE_GLOBALS, path.name
        else:
            assert not data.startswith(b"\x80"), f"{path.name} looks like a pickle"
            json.loads(data)  # config, vocabularies, expected answers: all JSON


def pickle_globals(data: bytes) -> set[str]:
    """The ``module name`` pairs a pickle stream imports: GLOBAL, and STACK_GLOBAL on the last two
    values pushed (strings, possibly fetched back from the memo)."""
    found: set[str] = set()
    pushed: list[Any] = []
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            found.add(str(arg).replace("\n", " "))
        elif opcode.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]} {pushed[-1]}")
        elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif opcode.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(arg)))
        else:
            pushed.append(arg)
    return found
