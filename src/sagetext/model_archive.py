"""``model.tar.gz``, as SageMaker makes it from /opt/ml/model and as hosting unpacks it.

``pack(model_dir, path)`` writes a gzip tar with the model folder's files at the archive root
(``model.bin``, not ``model/model.bin``), in name order, owners cleared, so the same folder
gives the same archive. ``unpack(archive, target)`` is for archives from anywhere. It extracts
with tarfile's ``data`` filter, which refuses links to absolute paths or out of the target,
paths that lead out of it, devices, FIFOs and other special files, drops a leading ``/`` (as GNU
tar does), owners and unsafe mode bits. Around it, our own rules: no more than ``max_bytes``
(default 32 GiB, or ``$SAGETEXT_MAX_MODEL_BYTES``) nor ``max_members`` entries; no ``..`` in a
name or a link target, so that no check rests on resolving paths through links (which older
Pythons' filter got wrong); no member over one already extracted (tarfile would overwrite it,
or write through a link). A refusal is a ClientError naming the member. Nothing is written
outside the target, and a target that ``unpack`` created is removed again when it refuses.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from sagetext.errors import ClientError

if not hasattr(tarfile, "data_filter"):  # Python before 3.10.12 / 3.11.4, e.g. Debian 12's 3.11.2
    from backports import tarfile  # type: ignore[no-redef]  # CPython 3.12's tarfile, filters included

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
    member_filter = _MemberFilter(where, max_bytes, max_members)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tar.errorlevel = 2  # every extraction error raises; none is only logged
            tar.extractall(root, filter=member_filter)
    except ClientError:
        raise
    except KeyError as exc:  # tarfile found no member before a hard link with the link's target name
        raise ClientError(f"{member_filter.what}: hard link to {member_filter.linkname!r}, which is not a file "
                          "extracted before it; the link would leave the model folder") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ClientError(f"{where}: not a readable tar or tar.gz file ({exc})") from exc
    except OSError as exc:
        raise ClientError(f"{where}: cannot unpack into {root}: {exc.strerror or exc}") from exc


class _MemberFilter:
    """``extractall``'s filter: our limits and rules on each member, then ``tarfile.data_filter``."""

    def __init__(self, where: str, max_bytes: int, max_members: int) -> None:
        self.where, self.max_bytes, self.max_members = where, max_bytes, max_members
        self.count = self.total = 0
        self.what, self.linkname = where, ""  # the member being extracted, for messages

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        self.count += 1
        self.what, self.linkname = f"{self.where}: member {member.name!r}", member.linkname
        if self.count > self.max_members:
            raise ClientError(f"{self.where}: more than {self.max_members} entries; refusing to unpack it")
        if member.isreg():
            self.total += member.size
            if self.total > self.max_bytes:
                raise ClientError(f"{self.where}: unpacks to more than {self.max_bytes} bytes "
                                  f"(set {MAX_BYTES_ENV} to allow larger models)")
        if ".." in PurePosixPath(member.name).parts:
            raise ClientError(f"{self.what} contains '..'; members must stay inside the archive root")
        if (member.issym() or member.islnk()) and ".." in PurePosixPath(member.linkname).parts:
            raise ClientError(f"{self.what}: {_link_kind(member)} link to {member.linkname!r} may leave the model "
                              "folder; only links without '..' are accepted")
        path = os.path.join(dest, member.name.lstrip("/"))
        if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path) and not os.path.islink(path)):
            raise ClientError(f"{self.what}: appears twice or overwrites an existing file")
        try:
            return tarfile.data_filter(member, dest)
        except tarfile.FilterError as exc:
            raise ClientError(f"{self.what}: {_refusal(exc, member)}") from exc


def _refusal(error: tarfile.FilterError, member: tarfile.TarInfo) -> str:
    if isinstance(error, tarfile.SpecialFileError):
        kind = "device file" if member.ischr() or member.isblk() else "FIFO" if member.isfifo() else \
            f"special entry (tar type {member.type!r})"
        return f"a {kind}; a model archive holds only files, folders and links inside it"
    if isinstance(error, tarfile.AbsoluteLinkError):
        return (f"{_link_kind(member)} link to {member.linkname!r} may leave the model folder: it is an absolute "
                "path; only relative links inside the folder are accepted")
    if isinstance(error, tarfile.LinkOutsideDestinationError):
        return f"{_link_kind(member)} link to {member.linkname!r} leads outside the model folder"
    if isinstance(error, tarfile.AbsolutePathError):
        return "has an absolute path; members must be relative to the archive root"
    return "would unpack outside the model folder (through a link in its path)"  # OutsideDestinationError


def _link_kind(member: tarfile.TarInfo) -> str:
    return "symbolic" if member.issym() else "hard"
