"""Augmented-manifest JSON Lines as fastText ``__label__`` lines.

A manifest line is ``{"source": "...", "label": 1}`` (or ``"label": "pos"``, or ``[1, 3]`` for
several labels); each label ``x`` becomes the token ``__label__x`` and the line becomes
``__label__x ... source``, so that the rest of the reading is the same for both formats.

In Pipe mode with ``RecordWrapperType: RecordIO`` SageMaker streams the manifest's
``AttributeNames`` (``["source", "label"]``) in that order, each value as its own record, so
records come in pairs, source then label. A source record is the text (as it is, or as a JSON
string); a label record is a JSON value (``1``, ``"pos"``, ``[1, 3]``) or a bare label token.
``attribute_lines`` turns each pair back into the manifest line ``{"source": ..., "label": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


def manifest_to_lines(text: bytes) -> tuple[bytes, set[int]]:
    """Each JSON object as a ``__label__`` line; a broken one as a blank line, its index returned."""
    out, broken = [], set()
    for j, line in enumerate(text.split(b"\n")[:-1]):
        converted = manifest_line(line) if line.strip() else b""
        if converted is None:
            broken.add(j)
        out.append(converted or b"")
    return b"\n".join(out) + b"\n", broken


def manifest_line(line: bytes) -> bytes | None:
    """``{"source": "...", "label": 1 | "x" | [1, 3]}`` as ``__label__1 ... source``; None if invalid."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, an integer of > 4300 digits, nested too deep
        return None
    if not isinstance(record, dict) or not isinstance(record.get("source"), str):
        return None
    labels = record.get("label")
    labels = labels if isinstance(labels, list) else [labels]
    names = [name for name in map(_label_name, labels) if name is not None]
    if not names or len(names) != len(labels):
        return None
    tokens = " ".join(n if n.startswith("__label__") else "__label__" + n for n in names)
    return (tokens + " " + record["source"].replace("\n", " ")).encode("utf-8")


def _label_name(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value and not any(c.isspace() or c == "\0" for c in value):  # one fastText token
        return value
    return None


def attribute_lines(records: Iterable[bytes]) -> Iterator[bytes]:
    """Augmented-manifest attribute records, paired (source, label), as manifest JSON lines
    (each ending in a newline). A source left without a label (an odd count) gets a null label,
    so that it is reported as a bad record."""
    pairs = iter(records)
    for source in pairs:
        label = next(pairs, None)
        yield (b'{"source":' + _json_string(source) + b',"label":'
               + (b"null" if label is None else _json_value(label)) + b"}\n")


def _json_string(value: bytes) -> bytes:
    """A source attribute as a JSON string: as sent when it is one, else its text encoded."""
    text = value.strip()
    if text.startswith(b'"'):
        try:
            if isinstance(json.loads(text), str):
                return text
        except (ValueError, RecursionError):
            pass
    return json.dumps(value.decode("utf-8", errors="replace")).encode("utf-8")


def _json_value(value: bytes) -> bytes:
    """A label attribute as JSON: as sent when it is JSON (``1``, ``"pos"``, ``[1, 3]``), else
    its text as a JSON string (a bare token such as ``pos``)."""
    text = value.strip()
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return json.dumps(text.decode("utf-8", errors="replace")).encode("utf-8")
    return text.replace(b"\n", b" ").replace(b"\r", b" ")
