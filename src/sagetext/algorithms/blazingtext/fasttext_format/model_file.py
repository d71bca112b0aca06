"""fastText's binary model file (``.bin``, format version 12), written and read.

BlazingText's ``model.bin`` is this format, so a model trained here loads in ``fasttext``
(``fasttext.load_model``, ``fasttext predict``) and a model trained by fastText serves here.
Layout (fastText ``fasttext.cc`` ``saveModel``), all little-endian:

- int32 magic 793712314, int32 version (12; 11 is read too);
- args: int32 dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn,
  lrUpdateRate, then float64 t;
- dictionary: int32 size, nwords, nlabels, int64 ntokens, int64 pruneidx_size; per entry
  the word's bytes, a NUL, int64 count, int8 type (0 word, 1 label); pruneidx_size pairs of
  int32;
- uint8 quant_input, then the input matrix: int64 rows, int64 cols, float32 rows*cols;
- uint8 qout, then the output matrix in the same form.

Quantized models (``.ftz``, ``fasttext quantize``) have quant_input 1 and a product-quantized
input matrix (``quantized``; the output too with qout 1), and usually a pruned dictionary:
pruneidx_size > 0 pairs (n-gram bucket, row among the kept n-grams), the other n-grams being
dropped. They are read into dense matrices, with ``ngram_rows`` mapping buckets to rows.

Reading checks every size against the bytes left before allocating, so a truncated or
foreign file is a ``ClientError`` naming what is wrong, never a huge allocation.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format import quantized
from sagetext.algorithms.blazingtext.fasttext_format.dictionary import Dictionary
from sagetext.errors import ClientError

MODEL_FILE = "model.bin"  # a supervised BlazingText model's file name
MAGIC = 793712314
VERSION = 12
READABLE_VERSIONS = (11, 12)
MODEL_NAMES = {1: "cbow", 2: "skipgram", 3: "supervised"}
LOSS_NAMES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
LOSS_CODES = {name: code for code, name in LOSS_NAMES.items()}
_ARGS = struct.Struct("<12id")
_DICT_HEADER = struct.Struct("<3iqq")
_MATRIX_HEADER = struct.Struct("<qq")


@dataclass(frozen=True)
class Args:
    """fastText's saved arguments; the defaults are those of ``fasttext supervised``."""

    dim: int
    word_ngrams: int
    bucket: int
    epoch: int = 5
    min_count: int = 1
    ws: int = 5
    neg: int = 5
    loss: int = 3  # softmax
    model: int = 3  # supervised
    minn: int = 0
    maxn: int = 0
    lr_update_rate: int = 100
    t: float = 1e-4

    def pack(self) -> bytes:
        return _ARGS.pack(self.dim, self.ws, self.epoch, self.min_count, self.neg, self.word_ngrams, self.loss,
                          self.model, self.bucket, self.minn, self.maxn, self.lr_update_rate, self.t)

    @property
    def loss_name(self) -> str:
        return LOSS_NAMES.get(self.loss, f"unknown ({self.loss})")


@dataclass(frozen=True)
class FastTextModel:
    args: Args
    dictionary: Dictionary
    input: np.ndarray  # float32 (rows, dim)
    output: np.ndarray  # float32 (labels, dim) for supervised models
    version: int = VERSION
    ngram_rows: np.ndarray | None = None  # pruned models: n-gram bucket -> row after the words, -1 if dropped


def write(out: BinaryIO, model: FastTextModel) -> None:
    """Write ``model`` in format version 12."""
    write_parts(out, model.args, model.dictionary, [model.input], model.output)


def write_parts(out: BinaryIO, args: Args, d: Dictionary, input_parts: list[np.ndarray],
                output: np.ndarray) -> None:
    """Write a model whose input matrix is ``input_parts`` stacked (word rows, then n-gram
    buckets), without building the stacked matrix in memory."""
    _write_head(out, args, d, None)
    for parts in (input_parts, [output]):
        out.write(b"\0")  # not quantized
        _write_dense(out, parts)


def write_quantized(out: BinaryIO, args: Args, d: Dictionary, pruned: tuple[np.ndarray, np.ndarray] | None,
                    input_matrix: quantized.QuantizedMatrix,
                    output: np.ndarray | quantized.QuantizedMatrix) -> None:
    """A quantized model (``.ftz``): ``pruned`` is (n-gram buckets, their rows after the words)
    for a pruned dictionary, None to keep every bucket; the output matrix dense or quantized."""
    _write_head(out, args, d, pruned)
    out.write(b"\1")
    quantized.write_matrix(out, input_matrix)
    if isinstance(output, quantized.QuantizedMatrix):
        out.write(b"\1")
        quantized.write_matrix(out, output)
    else:
        out.write(b"\0")
        _write_dense(out, [output])


