"""The host's view of the directories runs write to: mounted ``nosuid,nodev``.

A run is root inside its sandbox and writes ``/kqi/output`` and ``/kqi/git``,
so it can leave a root-owned setuid binary (or a device node) there. Inside
sandboxes every bind is ``nosuid`` already; ``mount_nosuid`` makes the same
true on the host by bind-mounting the state directory (the runs' directories
and the local store's objects, one mount so that hard links between them
work) on itself with ``nosuid,nodev``, so nothing a run leaves can raise privileges on the host
either. Mounting needs root (CAP_SYS_ADMIN); elsewhere it says why it could
not. The mount stays after the service ends (it is the host's); a later
start finds it and does nothing.
"""

from __future__ import annotations

import ctypes
import os

MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 0x2, 0x4, 0x20, 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


def is_nosuid(path: str) -> bool:
    """Whether ``path`` is on a mount that ignores setuid bits and device nodes."""
    flags = os.statvfs(path).f_flag
    return bool(flags & os.ST_NOSUID) and bool(flags & os.ST_NODEV)


def _mount(source: str | None, target: str, flags: int) -> None:
    if _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def mount_nosuid(path: str) -> str | None:
    """Make ``path`` (created if missing) a ``nosuid,nodev`` mount; None when it is, else why not."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if is_nosuid(path):
        return None
    try:
        _mount(path, path, MS_BIND)
        _mount(None, path, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    except OSError as e:
        return f"the state directory {path} could not be mounted nosuid,nodev: {e.strerror}"
    return None


def release(path: str) -> bool:
    """Detach a mount made by ``mount_nosuid`` (tests clean up with it); False if there was none."""
    return _libc.umount2(path.encode(), MNT_DETACH) == 0
