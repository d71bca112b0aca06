"""The algorithms sagetext serves, by the name ``SAGETEXT_ALGORITHM`` gives, and which of them
wrote a model folder (``detect``), so that a server or ``sagetext predict`` needs no name."""

from __future__ import annotations

import importlib
import json
import zipfile
from pathlib import Path
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

# The format names the model files carry (the algorithms' own constants: seq2seq.artifacts.FORMAT
# and ntm.model.FORMAT) and BlazingText's file names (model_file.MODEL_FILE among them), which a
# test keeps equal; read here without importing torch.
SEQ2SEQ_FORMAT = "sagetext-seq2seq"
NTM_FORMAT = "sagetext-ntm"
BLAZINGTEXT_FILES = ("model.bin", "vectors.bin", "vectors.txt")


def check(name: str | None) -> str:
    """``name`` if this build has that algorithm, else a ClientError listing the known ones."""
    if name not in MODULES:
        known = ", ".join(sorted(MODULES))
        raise ClientError(f"{ALGORITHM_ENV}={name!r} is not an algorithm of this build (known: {known})")
    return name


def get(name: str | None) -> "Algorithm":
    """The algorithm object exported as ``ALGORITHM`` by its module."""
    return importlib.import_module(MODULES[check(name)]).ALGORITHM


def detect(model_dir: Path) -> str:
    """The algorithm whose model files are in ``model_dir``, from what the files carry:
    Seq2Seq's ``config.json`` and NTM's ``model.pt`` name their format; BlazingText's models
    are fastText ``.bin`` files (``model.bin``: supervised, or word vectors; ``vectors.bin``)
    or word2vec text (``vectors.txt``). A ClientError says what was looked for."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ClientError(f"model folder {model_dir} does not exist")
    config = model_dir / "config.json"
    if config.is_file() and _json_format(config) == SEQ2SEQ_FORMAT:
        return "seq2seq"
    if (model_dir / "model.pt").is_file() and _torch_file_names(model_dir / "model.pt", NTM_FORMAT):
        return "ntm"
    for name in BLAZINGTEXT_FILES:
        if (model_dir / name).is_file():
            return "blazingtext"
    found = ", ".join(sorted(p.name for p in model_dir.iterdir())[:10]) or "nothing"
    raise ClientError(
        f"model folder {model_dir}: no model that sagetext knows (found {found}); expected BlazingText's "
        f"{', '.join(BLAZINGTEXT_FILES)} (or a fastText .bin named so), Seq2Seq's config.json with model.pt, "
        f"or NTM's model.pt; or name the algorithm ({ALGORITHM_ENV} or --algorithm)")


def _json_format(path: Path) -> object:
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


def _torch_file_names(path: Path, format_name: str) -> bool:
    """Whether the torch file (a zip) at ``path`` holds the string ``format_name`` in its pickle,
    read as bytes (a saved string is stored as its UTF-8 bytes; nothing is unpickled)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith("data.pkl") and info.file_size < 1 << 20:
                    return format_name.encode() in archive.read(info)
    except (OSError, zipfile.BadZipFile):
        return False
    return False