def _write_head(out: BinaryIO, args: Args, d: Dictionary, pruned: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Header, arguments and dictionary (with its pruned n-gram index, if any)."""
    out.write(struct.pack("<ii", MAGIC, VERSION))
    out.write(args.pack())
    out.write(_DICT_HEADER.pack(d.nwords + d.nlabels, d.nwords, d.nlabels, d.ntokens,
                                -1 if pruned is None else len(pruned[0])))
    entries = bytearray()
    for kind, names, counts in ((0, d.words, d.word_counts), (1, d.labels, d.label_counts)):
        for name, count in zip(names, counts.tolist()):
            entries += name + b"\0" + struct.pack("<qb", count, kind)
    out.write(entries)
    if pruned is not None:
        out.write(np.stack([pruned[0], pruned[1]], axis=1).astype("<i4").tobytes())


def _write_dense(out: BinaryIO, parts: list[np.ndarray]) -> None:
    out.write(_MATRIX_HEADER.pack(sum(len(p) for p in parts), parts[0].shape[1]))
    for part in parts:
        for start in range(0, len(part), 65536):  # bounded temporary copies
            out.write(np.ascontiguousarray(part[start:start + 65536], dtype="<f4").tobytes())


def read(data: bytes | mmap.mmap, name: str = MODEL_FILE) -> FastTextModel:
    """Parse a fastText ``.bin`` held in memory or mapped; any inconsistency is a ClientError."""
    reader = _Reader(data, name)
    magic, version = reader.unpack(struct.Struct("<ii"), "header")
    if magic != MAGIC:
        raise ClientError(f"{name} is not a fastText model file (magic number {magic}, expected {MAGIC})")
    if version not in READABLE_VERSIONS:
        raise ClientError(f"{name} has fastText format version {version}; readable versions: "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    args = _read_args(reader, version)
    dictionary, pruned = _read_dictionary(reader)
    quant_input = reader.flag("quant_input")
    matrix_in = quantized.read_matrix(reader, "input matrix") if quant_input else reader.matrix("input matrix")
    qout = reader.flag("qout")
    quant_output = quant_input and qout  # fastText quantizes the output only along with the input
    matrix_out = quantized.read_matrix(reader, "output matrix") if quant_output else reader.matrix("output matrix")
    ngram_rows = None
    if pruned is not None:
        ngram_rows = np.full(args.bucket, -1, dtype=np.int64)
        buckets, rows = pruned
        if len(buckets) and (buckets.min() < 0 or buckets.max() >= args.bucket):
            raise ClientError(f"{name}: pruned n-gram index names a bucket outside 0..{args.bucket - 1}")
        ngram_rows[buckets] = rows
    _check_shapes(name, args, dictionary, matrix_in, matrix_out, ngram_rows)
    return FastTextModel(args, dictionary, matrix_in, matrix_out, version, ngram_rows)


def model_name(path: Path) -> str | None:
    """"supervised", "cbow" or "skipgram" from a fastText .bin's header; None if not fastText's."""
    with open(path, "rb") as f:
        head = f.read(8 + _ARGS.size)
    if len(head) < 8 + _ARGS.size or struct.unpack_from("<i", head)[0] != MAGIC:
        return None
    return MODEL_NAMES.get(_ARGS.unpack_from(head, 8)[7])


def _read_args(reader: "_Reader", version: int) -> Args:
    dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn, lr_rate, t = \
        reader.unpack(_ARGS, "arguments")
    if model == 3 and version == 11:
        maxn = 0  # fastText: old supervised models do not use char n-grams
    return Args(dim=dim, word_ngrams=word_ngrams, bucket=bucket, epoch=epoch, min_count=min_count, ws=ws,
                neg=neg, loss=loss, model=model, minn=minn, maxn=maxn, lr_update_rate=lr_rate, t=t)


def _read_dictionary(reader: "_Reader") -> tuple[Dictionary, tuple[np.ndarray, np.ndarray] | None]:
    """The dictionary, and for a pruned one its (n-gram buckets, rows) pairs."""
    size, nwords, nlabels, ntokens, prune_size = reader.unpack(_DICT_HEADER, "dictionary header")
    if size < 0 or nwords < 0 or nlabels < 0 or nwords + nlabels != size:
        raise ClientError(f"{reader.name}: inconsistent dictionary sizes (size={size}, nwords={nwords}, "
                          f"nlabels={nlabels})")
    if size * 10 > reader.left():  # each entry takes at least 10 bytes
        raise ClientError(f"{reader.name} is truncated or corrupt: a dictionary of {size} entries does not fit "
                          f"in the {reader.left()} bytes left")
    names: list[bytes] = []
    counts = np.empty(size, dtype=np.int64)
    kinds = np.empty(size, dtype=np.int8)
    for i in range(size):
        names.append(reader.cstring("dictionary entry"))
        counts[i], kinds[i] = reader.unpack(struct.Struct("<qb"), "dictionary entry")
    if (kinds[:nwords] != 0).any() or (kinds[nwords:] != 1).any():
        raise ClientError(f"{reader.name}: dictionary entry types do not match nwords={nwords}")
    pruned = None
    if prune_size >= 0:  # -1: not pruned
        pairs = reader.array("<i4", 2 * prune_size, "pruned n-gram index").reshape(-1, 2).astype(np.int64)
        pruned = pairs[:, 0], pairs[:, 1]
    dictionary = Dictionary(tuple(names[:nwords]), counts[:nwords], tuple(names[nwords:]), counts[nwords:], ntokens)
    return dictionary, pruned


def _check_shapes(name: str, args: Args, d: Dictionary, matrix_in: np.ndarray, matrix_out: np.ndarray,
                  ngram_rows: np.ndarray | None) -> None:
    if matrix_in.shape[1] != args.dim or matrix_out.shape[1] != args.dim:
        raise ClientError(f"{name}: matrix widths {matrix_in.shape[1]}, {matrix_out.shape[1]} "
                          f"differ from dim={args.dim}")
    # a pruned model keeps the n-gram rows its index names (fastText keeps exactly those)
    ngrams = args.bucket if ngram_rows is None else int(ngram_rows.max(initial=-1)) + 1
    if matrix_in.shape[0] != d.nwords + ngrams:
        raise ClientError(f"{name}: input matrix has {matrix_in.shape[0]} rows, expected words + n-gram rows = "
                          f"{d.nwords} + {ngrams}")
    if args.model == 3 and matrix_out.shape[0] != d.nlabels:
        raise ClientError(f"{name}: output matrix has {matrix_out.shape[0]} rows, expected one per label ({d.nlabels})")


class _Reader:
    """Bounds-checked little-endian reads from the file's bytes."""

    def __init__(self, data: bytes | mmap.mmap, name: str) -> None:
        self.data = data
        self.name = name
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def _need(self, size: int, what: str) -> None:
        if size < 0 or size > self.left():
            raise ClientError(f"{self.name} is truncated or corrupt: {what} needs {size} bytes, "
                              f"{self.left()} left at offset {self.pos}")

    def unpack(self, layout: struct.Struct, what: str) -> tuple:
        self._need(layout.size, what)
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def flag(self, what: str) -> bool:
        (value,) = self.unpack(struct.Struct("<B"), what)
        if value > 1:
            raise ClientError(f"{self.name}: {what} flag is {value}, expected 0 or 1")
        return bool(value)

    def cstring(self, what: str) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ClientError(f"{self.name}: unterminated {what} at offset {self.pos}")
        value = self.data[self.pos:end]
        self.pos = end + 1
        return value

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        """``count`` values of ``dtype`` (a copy), after checking they are there."""
        item = np.dtype(dtype).itemsize
        if count < 0 or count > self.left() // item:
            raise ClientError(f"{self.name} is truncated or corrupt: {what} of {count} values does not fit in "
                              f"the {self.left()} bytes left")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).copy()
        self.pos += count * item
        return values

    def matrix(self, what: str) -> np.ndarray:
        rows, cols = self.unpack(_MATRIX_HEADER, what)
        if rows < 0 or cols < 0 or (cols and rows > self.left() // (4 * cols)):
            raise ClientError(f"{self.name} is truncated or corrupt: {what} of {rows} x {cols} does not fit in "
                              f"the {self.left()} bytes left")
        size = rows * cols * 4
        self._need(size, what)
        values = np.frombuffer(self.data, dtype="<f4", count=rows * cols, offset=self.pos).reshape(rows, cols)
        self.pos += size
        return values.astype(np.float32, copy=True)
