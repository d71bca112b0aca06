"""model.tar.gz: packed as SageMaker packs /opt/ml/model, unpacked without trusting the archive."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from sagetext import model_archive
from sagetext.errors import ClientError


def make_model(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\x00weights" * 100)
    (folder / "vocab.txt").write_text("a\nb\n")
    (folder / "sub" / "config.json").write_text("{}")
    return folder


def test_pack_puts_files_at_the_root_in_name_order(tmp_path: Path) -> None:
    archive = model_archive.pack(make_model(tmp_path / "model"), tmp_path / "out" / "model.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["model.bin", "sub", "sub/config.json", "vocab.txt"]
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)


def test_pack_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    first = model_archive.pack(model, tmp_path / "a.tar.gz").read_bytes()
    assert model_archive.pack(model, tmp_path / "b.tar.gz").read_bytes() == first
    out = model_archive.unpack(tmp_path / "a.tar.gz", tmp_path / "unpacked")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["model.bin", "sub", "sub/config.json", "vocab.txt"]
    assert (out / "model.bin").read_bytes() == (model / "model.bin").read_bytes()


def test_pack_stores_a_linked_file_as_a_copy(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    (model / "latest.bin").symlink_to("model.bin")
    out = model_archive.unpack(model_archive.pack(model, tmp_path / "m.tar.gz"), tmp_path / "u")
    assert not (out / "latest.bin").is_symlink()
    assert (out / "latest.bin").read_bytes() == (model / "model.bin").read_bytes()


def test_unpack_accepts_dot_slash_names_and_links_inside(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.tar", [file("./model.bin", b"w"), link("./alias.bin", "model.bin"),
                                         hardlink("copy.bin", "./model.bin")])
    out = model_archive.unpack(archive, tmp_path / "u")
    assert (out / "alias.bin").read_bytes() == b"w" and (out / "copy.bin").read_bytes() == b"w"


# --- hostile archives: each is refused, and nothing lands outside the target -------------------

def file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def build(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


HOSTILE = {
    "dotdot": ([file("../evil", b"pwned")], r"'\.\./evil' contains '\.\.'"),
    "nested dotdot": ([file("sub/../../evil", b"pwned")], r"contains '\.\.'"),
    "symlink to /": ([link("root", "/")], r"symbolic link to '/' may leave the model folder"),
    "symlink up": ([link("up", "../..")], r"symbolic link to '\.\./\.\.' may leave"),
    "link chain up": ([link("b", "."), link("a", "b/..")], r"symbolic link to 'b/\.\.' may leave"),
    "write through symlink": ([link("up", "/tmp"), file("up/evil", b"pwned")], r"symbolic link to '/tmp'"),
    "hardlink out": ([hardlink("passwd", "/etc/passwd")], r"absolute path"),
    "hardlink dotdot": ([file("a"), hardlink("x", "sub/../../a")], r"hard link to 'sub/\.\./\.\./a' may leave"),
    "hardlink to unknown": ([hardlink("x", "not-extracted")], r"hard link to 'not-extracted', which is not"),
    "fifo": ([special("pipe", tarfile.FIFOTYPE)], r"'pipe': a FIFO"),
    "char device": ([special("null", tarfile.CHRTYPE)], r"'null': a device file"),
    "block device": ([special("sda", tarfile.BLKTYPE)], r"'sda': a device file"),
    "duplicate": ([file("model.bin", b"a"), file("model.bin", b"b")], r"appears twice"),
    "file over link": ([link("a", "b"), file("a", b"pwned")], r"appears twice or overwrites"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(case: str, tmp_path: Path) -> None:
    members, message = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = build(tmp_path / "outside" / "evil.tar.gz", members)
    target = outside / "target"
    with pytest.raises(ClientError, match=message) as error:
        model_archive.unpack(archive, target)
    assert str(archive) in error.value.message
    assert not target.exists()  # removed again, as unpack created it
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.tar.gz", "outside"]


def test_an_absolute_name_unpacks_inside_the_target(tmp_path: Path) -> None:
    """As GNU tar does (and tarfile's data filter): the leading '/' is dropped."""
    out = model_archive.unpack(build(tmp_path / "a.tar", [file("/etc/passwd", b"mine")]), tmp_path / "u")
    assert (out / "etc" / "passwd").read_bytes() == b"mine"


def test_unpacked_files_lose_owners_and_unsafe_mode_bits(tmp_path: Path) -> None:
    info, data = file("tool", b"#!/bin/sh\n")
    info.mode, info.uid, info.uname = 0o4777, 4242, "someone"
    out = model_archive.unpack(build(tmp_path / "a.tar", [(info, data)]), tmp_path / "u")
    assert (out / "tool").stat().st_mode & 0o7777 == 0o755
    assert (out / "tool").stat().st_uid == os.getuid()


def test_the_backport_does_the_same_where_the_standard_library_has_no_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backport = pytest.importorskip("backports.tarfile")
    monkeypatch.setattr(model_archive, "tarfile", backport)
    archive = model_archive.pack(make_model(tmp_path / "model"), tmp_path / "m.tar.gz")
    assert (model_archive.unpack(archive, tmp_path / "u") / "sub" / "config.json").read_text() == "{}"
    for number, case in enumerate(["symlink to /", "fifo", "duplicate", "dotdot"]):
        members, message = HOSTILE[case]
        with pytest.raises(ClientError, match=message):
            model_archive.unpack(build(tmp_path / f"{number}.tar", members), tmp_path / f"target-{number}")
        assert not (tmp_path / f"target-{number}").exists()


def test_refusal_leaves_an_existing_target_in_place(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ClientError):
        model_archive.unpack(build(tmp_path / "a.tar", [file("../evil")]), target)
    assert (target / "keep.txt").read_text() == "mine" and not (tmp_path / "evil").exists()


def test_size_and_member_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = build(tmp_path / "big.tar.gz", [file("a", b"0" * 600), file("b", b"0" * 600)])
    with pytest.raises(ClientError, match=r"unpacks to more than 1000 bytes \(set SAGETEXT_MAX_MODEL_BYTES"):
        model_archive.unpack(archive, tmp_path / "u1", max_bytes=1000)
    monkeypatch.setenv(model_archive.MAX_BYTES_ENV, "1100")
    with pytest.raises(ClientError, match="more than 1100 bytes"):
        model_archive.unpack(archive, tmp_path / "u2")
    monkeypatch.setenv(model_archive.MAX_BYTES_ENV, "lots")
    with pytest.raises(ClientError, match=r"SAGETEXT_MAX_MODEL_BYTES='lots': expected a positive number"):
        model_archive.unpack(archive, tmp_path / "u3")
    with pytest.raises(ClientError, match="more than 1 entries"):
        model_archive.unpack(archive, tmp_path / "u4", max_bytes=10_000, max_members=1)


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "model.tar.gz"
    junk.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(ClientError, match=r"not a readable tar or tar.gz file"):
        model_archive.unpack(junk, tmp_path / "u")


def test_unpacked_files_are_plain_and_not_setuid(tmp_path: Path) -> None:
    info, data = file("run.sh", b"#!/bin/sh\n")
    info.mode = 0o4777
    out = model_archive.unpack(build(tmp_path / "a.tar", [(info, data)]), tmp_path / "u")
    assert os.stat(out / "run.sh").st_mode & 0o7777 == 0o755
