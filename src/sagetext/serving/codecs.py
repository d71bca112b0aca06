"""Turn request bodies into Python values and prediction results into response bodies.

One map, ``CODECS``, from media type (named in ``sagetext.data.media_types``, which also
parses Content-Type values and resolves aliases) to a decode and an encode function; the list
of supported types in every 415 message comes from it. Which type a request and its answer
have is decided by ``serving.negotiation``. What each type decodes to (and encodes from):

``application/json``
    decode: the parsed JSON value. encode: any JSON-able value; numpy arrays and scalars
    become lists and numbers. Compact, UTF-8.
``application/jsonlines``
    decode: a list with one parsed value per non-blank line. encode: a list (or array), one
    compact JSON line per item, each ending in a newline.
``text/csv``
    decode: a 2-D float32 ndarray, one row per non-blank line (no header). encode: a 2-D
    array or list of rows; a 1-D one gives one value per line.
``application/x-recordio-protobuf``
    decode: a list with one dict per Record::

        {"features": {name: ndarray | SparseTensor}, "label": {name: ndarray | SparseTensor},
         "uid": str | None, "metadata": str | None, "configuration": parsed JSON | None}

    Dense tensors are ndarrays (float32, float64 or int32 as sent); sparse ones stay
    ``sagetext.data.recordio.SparseTensor`` (keys, values, shape; ``np.asarray`` densifies).
    encode: a list of dicts ``{"features": {...}, "label": {...}, "uid": optional}`` whose
    tensors are array-likes or SparseTensors: floats are written as float32_tensor,
    integers and booleans as int32_tensor.

A malformed body raises ``ClientError`` (400) naming the type and the problem; a type not in
the map raises ``UnsupportedContentType`` (415). Nothing from a request is ever unpickled.
``instance_count`` says how many instances a decoded body holds, for the server's cap.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO, media_type
from sagetext.errors import ClientError, UnsupportedContentType


@dataclass(frozen=True)
class Codec:
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]


# ---- entry points ---------------------------------------------------------------------

def decode(content_type: str, body: bytes) -> Any:
    """The request body as a Python value (see the module docstring for each type)."""
    return _codec(content_type).decode(body)


def encode(response_type: str, obj: Any) -> bytes:
    """The response body for ``obj`` in the chosen response type. A type without a codec
    is the predictor's mistake (it chose it), so it raises ValueError, not a 4xx."""
    media = media_type(response_type)
    if media not in CODECS:
        raise ValueError(f"no encoder for response type {response_type!r}; supported: {_supported()}")
    return CODECS[media].encode(obj)


def instance_count(content_type: str, data: Any) -> int | None:
    """How many instances a decoded body holds: the JSON ``"instances"`` list, the JSON Lines
    lines, the CSV rows, the RecordIO records. None when the body does not say (a JSON value
    without an ``"instances"`` list): the predictor judges it."""
    media = media_type(content_type)
    if media == JSON:
        instances = data.get("instances") if isinstance(data, dict) else None
        return len(instances) if isinstance(instances, list) else None
    if media == CSV:
        return int(np.shape(data)[0])
    if media in (JSONLINES, RECORDIO):
        return len(data)
    return None


def _codec(content_type: str) -> Codec:
    media = media_type(content_type)
    if media not in CODECS:
        raise UnsupportedContentType(
            f"Content-Type {content_type!r} is not supported; supported: {_supported()}")
    return CODECS[media]


def _supported() -> str:
    return ", ".join(CODECS)


# ---- JSON and JSON Lines ---------------------------------------------------------------

def _text(body: bytes, media: str) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClientError(f"{media} body is not valid UTF-8: byte {e.start} "
                          f"(0x{body[e.start]:02x}) cannot be decoded") from None
    return text.removeprefix("\ufeff")  # a byte-order mark is allowed, and dropped


