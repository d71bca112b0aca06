"""The Seq2Seq model folder (what ends up in model.tar.gz) and how serving reads it back.

Files, each written atomically: ``model.pt`` (a torch state dict, loaded with
``weights_only=True``), ``config.json`` (format version, the network's ModelConfig, the
decoding settings and the training hyperparameters) and copies of ``vocab.src.json`` and
``vocab.trg.json``, so serving needs nothing else. A model trained on plain text with subwords
(extension) also holds ``spm.src.model`` and ``spm.trg.model``.

Format versions: 2 names ``encoder_type`` and ``decoder_type`` and the cnn settings; version 1
(one ``architecture`` for both sides, no cnn) is still read, upgraded on loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.algorithms.seq2seq.config import ModelConfig
from sagetext.algorithms.seq2seq.model import build_model
from sagetext.contract.artifacts import write_atomic, write_bytes_atomic
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.errors import ClientError

FORMAT = "sagetext-seq2seq"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
PARAMS_FILE = "model.pt"
SUBWORD_FILES = {"source": "spm.src.model", "target": "spm.trg.model"}
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    config: ModelConfig
    source_vocab: vocabulary.Vocab
    target_vocab: vocabulary.Vocab
    beam_size: int
    subwords: dict[str, bytes]  # "source"/"target" sentencepiece models, or {}


def save(folder: Path, state_dict: dict[str, torch.Tensor], config: ModelConfig,
         source_vocab: vocabulary.Vocab, target_vocab: vocabulary.Vocab, beam_size: int,
         hyperparameters: dict[str, str], subword_models: dict[str, bytes] | None = None) -> None:
    subword_models = subword_models or {}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config.to_dict(),
            "inference": {"beam_size": beam_size, "subwords": sorted(subword_models)},
            "hyperparameters": hyperparameters}
    for side, model_bytes in subword_models.items():
        write_bytes_atomic(folder / SUBWORD_FILES[side], model_bytes)
    cpu_state = {name: tensor.detach().cpu() for name, tensor in state_dict.items()}
    write_atomic(folder / PARAMS_FILE, lambda f: torch.save(cpu_state, f))
    write_bytes_atomic(folder / vocabulary.SOURCE_FILE, vocabulary.to_json(source_vocab).encode("utf-8"))
    write_bytes_atomic(folder / vocabulary.TARGET_FILE, vocabulary.to_json(target_vocab).encode("utf-8"))
    write_bytes_atomic(folder / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True).encode("utf-8"))


def load(folder: Path, device: str = "cpu") -> LoadedModel:
    folder = Path(folder)
    meta = _read_config(folder / CONFIG_FILE)
    config = ModelConfig.from_dict(_upgrade(meta["model"], meta["format_version"]))
    source_vocab = vocabulary.load(folder / vocabulary.SOURCE_FILE)
    target_vocab = vocabulary.load(folder / vocabulary.TARGET_FILE)
    if (len(source_vocab), len(target_vocab)) != (config.source_vocab_size, config.target_vocab_size):
        raise ClientError(f"{folder}: the vocabularies ({len(source_vocab)}, {len(target_vocab)} tokens) do not "
                          f"match the model ({config.source_vocab_size}, {config.target_vocab_size})")
    model = build_model(config)
    try:
        state = torch.load(folder / PARAMS_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # corrupt, foreign or hostile (a pickle that would run code): refuse it
        raise ClientError(f"{folder / PARAMS_FILE}: cannot load the model weights "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    model.to(device).eval()
    inference = meta["inference"]
    subwords = {side: (folder / SUBWORD_FILES[side]).read_bytes() for side in inference.get("subwords", [])}
    return LoadedModel(model, config, source_vocab, target_vocab, int(inference["beam_size"]), subwords)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientError(f"{path}: not a Seq2Seq model folder ({exc})") from None
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT:
        raise ClientError(f"{path}: not a sagetext Seq2Seq model (format {found!r}, expected {FORMAT!r})")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ClientError(f"{path}: model format version {meta.get('format_version')!r}; "
                          f"this build reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    return meta


def _upgrade(model: dict[str, Any], version: int) -> dict[str, Any]:
    """An older model config in the current version's terms. Versions 1 and 2 were trained
    without a source-side ``</s>``. Version 1's ``architecture`` was both sides, and as it had no
    cnn part, the (unused) cnn settings take the spec's defaults."""
    if version >= 3:
        return model
    upgraded = {**model, "source_eos": False}
    if version != 1 or "architecture" not in model:
        return upgraded
    defaults = parse({}, Spec.load("seq2seq"))
    upgraded = {name: value for name, value in upgraded.items() if name != "architecture"}
    upgraded.update(encoder_type=model["architecture"], decoder_type=model["architecture"])
    upgraded.update({f.name: defaults[f.name] for f in fields(ModelConfig) if f.name.startswith("cnn_")})
    return upgraded
