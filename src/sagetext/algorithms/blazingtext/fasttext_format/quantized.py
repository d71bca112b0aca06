"""fastText's quantized matrices (``.ftz``, ``fasttext quantize``), decoded to dense at load.

A quantized matrix (fastText ``QuantMatrix``) stores each row as ``nsubq`` one-byte codes of a
product quantizer: the row's dimensions are cut into ``nsubq`` slices of ``dsub`` values (the
last slice ``lastdsub``), and code ``c`` of slice ``m`` stands for centroid ``c`` of that slice
(256 centroids a slice). With ``qnorm`` the rows were normalised before coding and a second,
one-dimensional quantizer holds each row's norm. Layout, little-endian:

- uint8 qnorm, int64 rows, int64 cols, int32 codesize, codesize uint8 codes (rows x nsubq);
- the quantizer: int32 dim, nsubq, dsub, lastdsub, then dim x 256 float32 centroids;
- with qnorm: rows uint8 norm codes, then the norm quantizer (dim 1) in the same form.

Decoding gives back exactly the vectors fastText computes with, so predictions match its own.
``QuantizedMatrix`` holds a matrix in this form; ``write_matrix`` writes it (``quantize``
makes one).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import numpy as np

from sagetext.errors import ClientError

KSUB = 256  # centroids per slice: fastText's 8-bit codes
MAX_EXPANSION = 256  # decoded bytes per code byte: 4 * dsub; fastText's default dsub is 2, 64 is plenty
_HEADER = struct.Struct("<?qqi")
_QUANTIZER = struct.Struct("<4i")


class Reader(Protocol):
    """The bounds-checked reader of ``model_file``."""

    name: str

    def unpack(self, layout: struct.Struct, what: str) -> tuple: ...

    def array(self, dtype: str, count: int, what: str) -> np.ndarray: ...


@dataclass(frozen=True)
class ProductQuantizer:
    """``nsubq`` slices of ``dsub`` dimensions (the last ``lastdsub``), 256 centroids each."""

    dim: int
    dsub: int
    centroids: np.ndarray  # float32, dim * KSUB: slice m's centroids from m * KSUB * dsub, row-major

    @property
    def nsubq(self) -> int:
        return -(-self.dim // self.dsub)

    @property
    def lastdsub(self) -> int:
        return self.dim - (self.nsubq - 1) * self.dsub

    def slice_centroids(self, m: int) -> np.ndarray:
        """(KSUB, width) centroids of slice ``m``."""
        width = self.dsub if m < self.nsubq - 1 else self.lastdsub
        start = m * KSUB * self.dsub
        return self.centroids[start:start + KSUB * width].reshape(KSUB, width)

    def pack(self) -> bytes:
        return _QUANTIZER.pack(self.dim, self.nsubq, self.dsub, self.lastdsub) + self.centroids.astype("<f4").tobytes()


@dataclass(frozen=True)
class QuantizedMatrix:
    """A matrix as product-quantizer codes (rows x nsubq), with norms coded apart when ``norm_codes``."""

    rows: int
    cols: int
    codes: np.ndarray  # uint8 (rows, nsubq)
    quantizer: ProductQuantizer
    norm_codes: np.ndarray | None = None  # uint8 (rows,), with ``norm_quantizer``
    norm_quantizer: ProductQuantizer | None = None

    def decode(self) -> np.ndarray:
        """The dense float32 matrix fastText computes with."""
        out = np.empty((self.rows, self.cols), dtype=np.float32)
        q = self.quantizer
        for m in range(q.nsubq):
            out[:, m * q.dsub:m * q.dsub + q.slice_centroids(m).shape[1]] = q.slice_centroids(m)[self.codes[:, m]]
        if self.norm_codes is not None and self.norm_quantizer is not None:
            out *= self.norm_quantizer.centroids[self.norm_codes][:, None]
        return out


def write_matrix(out: BinaryIO, matrix: QuantizedMatrix) -> None:
    """``matrix`` in fastText's ``QuantMatrix::save`` layout (the one ``read_matrix`` reads)."""
    qnorm = matrix.norm_codes is not None and matrix.norm_quantizer is not None
    out.write(_HEADER.pack(qnorm, matrix.rows, matrix.cols, matrix.codes.size))
    out.write(np.ascontiguousarray(matrix.codes, dtype=np.uint8).tobytes())
    out.write(matrix.quantizer.pack())
    if qnorm:
        assert matrix.norm_codes is not None and matrix.norm_quantizer is not None
        out.write(np.ascontiguousarray(matrix.norm_codes, dtype=np.uint8).tobytes())
        out.write(matrix.norm_quantizer.pack())


def read_matrix(reader: Reader, what: str) -> np.ndarray:
    """A quantized matrix from ``reader``, as dense float32 (rows, cols)."""
    qnorm, rows, cols, codesize = reader.unpack(_HEADER, f"quantized {what} header")
    if rows < 0 or cols <= 0 or codesize < 0:
        raise ClientError(f"{reader.name}: quantized {what} has {rows} x {cols} rows and {codesize} codes")
    codes = reader.array("u1", codesize, f"{what} codes")
    centroids, nsubq, dsub, lastdsub = _quantizer(reader, f"{what} quantizer", expected_dim=cols)
    if codesize != rows * nsubq:
        raise ClientError(f"{reader.name}: quantized {what} has {codesize} codes for {rows} rows of {nsubq} slices")
    if rows * cols * 4 > MAX_EXPANSION * codesize + (1 << 20):
        raise ClientError(f"{reader.name}: quantized {what} of {rows} x {cols} would decode to "
                          f"{rows * cols * 4} bytes from {codesize} bytes of codes (slices of {dsub}); "
                          f"at most {MAX_EXPANSION} bytes per code byte are accepted")
    out = np.empty((rows, cols), dtype=np.float32)
    table = codes.reshape(rows, nsubq)
    for m in range(nsubq):
        width = dsub if m < nsubq - 1 else lastdsub
        slice_centroids = centroids[m * KSUB * dsub:m * KSUB * dsub + KSUB * width].reshape(KSUB, width)
        out[:, m * dsub:m * dsub + width] = slice_centroids[table[:, m]]
    if qnorm:
        norm_codes = reader.array("u1", rows, f"{what} norm codes")
        norms, _, _, _ = _quantizer(reader, f"{what} norm quantizer", expected_dim=1)
        out *= norms[norm_codes][:, None]
    return out


def _quantizer(reader: Reader, what: str, expected_dim: int) -> tuple[np.ndarray, int, int, int]:
    """(centroids, nsubq, dsub, lastdsub) of a product quantizer, checked."""
    dim, nsubq, dsub, lastdsub = reader.unpack(_QUANTIZER, what)
    if (dim != expected_dim or nsubq < 1 or dsub < 1 or not 1 <= lastdsub <= dsub
            or (nsubq - 1) * dsub + lastdsub != dim):
        raise ClientError(f"{reader.name}: {what} (dim {dim}, {nsubq} slices of {dsub}, last {lastdsub}) does not "
                          f"cover the matrix width {expected_dim}")
    return reader.array("<f4", dim * KSUB, f"{what} centroids"), nsubq, dsub, lastdsub