def _parse_json(text: str, where: str) -> Any:
    if not text.strip():
        raise ClientError(f"{where} is empty; expected a JSON value")
    try:
        value = json.loads(text)
    except RecursionError:
        raise ClientError(f"{where} nests arrays/objects too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer with too many digits
        raise ClientError(f"{where} is not valid JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_no_lone_surrogates(value, where)
    return value


# An escaped UTF-16 surrogate (\uD800-\uDFFF); paired ones decode to one character, but a lone one
# gives a string that no UTF-8 encoder (tokenizer, response) can write.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_no_lone_surrogates(value: Any, where: str) -> None:
    stack = [value]
    while stack:  # iterative: json.loads already bounded the depth, but not our recursion
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ClientError(f"{where} holds a lone UTF-16 surrogate escape "
                                  f"(\\u{ord(item[e.start]):04x}), which is not a character") from None
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def _decode_json(body: bytes) -> Any:
    return _parse_json(_text(body, JSON), f"{JSON} body")


def _decode_jsonlines(body: bytes) -> list[Any]:
    text = _text(body, JSONLINES)
    # Split on newlines only: JSON strings may legally hold U+2028 and friends.
    return [_parse_json(line, f"{JSONLINES} line {number}")
            for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, recordio.SparseTensor):
        return {"keys": obj.keys.tolist(), "shape": list(obj.shape), "values": obj.values.tolist()}
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot write a value of type {type(obj).__name__} as JSON")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def _encode_json(obj: Any) -> bytes:
    return _dumps(obj).encode("utf-8")


def _encode_jsonlines(items: Any) -> bytes:
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):
        raise TypeError(f"{JSONLINES} needs a list of items, got a {type(items).__name__}")
    return "".join(_dumps(item) + "\n" for item in items).encode("utf-8")


# ---- CSV ------------------------------------------------------------------------------------

def _decode_csv(body: bytes) -> np.ndarray:
    text = _text(body, CSV)
    reader = csv.reader(io.StringIO(text), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (line number where the row ends, cells)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as e:
        raise ClientError(f"{CSV} body is not valid CSV: line {reader.line_num}: {e}") from None
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    width = len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise ClientError(f"{CSV} line {number} has {len(row)} values, but line "
                              f"{rows[0][0]} has {width}; every row needs the same number")
    try:
        with np.errstate(over="ignore"):  # beyond float32's range is inf
            return np.array([row for _, row in rows], dtype=np.float32)
    except ValueError:
        raise _csv_value_error(rows) from None


def _csv_value_error(rows: list[tuple[int, list[str]]]) -> ClientError:
    for number, row in rows:
        for column, cell in enumerate(row, start=1):
            try:
                float(cell)
            except ValueError:
                return ClientError(f"{CSV} line {number}, column {column}: {cell[:50]!r} "
                                   "is not a number; expected numeric values, no header")
    return ClientError(f"{CSV} body holds values that are not numbers")


def _encode_csv(obj: Any) -> bytes:
    array = np.asarray(obj)
    if array.ndim > 2:
        raise TypeError(f"{CSV} needs rows (a 1-D or 2-D array), got shape {array.shape}")
    rows = array.reshape(-1, 1) if array.ndim < 2 else array
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows.tolist())
    return out.getvalue().encode("utf-8")


# ---- RecordIO-protobuf ------------------------------------------------------------------

def _decode_recordio(body: bytes) -> list[dict[str, Any]]:
    try:
        records = list(recordio.read_records(io.BytesIO(body)))
    except ClientError as e:
        raise ClientError(f"{RECORDIO} body: {e.message}") from None
    return [_record_to_dict(record, number) for number, record in enumerate(records, start=1)]


def _record_to_dict(record: recordio.Record, number: int) -> dict[str, Any]:
    where = f"{RECORDIO} record {number}"
    configuration = _string_field(record, "configuration", where)
    return {
        "features": _tensors(record.features, f"{where} features"),
        "label": _tensors(record.label, f"{where} label"),
        "uid": _string_field(record, "uid", where),
        "metadata": _string_field(record, "metadata", where),
        "configuration": (None if configuration is None
                          else _parse_json(configuration, f"{where} configuration")),
    }


def _tensors(values: Any, where: str) -> dict[str, np.ndarray | recordio.SparseTensor]:
    tensors = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise ClientError(f"{where}: a tensor name is not valid UTF-8")
        tensors[name] = recordio.decode_tensor(value, f"{where}[{name!r}]")
    return tensors


def _string_field(record: recordio.Record, field: str, where: str) -> str | None:
    if not record.HasField(field):
        return None
    text = getattr(record, field)
    if not isinstance(text, str):  # the upb runtime hands back bytes for invalid UTF-8
        raise ClientError(f"{where}: {field} is not valid UTF-8")
    return text


def _encode_recordio(items: Any) -> bytes:
    out = io.BytesIO()
    recordio.write_records(out, (_dict_to_record(item) for item in items))
    return out.getvalue()


def _dict_to_record(item: Mapping[str, Any]) -> recordio.Record:
    unknown = set(item) - {"features", "label", "uid"}
    if unknown:
        raise TypeError(f"{RECORDIO} response items take features, label and uid, "
                        f"not {sorted(unknown)}")
    record = recordio.Record()
    for field in ("features", "label"):
        for name, tensor in item.get(field, {}).items():
            getattr(record, field)[name].CopyFrom(_response_value(tensor))
    if item.get("uid") is not None:
        record.uid = item["uid"]
    return record


def _response_value(tensor: Any) -> recordio.Value:
    if isinstance(tensor, recordio.SparseTensor):
        return recordio.sparse_to_value(tensor, _response_dtype(tensor.values))
    array = np.asarray(tensor)
    return recordio.numpy_to_value(array, _response_dtype(array))


def _response_dtype(array: np.ndarray) -> type[np.generic]:
    return np.int32 if array.dtype.kind in "iub" else np.float32


CODECS: Mapping[str, Codec] = MappingProxyType({
    JSON: Codec(_decode_json, _encode_json),
    JSONLINES: Codec(_decode_jsonlines, _encode_jsonlines),
    CSV: Codec(_decode_csv, _encode_csv),
    RECORDIO: Codec(_decode_recordio, _encode_recordio),
})
SUPPORTED: tuple[str, ...] = tuple(CODECS)
