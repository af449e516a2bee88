"""A run's files on the host (/kqi/output, /kqi/attach, parents), read without ever following a symlink.

A run owns everything below its output directory and may change it while
the service reads it: swap a directory for a symlink to a host directory
between two system calls (``renameat2(RENAME_EXCHANGE)``), leave a FIFO
where a file was, name a file with bytes that are not UTF-8. So nothing here
resolves a path string and opens it later. ``RunTree`` opens the root once
and works from directory fds:

* a path below it is opened with openat2(2) and ``RESOLVE_BENEATH |
  RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`` (Linux 5.6 and later), else
  one component at a time with ``O_NOFOLLOW | O_DIRECTORY`` from the parent's
  fd: a symlink at any component is refused, never followed;
* a leaf is checked with ``fstatat(AT_SYMLINK_NOFOLLOW)`` before it is opened
  and with ``fstat`` after (it is opened ``O_NONBLOCK | O_NOFOLLOW``, so a
  FIFO swapped in meanwhile cannot block): only regular files are read and
  only directories are entered; anything else is reported with its ``kind``;
* names are bytes. ``display_name`` shows one as text (UTF-8, each byte that
  is not UTF-8 as ``%XX``); ``url_path`` percent-encodes the raw bytes for a
  URL; ``components`` turns a path the API got back (text, surrogate-escaped
  bytes, or a ``display_name``) into the names on disk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from kqi_services.errors import InvalidInput, NotFound

SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "ppc64le": 437, "s390x": 437, "riscv64": 437}.get(os.uname().machine)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
#: errors that mean "a symlink (or something that is not a directory) is in the way"
REFUSED = (errno.ELOOP, errno.ENOTDIR, errno.EXDEV)
#: how deep ``walk`` goes: every level holds a directory fd open
MAX_DEPTH = 128

FILE, DIRECTORY, SYMLINK = "file", "directory", "symlink"
#: kinds ``walk`` yields for directories it does not enter
TOO_DEEP, TRUNCATED = "too-deep", "truncated"


def kind_of(mode: int) -> str:
    """What an ``st_mode`` is, as listings and notes name it."""
    for test, name in ((stat.S_ISREG, FILE), (stat.S_ISDIR, DIRECTORY), (stat.S_ISLNK, SYMLINK),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char-device"),
                       (stat.S_ISBLK, "block-device")):
        if test(mode):
            return name
    return "other"


# names ------------------------------------------------------------------------------------------
def display_name(raw: bytes) -> str:
    """A name as text: its UTF-8, with each byte that is not UTF-8 written ``%XX``.

    >>> display_name("résumé #1.txt".encode()), display_name(b"\\xff\\xfe.bin")
    ('résumé #1.txt', '%FF%FE.bin')
    """
    out, start = [], 0
    while True:
        try:
            out.append(raw[start:].decode("utf-8"))
            return "".join(out)
        except UnicodeDecodeError as e:
            out.append(raw[start:start + e.start].decode("utf-8"))
            out.append("".join(f"%{b:02X}" for b in raw[start + e.start:start + e.end]))
            start += e.end


def display_path(parts: tuple[bytes, ...]) -> str:
    """``/a/b`` of names, each as ``display_name`` writes it."""
    return "/" + "/".join(display_name(p) for p in parts)


def url_path(parts: tuple[bytes, ...]) -> str:
    """The raw bytes of a relative path, percent-encoded (RFC 3986), ``/`` kept: ``a%20b/%FF``."""
    return quote(b"/".join(parts), safe="/")


def components(relative: str | bytes) -> tuple[bytes, ...]:
    """The names of a path below the root as the API got it (``/a/b``, ``a//b/``); ``()`` for the root.

    Text is turned back into the bytes it stands for (UTF-8; lone surrogates
    ``\\udcXX`` as the bytes ``surrogateescape`` made them from).

    Raises:
        InvalidInput: the path has a ``..`` component, a NUL, or text that stands for no bytes.
    """
    try:
        raw = relative if isinstance(relative, bytes) else os.fsencode(relative or "")
    except UnicodeEncodeError:
        raise InvalidInput("path is not valid text") from None
    parts = tuple(p for p in raw.split(b"/") if p not in (b"", b"."))
    if b"\0" in raw or b".." in parts:
        raise InvalidInput("path must not contain '..' or NUL")
    return parts


def undisplayed(name: bytes) -> bytes | None:
    """The name ``display_name`` wrote as ``name`` when that name is not UTF-8 (``%FF`` → ``b"\\xff"``), else None."""
    if b"%" not in name:
        return None
    raw = unquote_to_bytes(name)
    return raw if raw != name and display_name(raw) == name.decode("utf-8", "replace") else None


# openat2 ----------------------------------------------------------------------------------------
class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long
_openat2_works: bool | None = None if SYS_OPENAT2 else False


def openat2(dir_fd: int, path: bytes, flags: int) -> int:
    """openat2(2) of ``path`` below ``dir_fd`` with ``RESOLVE`` (never through a symlink); OSError on failure."""
    if SYS_OPENAT2 is None:
        raise OSError(errno.ENOSYS, "openat2 is not known on this machine")
    how = _OpenHow(flags, 0, RESOLVE)
    fd = _syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(path), ctypes.byref(how),
                  ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return fd


def has_openat2() -> bool:
    """Whether this kernel (and any seccomp filter around us) lets openat2 with RESOLVE_BENEATH work."""
    global _openat2_works
    if _openat2_works is None:
        root = os.open("/", DIR_FLAGS)
        try:
            os.close(openat2(root, b".", DIR_FLAGS))
            _openat2_works = True
        except OSError:
            _openat2_works = False  # ENOSYS (before 5.6), EPERM (a seccomp filter), E2BIG…
        finally:
            os.close(root)
    return _openat2_works


# the tree -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One name in a directory, as ``lstat`` saw it (a symlink is a symlink)."""

    name: bytes
    kind: str
    size: int
    mtime: float

    @classmethod
    def of(cls, name: bytes, st: os.stat_result) -> Entry:
        return cls(name, kind_of(st.st_mode), st.st_size, st.st_mtime)


@dataclass
class OpenFile:
    """A regular file opened below a RunTree; read it from ``fd`` (``chunks``), never by its path again."""

    fd: int
    size: int
    mtime: float
    mode: int

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def chunks(fd: int, start: int, end: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """The bytes ``[start, end)`` of an open file, ``size`` at a time (``pread``: the offset of ``fd`` stays)."""
    while start < end:
        chunk = os.pread(fd, min(size, end - start), start)
        if not chunk:
            return
        start += len(chunk)
        yield chunk


class RunTree:
    """A directory tree a run can change under us: listed and read from fds, never through a symlink."""

    def __init__(self, root: str):
        try:
            self.fd = os.open(root, DIR_FLAGS)
        except FileNotFoundError:
            raise NotFound("The run has no such directory (yet)") from None
        except OSError as e:
            if e.errno in REFUSED:
                raise NotFound("The run has no such directory") from None
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # opening ------------------------------------------------------------------------------------
    def open_dir(self, parts: tuple[bytes, ...]) -> int:
        """A new fd of the directory ``parts`` below the root.

        Raises:
            NotFound: there is none, or a component is a symlink or not a directory.
        """
        if not parts:
            return os.dup(self.fd)
        if has_openat2():
            try:
                return openat2(self.fd, b"/".join(parts), DIR_FLAGS)
            except OSError as e:
                if e.errno in REFUSED:
                    raise NotFound(f"No directory {display_path(parts)!r} in the run's files") from None
                if e.errno != errno.ENOENT:
                    raise
        return self._walk(parts)  # component by component, each name also as display_name wrote it

    def _walk(self, parts: tuple[bytes, ...]) -> int:
        fd = os.dup(self.fd)
        try:
            for name in parts:
                child = os.open(self._existing(fd, name, parts), DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            return fd
        except NotFound:
            os.close(fd)
            raise
        except OSError as e:
            os.close(fd)
            if e.errno in REFUSED or e.errno == errno.ENOENT:
                raise NotFound(f"No directory {display_path(parts)!r} in the run's files") from None
            raise

    @staticmethod
    def _existing(dir_fd: int, name: bytes, parts: tuple[bytes, ...]) -> bytes:
        """``name`` itself if it is in the directory, else the raw name its ``display_name`` form stands for."""
        for candidate in (name, undisplayed(name)):
            if candidate is None:
                continue
            try:
                os.stat(candidate, dir_fd=dir_fd, follow_symlinks=False)
                return candidate
            except FileNotFoundError:
                continue
        raise NotFound(f"No {display_path(parts)!r} in the run's files")

    def open_file(self, parts: tuple[bytes, ...]) -> OpenFile:
        """Open the regular file ``parts`` for reading.

        Raises:
            NotFound: no such file, a symlink on the way, or not a regular file (the message says what it is).
        """
        if not parts:
            raise NotFound("No such file")
        dir_fd = self.open_dir(parts[:-1])
        try:
            return self.open_entry(dir_fd, self._existing(dir_fd, parts[-1], parts), display_path(parts))
        finally:
            os.close(dir_fd)

    @staticmethod
    def open_entry(dir_fd: int, name: bytes, shown: str = "") -> OpenFile:
        """Open ``name`` of an open directory if, before and after opening, it is a regular file."""
        shown = shown or display_name(name)
        try:
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFound(f"No file {shown!r} in the run's files") from None
        if not stat.S_ISREG(before.st_mode):
            raise NotFound(f"{shown!r} is a {kind_of(before.st_mode)}, not a regular file: it is not read")
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in REFUSED or e.errno == errno.ENOENT:
                raise NotFound(f"No file {shown!r} in the run's files") from None
            raise
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode):  # swapped between the two calls
            os.close(fd)
            raise NotFound(f"{shown!r} is a {kind_of(after.st_mode)}, not a regular file: it is not read")
        return OpenFile(fd, after.st_size, after.st_mtime, after.st_mode)

    # listing ------------------------------------------------------------------------------------
    def listdir(self, parts: tuple[bytes, ...] = (), limit: int | None = None) -> tuple[list[Entry], bool]:
        """The entries of directory ``parts`` in name order, at most ``limit`` of them, and whether there were more.

        At most ``limit + 1`` names are read from the directory, so a huge one
        costs no more than that (which names make the first ``limit`` then
        follows the directory's own order).
        """
        fd = self.open_dir(parts)
        try:
            return self.entries_of(fd, limit)
        finally:
            os.close(fd)

    @staticmethod
    def entries_of(dir_fd: int, limit: int | None = None) -> tuple[list[Entry], bool]:
        """``listdir`` of an open directory fd (which stays open)."""
        entries: list[Entry] = []
        exceeded = False
        with os.scandir(dir_fd) as scan:
            for item in scan:
                if limit is not None and len(entries) >= limit:
                    exceeded = True
                    break
                name = os.fsencode(item.name)
                try:
                    entries.append(Entry.of(name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # gone meanwhile
        return sorted(entries, key=lambda e: e.name), exceeded

    def walk(self, max_depth: int = MAX_DEPTH, limit: int | None = None
             ) -> Iterator[tuple[tuple[bytes, ...], Entry, int]]:
        """Every entry below the root, depth first in name order: ``(parts, entry, its directory's fd)``.

        Directories are yielded, then entered through an fd opened with
        ``O_NOFOLLOW`` from their parent's (one swapped for a symlink meanwhile
        is yielded again with what it is now, and not entered). The directory
        fd is valid until the next item. A directory ``max_depth`` levels down
        is yielded with kind ``TOO_DEEP`` and not entered; one with more than
        ``limit`` entries gets, after its first ``limit``, an item
        ``(its parts, Entry(b"", TRUNCATED, …), fd)``.
        """
        yield from self._walk_from(os.dup(self.fd), (), max_depth, limit)

    def _walk_from(self, fd: int, prefix: tuple[bytes, ...], depth: int, limit: int | None):
        try:
            entries, exceeded = self.entries_of(fd, limit)
            for entry in entries:
                parts = prefix + (entry.name,)
                if entry.kind != DIRECTORY:
                    yield parts, entry, fd
                    continue
                if depth <= 0:
                    yield parts, Entry(entry.name, TOO_DEEP, 0, entry.mtime), fd
                    continue
                try:
                    child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in REFUSED + (errno.ENOENT,):
                        raise
                    try:
                        yield parts, Entry.of(entry.name, os.stat(entry.name, dir_fd=fd, follow_symlinks=False)), fd
                    except FileNotFoundError:
                        pass
                    continue
                yield parts, entry, fd
                yield from self._walk_from(child, parts, depth - 1, limit)
            if exceeded:
                yield prefix, Entry(b"", TRUNCATED, 0, 0.0), fd
        finally:
            os.close(fd)

    @staticmethod
    def readlink(dir_fd: int, name: bytes) -> bytes:
        """The target of symlink ``name`` of an open directory, as bytes (it is never followed)."""
        return os.readlink(name, dir_fd=dir_fd)


#: the most of value.txt an inference's outputValue shows
OUTPUT_VALUE_BYTES = 1024


def output_value(output_dir: str) -> str | None:
    """The first line of ``/kqi/output/value.txt`` (an inference's result), read as any output file is; None if absent."""
    try:
        with RunTree(output_dir) as tree, tree.open_file((b"value.txt",)) as opened:
            head = os.pread(opened.fd, OUTPUT_VALUE_BYTES, 0)
    except (NotFound, OSError):
        return None
    return head.decode("utf-8", "replace").splitlines()[0].strip() if head.strip() else ""
