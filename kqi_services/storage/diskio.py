"""File helpers the local store's modules share: whole writes, range copies, writeback, flushes.

``uploads`` (parts and their assembly) and ``local`` (objects and bindings)
both write, copy and flush files; the helpers live here so neither has a copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable

READ_CHUNK = 1024 * 1024


def copy_range(src_fd: int, out_fd: int, size: int, src_offset: int = 0) -> None:
    """Append ``size`` bytes of ``src_fd`` from ``src_offset`` to ``out_fd``: copy_file_range, else read/write."""
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(src_fd, out_fd, size - done, src_offset + done)
            if copied == 0:
                raise OSError(errno.EIO, "The file shrank while it was copied")
            done += copied
        return
    except OSError as e:
        if done or e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    while done < size:
        chunk = os.pread(src_fd, min(READ_CHUNK, size - done), src_offset + done)
        if not chunk:
            raise OSError(errno.EIO, "The file shrank while it was copied")
        write_all(out_fd, memoryview(chunk))
        done += len(chunk)


def write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a file's dirty pages in that range to the disk, without waiting (Linux; else nothing).

    Only a head start for the fsync that makes the bytes durable: an error
    here is reported again by that fsync.
    """
    if length > 0 and _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def fsync_path(path: str) -> None:
    """Flush a file's bytes, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mtime(path: str) -> float:
    """The modification time of ``path``; 0.0 when there is none."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def unlink_if_present(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
_LIBC = ctypes.CDLL(None, use_errno=True)


def link_fd(fd: int, dest: str) -> None:
    """Give the open file ``fd`` the new name ``dest`` (a hard link to its inode, not to a path).

    ``linkat`` of ``/proc/self/fd/N`` with ``AT_SYMLINK_FOLLOW`` (needs no
    capability; ``os.link`` would link the magic link itself and fail with
    EXDEV). Raises OSError as ``link`` does (EXDEV across filesystems).
    """
    if _LIBC.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, os.fsencode(dest), AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dest)
