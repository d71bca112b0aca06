"""Security: nothing a user supplies is unpickled, and no secret leaves a process.

* An AST scan of ``src/`` refuses pickle-family imports, ``torch.load`` without a literal
  ``weights_only=True``, ``np.load(allow_pickle=...)`` unless literally False, ``yaml.load``
  without a safe loader, ``eval``/``exec``, and ``shell=True``; it resolves import aliases, and
  a self-test shows it catches each pattern.
* A pickle bomb (a pickle that runs code when loaded) renamed to each model file an
  algorithm loads, and to a checkpoint: a ``ClientError`` and the code never runs.
* Training failures (user error and internal error, with traceback) never write the
  environment's secrets into ``output/failure`` or the log. (The server side is checked
  across every hostile request in ``test_hostile_clients.py``.)
"""

from __future__ import annotations

import ast
import io
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, FakeOptMl, RunTrain
from tests.reliability.conftest import DEFAULT_HP, FAKE_SECRET, SECRET_ENV, lay_out

SRC = REPO / "src" / "sagetext"

# ---- the AST scan ----------------------------------------------------------------------------

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal",
                  "jsonpickle", "pandas.read_pickle"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The full dotted name a call target refers to, through ``import x as y`` aliases."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_calls(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: what`` for each unsafe deserialisation or code-execution pattern."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                aliases[alias.asname or top] = alias.name if alias.asname else top
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if node.module.split(".")[0] in BANNED_MODULES or f"{node.module}.{alias.name}" in BANNED_MODULES:
                    found.append(f"{filename}:{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases) or ""
        where = f"{filename}:{node.lineno}: {name}"
        if name in ("torch.load", "torch.serialization.load"):
            if not _is_constant(_keyword(node, "weights_only"), True):
                found.append(f"{where} without weights_only=True")
        elif name in ("torch.jit.load", "torch.package.PackageImporter", "pandas.read_pickle"):
            found.append(f"{where} (unpickles)")
        elif name in ("numpy.load", "np.load"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not _is_constant(allow, False):
                found.append(f"{where} with allow_pickle")
        elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
            loader = _keyword(node, "Loader")
            loader_name = (_dotted(loader, aliases) or "") if loader is not None else ""
            if name not in ("yaml.load", "yaml.load_all") or loader_name.split(".")[-1] not in SAFE_YAML_LOADERS:
                found.append(f"{where} without a safe Loader")
        elif name in ("eval", "exec", "builtins.eval", "builtins.exec"):
            found.append(f"{where} (runs code)")
        elif name in ("os.system", "os.popen"):
            found.append(f"{where} through a shell")
        elif name.startswith("subprocess.") and _is_constant(_keyword(node, "shell"), True):
            found.append(f"{where} through a shell")
    return found


def test_source_never_unpickles_or_runs_strings() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30  # the scan really covers the package
    found = [hit for path in files for hit in unsafe_calls(path.read_text("utf-8"), str(path.relative_to(REPO)))]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "import pickle",
    "import cPickle as p",
    "from pickle import loads",
    "import dill",
    "import joblib\njoblib.load('m')",
    "import torch\ntorch.load('m.pt')",
    "import torch\ntorch.load('m.pt', weights_only=False)",
    "import torch as t\nt.load('m.pt', map_location='cpu')",
    "from torch import load\nload('m.pt')",
    "import torch\nflag = True\ntorch.load('m.pt', weights_only=flag)",
    "import torch\ntorch.jit.load('m.pt')",
    "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
    "import numpy\nnumpy.load('x.npy', allow_pickle=1)",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(text)",
    "eval(request_body)",
    "exec(code)",
    "import subprocess\nsubprocess.run(cmd, shell=True)",
    "import os\nos.system(cmd)",
])
def test_the_scan_catches(snippet: str) -> None:
    assert unsafe_calls(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)",
    "import numpy as np\nnp.load('x.npy')",
    "import numpy as np\nnp.load('x.npy', allow_pickle=False)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import yaml\nyaml.safe_load(text)",
    "import subprocess\nsubprocess.run(['ls'])",
    "model.eval()",
])
def test_the_scan_lets_safe_code_pass(snippet: str) -> None:
    assert unsafe_calls(snippet) == [], snippet


# ---- pickle bombs ----------------------------------------------------------------------------

