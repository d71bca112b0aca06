"""Channel files: gzip, bzip2 and xz undone by their magic bytes; other binary content refused."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import random
import struct
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from sagetext.contract.channels import Channel
from sagetext.contract.paths import Paths
from sagetext.data import compression
from sagetext.errors import ClientError

TEXT = "".join(f"__label__{i % 3} line {i} with some words ünïcode\n" for i in range(3000)).encode("utf-8")
COMPRESS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}
RECORDIO = struct.pack("<II", 0xCED7230A, 3) + b"abc\0"


def read(data: bytes, name: str = "f") -> bytes:
    return compression.open_stream(io.BytesIO(data), name).read()


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_compressed_content_reads_as_the_original(kind: str) -> None:
    assert read(COMPRESS[kind](TEXT)) == TEXT
    assert read(COMPRESS[kind](TEXT) + COMPRESS[kind](b"more\n")) == TEXT + b"more\n"  # concatenated streams
    assert read(COMPRESS[kind](RECORDIO)) == RECORDIO


def test_content_decides_not_the_name(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    folder = paths.channel_dir("train")
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(lzma.compress(TEXT))  # xz named .txt
    (folder / "b.gz").write_bytes(b"plain text named .gz\n")
    (folder / "c").write_bytes(bz2.compress(b"no suffix at all\n"))
    got = {name: stream.read() for name, stream in Channel("train", paths=paths).streams()}
    assert got == {"a.txt": TEXT, "b.gz": b"plain text named .gz\n", "c": b"no suffix at all\n"}


def test_text_and_recordio_pass_untouched() -> None:
    """Text with stray control bytes or NULs, or in a legacy encoding (its bad bytes are the
    readers' to replace), is still text."""
    legacy = ["Le garçon a mangé une crème brûlée.\n".encode("latin-1") * 20, "中文文本的例子。\n".encode("gbk") * 20]
    odd = [b"x,1,2\r\n\tcolumns\f\x1b[1mbold\n", b"__label__a w\0x\n" * 10, b"\x08\n", b"\x00\x01\x02\x03" * 10]
    for data in (b"", b"a", TEXT, RECORDIO, "日本語のテキスト\n".encode(), *legacy, *odd):
        stream = compression.open_stream(io.BytesIO(data), "f")
        assert stream.peek(4)[:4] == data[:4] and stream.read() == data


def zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("train.txt", data)
    return out.getvalue()


def tarred(data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("train.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("data,needle", [
    (zipped(TEXT), "is a zip archive"),
    (b"\x28\xb5\x2f\xfd\x20\x05\x29\x00\x00hello", "is zstd-compressed"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(40), "is a 7z archive"),
    (gzip.compress(tarred(TEXT)), "holds, gzip-compressed, a tar archive"),
    (random.Random(0).randbytes(5000), "is not UTF-8 text or RecordIO but binary data"),
    (random.Random(1).randbytes(100).replace(b"\0", b"\1"), "is not UTF-8 text or RecordIO but binary data"),
    (lzma.compress(random.Random(2).randbytes(5000)), "holds xz-compressed data that is not UTF-8 text or RecordIO"),
    ("utf-16 text\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    (struct.pack("<256f", *[i / 7 for i in range(256)]), "is not UTF-8 text or RecordIO but binary data"),
])
def test_other_binary_content_is_refused_naming_the_file(data: bytes, needle: str) -> None:
    with pytest.raises(ClientError) as info:
        read(data, "channel 'train', file data.bin")
    assert info.value.message.startswith(f"channel 'train', file data.bin: {needle}"), info.value.message


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_corrupt_or_truncated_compressed_data_names_the_file(kind: str) -> None:
    whole = COMPRESS[kind](TEXT)
    damaged = whole[:len(whole) // 2] + bytes(64) + whole[len(whole) // 2 + 64:]
    for data in (whole[:len(whole) // 2], damaged):
        with pytest.raises(ClientError) as info:
            read(data, "file t.txt")
        assert info.value.message.startswith(f"file t.txt: starts like a {kind} file but cannot be decompressed")


def test_a_pipe_that_delivers_a_few_bytes_at_a_time(tmp_path: Path) -> None:
    """Pipe mode: the magic bytes and the first block may arrive in pieces; nothing is lost."""
    data = gzip.compress(TEXT)
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb", buffering=0) as pipe:
            for piece in (data[:1], data[1:3], data[3:10]):
                pipe.write(piece)
                time.sleep(0.05)
            pipe.write(data[10:])

    writer = threading.Thread(target=write)
    writer.start()
    with os.fdopen(read_end, "rb") as raw:
        assert compression.open_stream(raw, "pipe train_0").read() == TEXT
    writer.join()


def test_read_bytes_and_open_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(bz2.compress(b"a\nb\n"))
    assert compression.read_bytes(path) == b"a\nb\n"
    with compression.open_file(path) as stream:
        assert list(stream) == [b"a\n", b"b\n"]
    path.write_bytes(zipped(b"a\n"))
    with pytest.raises(ClientError, match="^vocab.txt: is a zip archive"):
        compression.read_bytes(path)
