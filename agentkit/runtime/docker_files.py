"""Tar archives for moving files in and out of a container with the engine's archive API.

The archive API is binary safe (no shell quoting, no encoding), needs no tool inside the image,
and creates missing parent directories on extraction. Uploaded entries are owned by root, the
user most task images run as.
"""

from __future__ import annotations

import io
import posixpath
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

SPOOL_LIMIT = 64 * 1024 * 1024
"""Archives up to this size stay in memory; bigger ones spill to a temporary file."""


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def file_archive(path: str, data: bytes, mode: int = 0o644) -> bytes:
    """A tar holding one regular file at absolute ``path`` (stored relative to ``/``)."""
    buf = io.BytesIO()
    info = _as_root(tarfile.TarInfo(path.lstrip("/")))
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree_archive(local: Path, remote: str) -> IO[bytes]:
    """A tar of a host file or directory, named so that extracting at ``/`` lands on ``remote``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)  # noqa: SIM115 - returned open
    with tarfile.open(fileobj=spool, mode="w") as tar:
        tar.add(str(local), arcname=remote.lstrip("/"), recursive=True, filter=_as_root)
    spool.seek(0)
    return spool


def spool_stream(chunks: Iterable[bytes]) -> IO[bytes]:
    """Collect an archive stream from the engine into a seekable file."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)  # noqa: SIM115 - returned open
    for chunk in chunks:
        spool.write(chunk)
    spool.seek(0)
    return spool


def single_file(archive: IO[bytes], path: str) -> tuple[bytes | None, str | None]:
    """The content of the first entry of an archive, or the target of a symlink entry.

    Returns ``(data, None)`` for a regular file and ``(None, target)`` for a symlink (the engine
    does not follow the last path component); raises ``IsADirectoryError`` for a directory.
    """
    with tarfile.open(fileobj=archive, mode="r") as tar:
        member = tar.next()
        if member is None:
            raise FileNotFoundError(f"no such file in the sandbox: {path}")
        if member.isdir():
            raise IsADirectoryError(f"is a directory, not a file: {path}")
        if member.issym():
            return None, posixpath.normpath(
                posixpath.join(posixpath.dirname(path), member.linkname)
            )
        extracted = tar.extractfile(member)
        if extracted is None:
            raise OSError(f"not a regular file: {path}")
        return extracted.read(), None


def extract_to(archive: IO[bytes], remote: str, local: Path) -> None:
    """Extract an archive of ``remote`` (file or directory) so that it lands on ``local``.

    Extraction uses the standard library's ``tar`` filter (no absolute names, nothing outside the
    destination), into a scratch directory first so a failure leaves ``local`` untouched.
    """
    local.parent.mkdir(parents=True, exist_ok=True)
    top = posixpath.basename(remote.rstrip("/")) or "."
    with tempfile.TemporaryDirectory(dir=local.parent, prefix=".agentkit-dl-") as scratch:
        with tarfile.open(fileobj=archive, mode="r") as tar:
            tar.extractall(scratch, filter="tar")
        src = Path(scratch) / top
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, local, symlinks=True, dirs_exist_ok=True)
        else:
            if local.is_dir() and not local.is_symlink():
                raise IsADirectoryError(f"cannot replace the directory {local} with a file")
            src.replace(local)
