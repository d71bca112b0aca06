"""``model.tar.gz``, as SageMaker makes it from /opt/ml/model and as hosting unpacks it.

``pack(model_dir, path)`` writes a gzip tar with the model folder's files at the archive root
(``model.bin``, not ``model/model.bin``), in name order, owners cleared, so the same folder
gives the same archive. ``unpack(archive, target)`` is for archives from anywhere: it refuses,
with a ClientError naming the member, absolute names, ``..``, links that could leave the target
(a symbolic link must point down its own folder: relative, no ``..``; a hard link must name a
file already extracted), devices, FIFOs and other special files, names already extracted,
and archives that would unpack to more than ``max_bytes`` (default 32 GiB, or
``$SAGETEXT_MAX_MODEL_BYTES``) or more than ``max_members`` entries. Nothing is written outside
the target, and a target that ``unpack`` created is removed again when it refuses.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from sagetext.errors import ClientError

ARCHIVE_NAME = "model.tar.gz"
MAX_BYTES_ENV = "SAGETEXT_MAX_MODEL_BYTES"
DEFAULT_MAX_BYTES = 32 << 30
DEFAULT_MAX_MEMBERS = 100_000
_CHUNK = 1 << 20


def pack(model_dir: Path, path: Path) -> Path:
    """``model_dir``'s files and folders, at the root of the gzip tar ``path``; returns ``path``.

    A symbolic link to a file inside the model folder is stored as a copy of the file."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ClientError(f"model folder {model_dir} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    try:
        with open(partial, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in _entries(model_dir):
                info = tar.gettarinfo(str(entry), arcname=entry.relative_to(model_dir).as_posix())
                if entry.is_symlink():
                    info = tar.gettarinfo(str(entry.resolve()), arcname=info.name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with open(entry, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def _entries(model_dir: Path) -> list[Path]:
    """Folders and files under ``model_dir`` in name order; anything else is refused."""
    entries = []
    root = model_dir.resolve()
    for current, dirs, files in os.walk(model_dir):
        dirs.sort()
        for name in sorted(dirs + files):
            entry = Path(current) / name
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_file() or not target.is_relative_to(root):
                    raise ClientError(f"{entry}: a link to something other than a file in the "
                                      "model folder; model folders hold plain files and folders")
            elif not (entry.is_dir() or entry.is_file()):
                raise ClientError(f"{entry}: not a plain file or folder; cannot go into {ARCHIVE_NAME}")
            entries.append(entry)
    return sorted(entries, key=lambda p: p.relative_to(model_dir).parts)


def max_bytes_from_env() -> int:
    value = os.environ.get(MAX_BYTES_ENV)
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(value)
        if limit > 0:
            return limit
    except ValueError:
        pass
    raise ClientError(f"{MAX_BYTES_ENV}={value!r}: expected a positive number of bytes")


def unpack(archive: Path, target: Path, max_bytes: int | None = None,
           max_members: int = DEFAULT_MAX_MEMBERS) -> Path:
    """Extract the tar (gzip or plain) ``archive`` into ``target`` safely; returns ``target``."""
    limit = max_bytes_from_env() if max_bytes is None else max_bytes
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        _unpack(Path(archive), target.resolve(), limit, max_members)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _unpack(archive: Path, root: Path, max_bytes: int, max_members: int) -> None:
    where = f"model archive {archive}"
    total = 0
    extracted: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise ClientError(f"{where}: more than {max_members} entries; refusing to unpack it")
                name = _safe_name(member.name, where)
                if name is None:  # "." or "./": the root folder itself
                    continue
                what = f"{where}: member {member.name!r}"
                dest = root / name
                _check_parent(dest, root, what)
                existing_folder = dest.is_dir() and not dest.is_symlink()
                if os.path.lexists(dest) and not (member.isdir() and existing_folder):
                    raise ClientError(f"{what}: appears twice or overwrites an existing file")
                if member.isdir():
                    dest.mkdir(mode=0o755, exist_ok=True)
                elif member.isreg():
                    total += member.size
                    if total > max_bytes:
                        raise ClientError(f"{where}: unpacks to more than {max_bytes} bytes "
                                          f"(set {MAX_BYTES_ENV} to allow larger models)")
                    _write_file(tar, member, dest)
                elif member.issym():
                    link = PurePosixPath(member.linkname)
                    if link.is_absolute() or ".." in link.parts or not member.linkname:
                        raise ClientError(f"{what}: symbolic link to {member.linkname!r} may leave the "
                                          "model folder; only relative links without '..' are accepted")
                    os.symlink(member.linkname, dest)
                elif member.islnk():
                    source_name = _safe_name(member.linkname, where)
                    if source_name not in extracted or not (root / source_name).is_file() \
                            or (root / source_name).is_symlink():
                        raise ClientError(f"{what}: hard link to {member.linkname!r}, which is not a "
                                          "file extracted before it; the link would leave the model folder")
                    _check_parent(root / source_name, root, what)
                    shutil.copyfile(root / source_name, dest, follow_symlinks=False)
                else:
                    raise ClientError(f"{what}: a {_kind(member)}; a model archive holds only files, "
                                      "folders and links inside it")
                extracted.add(name)
    except ClientError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ClientError(f"{where}: not a readable tar or tar.gz file ({exc})") from exc
    except OSError as exc:
        raise ClientError(f"{where}: cannot unpack into {root}: {exc.strerror or exc}") from exc


def _safe_name(name: str, where: str) -> str | None:
    """The member's path relative to the target, or a ClientError if it could leave it."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise ClientError(f"{where}: member {name!r} has an absolute path; "
                          "members must be relative to the archive root")
    if ".." in path.parts or "\\" in name or "\0" in name:
        raise ClientError(f"{where}: member {name!r} contains '..' or a backslash; "
                          "members must stay inside the archive root")
    parts = [part for part in path.parts if part != "."]
    return "/".join(parts) if parts else None


def _check_parent(dest: Path, root: Path, what: str) -> None:
    """``dest``'s folder, with every link in it followed, must be inside ``root``."""
    real = Path(os.path.realpath(dest.parent))
    if real != root and not real.is_relative_to(root):
        raise ClientError(f"{what}: its folder resolves to {real}, outside the model folder")
    dest.parent.mkdir(parents=True, exist_ok=True)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    mode = 0o755 if member.mode & 0o111 else 0o644
    source = tar.extractfile(member)
    assert source is not None  # a regular member always has a file object
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(source, f, _CHUNK)


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return f"special entry (tar type {member.type!r})"