class _Bomb:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def pickle_bombs(marker: Path) -> dict[str, bytes]:
    import pickle  # noqa: S403 - building the hostile file is the point of the test

    as_torch = io.BytesIO()
    torch.save({"format": "sagetext-ntm", "state_dict": _Bomb(marker)}, as_torch)
    return {"torch.save": as_torch.getvalue(), "raw pickle": pickle.dumps(_Bomb(marker), protocol=2)}


MODEL_FILES = {"ntm": "model.pt", "seq2seq": "model.pt", "supervised": "model.bin", "word2vec": "vectors.bin"}
LOADERS = {"ntm": "ntm", "seq2seq": "seq2seq", "supervised": "blazingtext", "word2vec": "blazingtext"}


def load_model(algorithm: str, model_dir: Path) -> object:
    from sagetext import algorithms

    return algorithms.get(LOADERS[algorithm]).load(model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(MODEL_FILES))
@pytest.mark.parametrize("kind", ["torch.save", "raw pickle"])
def test_a_pickle_bomb_as_the_model_file_is_refused(trained_models: dict, algorithm: str, kind: str,
                                                     tmp_path: Path) -> None:
    from sagetext.errors import ClientError

    trained = trained_models[algorithm]
    if isinstance(trained, str):
        pytest.skip(trained)
    model_dir = tmp_path / "model"
    shutil.copytree(trained, model_dir)
    load_model(algorithm, model_dir)  # the real model loads
    marker = tmp_path / "pwned"
    (model_dir / MODEL_FILES[algorithm]).write_bytes(pickle_bombs(marker)[kind])
    with pytest.raises(ClientError) as error:
        load_model(algorithm, model_dir)
    assert MODEL_FILES[algorithm] in error.value.message
    assert not marker.exists(), "loading the model file ran code from it"


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle"])
def test_a_pickle_bomb_as_the_checkpoint_is_refused(kind: str, tmp_path: Path) -> None:
    from sagetext.contract.checkpoints import FILE_NAME, Checkpoints
    from sagetext.contract.hyperparameters import Spec, parse
    from sagetext.errors import ClientError

    marker = tmp_path / "pwned"
    (tmp_path / FILE_NAME).write_bytes(pickle_bombs(marker)[kind])
    checkpoints = Checkpoints(tmp_path, parse(dict(DEFAULT_HP["ntm"]), Spec.load("ntm")))
    with pytest.raises(ClientError, match="cannot be read"):
        checkpoints.load("ntm/1")
    assert not marker.exists()


# ---- secrets in failure files ----------------------------------------------------------------

def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for name, value in SECRET_ENV.items():
            assert value not in text, f"{name}'s value leaked:\n{text[-2000:]}"
        assert "AWS_SECRET_ACCESS_KEY" not in text, text[-2000:]
        assert "environ(" not in text and "'PATH': " not in text, text[-2000:]  # no dump of os.environ


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bad hyperparameter", "corrupt channel", "checkpoint is a file",
                                  "poisoned checkpoint"])
def test_failures_never_write_secrets(case: str, tmp_path: Path, run_train: RunTrain) -> None:
    """User errors (ClientError) and internal errors (AlgorithmError + traceback) alike."""
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    hp = dict(DEFAULT_HP["ntm"])
    if case == "bad hyperparameter":
        hp["num_topics"] = FAKE_SECRET  # even a value the user typed is echoed only as given
    lay_out("ntm", opt_ml, hp, tmp_path)
    if case == "corrupt channel":
        (opt_ml.root / "input" / "data" / "train" / "train.csv").write_bytes(b"\xff\xfe" + os.urandom(200))
    elif case == "checkpoint is a file":  # an internal error: the checkpoint folder cannot be made
        blocker = tmp_path / "blocker"
        blocker.write_text("not a folder")
        opt_ml.checkpoints(blocker / "checkpoints")
    elif case == "poisoned checkpoint":
        opt_ml.checkpoints(tmp_path / "checkpoints")
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "checkpoint.pt").write_bytes(pickle_bombs(tmp_path / "pwned")["torch.save"])
    result = run_train(opt_ml, "ntm", SECRET_ENV, timeout=240)
    assert result.returncode == 1, result.stdout + result.stderr
    failure = opt_ml.failure.read_text("utf-8")
    assert failure.startswith(("ClientError: ", "AlgorithmError: ")), failure
    if case == "bad hyperparameter":
        failure = failure.replace(FAKE_SECRET, "<typed by the user>")
        assert "num_topics" in failure
    else:
        assert_no_secret(result.stdout, result.stderr)
    assert_no_secret(failure)
    assert not (tmp_path / "pwned").exists()
