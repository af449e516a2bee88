"""What a finished run leaves to its user: its log and, when asked, output.zip, attached to the run.

The output is the run's to shape, and it may be hostile: ``zip_directory``
reads it through ``RunTree`` (no symlink followed at any component; symlinks
are stored as links), skips whatever is not a regular file or a directory,
and stops at ``ZipLimits`` (size, entries, time). What it leaves out is said
in the archive's comment and in the note ``keep_results`` returns for the
run's ``conditionNote``. Names that are not UTF-8 are stored as
``runfiles.display_name`` writes them (``%XX`` for each such byte), as the
listing shows them.

Result collection runs on a ``ResultPool``: threads of its own, so a slow
zip never holds the threads uploads use, and at most ``per_tenant`` of them
for one tenant, so one tenant's runs cannot hold them all.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import stat
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kqi_services.jobs.runfiles import DIRECTORY, FILE, SYMLINK, TOO_DEEP, TRUNCATED, RunTree, chunks, display_path

from ..errors import NotFound
from ..orm import Run, RunFile
from .kinds import JobKind
from .runtime import RunPaths

GIB = 1024**3
#: how many left-out entries the archive comment names (a zip comment holds at most 65,535 bytes)
NAMED_IN_COMMENT = 200


@dataclass(frozen=True)
class ZipLimits:
    """Caps of one output.zip: what a run's output may cost the service to archive."""

    max_bytes: int = 10 * GIB  # of file content read; a file that would pass it is left out
    max_entries: int = 100_000  # files and links archived; also the most names read of one directory
    max_seconds: float = 600.0  # of wall time; then the archive ends with what it has


@dataclass
class ZipReport:
    """What ``zip_directory`` put in the archive and what it left out, and why."""

    entries: int = 0
    bytes: int = 0
    left_out_count: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, why): the first NAMED_IN_COMMENT
    stopped: str | None = None  # why the archive ends early

    def leave_out(self, path: str, why: str) -> None:
        self.left_out_count += 1
        if len(self.left_out) < NAMED_IN_COMMENT:
            self.left_out.append((path, why))

    def note(self) -> str | None:
        """One line for the run's conditionNote, None when the archive holds the whole output."""
        if not self.left_out_count and not self.stopped:
            return None
        parts = []
        if self.left_out_count:
            parts.append(f"output.zip leaves out {self.left_out_count} entries that are not regular files, "
                         f"directories or links, or are too big (listed in the archive's comment)")
        if self.stopped:
            parts.append(f"output.zip stops after {self.entries} entries: {self.stopped}")
        return "; ".join(parts)

    def comment(self) -> builtins.bytes:
        """The archive's comment: the left-out entries (the first ``NAMED_IN_COMMENT``) and any stop."""
        if not self.left_out_count and not self.stopped:
            return b""
        lines = [f"KQI: not in this archive: {self.left_out_count} entries" + (f"; {self.stopped}" if self.stopped
                                                                               else "")]
        lines += [f"{path}: {why}" for path, why in self.left_out]
        if self.left_out_count > len(self.left_out):
            lines.append(f"... and {self.left_out_count - len(self.left_out)} more")
        return "\n".join(lines).encode()[:65535]


def keep_results(db, run: Run, kind: JobKind, store, prefix: str, log_path: str | None, paths: RunPaths,
                 limits: ZipLimits = ZipLimits()) -> str | None:
    """Attach the log as ``{kind}_stdout_stderr_{id}.log`` and, when ``zip`` is on, ``output.zip``.

    Returns:
        A note for the run's conditionNote when output.zip is partial or could not be made (the log stays).
    """
    if log_path and os.path.exists(log_path):
        attach(db, run, store, prefix, kind.log_file_name(run), log_path)
    if not run.zip_output or not os.path.isdir(paths.output):
        return None
    zip_path = os.path.join(paths.root, "output.zip")
    try:
        report = zip_directory(paths.output, zip_path, limits)
    except OSError as e:
        return f"output.zip could not be made: {e.strerror or e}"
    attach(db, run, store, prefix, "output.zip", zip_path)
    return report.note()


def attach(db, run: Run, store, prefix: str, name: str, path: str) -> None:
    stored = store.put_file(prefix, name, path)
    db.add(RunFile(run_id=run.id, file_name=name, stored_path=stored.stored_path, size=stored.size,
                   is_locked=True, created_by="system", modified_by="system"))


def zip_directory(src: str, dest: str, limits: ZipLimits = ZipLimits()) -> ZipReport:
    """Zip a run's output into ``dest``: regular files and symlinks (stored as links, never followed).

    Directories are walked by fd (``RunTree.walk``); FIFOs, sockets and
    devices are never opened. Returns what went in and what did not.
    """
    report = ZipReport()
    deadline = time.monotonic() + limits.max_seconds
    with RunTree(src) as tree, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for parts, entry, dir_fd in tree.walk(limit=limits.max_entries):
            if entry.kind == DIRECTORY:
                continue
            shown = display_path(parts)
            if entry.kind == TRUNCATED:
                report.leave_out(shown, f"more than {limits.max_entries} entries: the rest is left out")
                continue
            if report.entries >= limits.max_entries:
                report.stopped = f"the cap of {limits.max_entries} entries was reached"
                break
            if time.monotonic() > deadline:
                report.stopped = f"the time cap of {limits.max_seconds:g} s was reached"
                break
            why = _add_entry(zf, tree, parts, entry, dir_fd, report, limits, deadline)
            if why:
                report.leave_out(shown, why)
            if report.stopped:
                break
        zf.comment = report.comment()
    return report


def _add_entry(zf, tree: RunTree, parts, entry, dir_fd: int, report: ZipReport, limits: ZipLimits,
               deadline: float) -> str | None:
    """Archive one walked entry; why it was left out, or None."""
    arcname = display_path(parts)[1:]
    if entry.kind == SYMLINK:
        try:
            target = tree.readlink(dir_fd, entry.name)
        except OSError as e:  # changed meanwhile
            return f"unreadable: {e.strerror}"
        zf.writestr(_info(arcname, entry.mtime, 0o120777), target)
        report.entries += 1
        return None
    if entry.kind == TOO_DEEP:
        return "a directory deeper than the levels archived"
    if entry.kind != FILE:
        return f"a {entry.kind}, not a regular file"
    if report.bytes + entry.size > limits.max_bytes:
        return f"it would pass the archive's cap of {limits.max_bytes} bytes"
    try:
        opened = tree.open_entry(dir_fd, entry.name, arcname)
    except NotFound as e:  # changed meanwhile
        return e.message
    except OSError as e:
        return f"unreadable: {e.strerror}"
    with opened:
        size = min(opened.size, limits.max_bytes - report.bytes)
        info = _info(arcname, opened.mtime, stat.S_IMODE(opened.mode) | stat.S_IFREG)
        info.file_size = size
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as out:
            for chunk in chunks(opened.fd, 0, size):
                out.write(chunk)
                report.bytes += len(chunk)
                if time.monotonic() > deadline:
                    report.stopped = f"the time cap of {limits.max_seconds:g} s was reached (in {arcname})"
                    break
    report.entries += 1
    return None


def _info(arcname: str, mtime: float, mode: int) -> zipfile.ZipInfo:
    """A ZipInfo with the entry's time, clamped to what a zip can hold (1980–2107)."""
    stamp = time.localtime(min(max(mtime, 315619200), 4354732799))[:6]  # a day inside, whatever the time zone
    info = zipfile.ZipInfo(arcname, stamp)
    info.external_attr = (mode & 0xFFFF) << 16
    return info


class ResultPool:
    """Threads for result collection only, at most ``per_tenant`` of them busy with one tenant's runs."""

    def __init__(self, workers: int = 4, per_tenant: int = 2):
        self.workers = workers
        self.per_tenant = min(per_tenant, workers)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="kqi-results")
        self._slots: dict[object, asyncio.Semaphore] = {}

    async def run(self, tenant, fn, *args):
        """``fn(*args)`` on a thread of the pool once ``tenant`` has a free slot; its result."""
        slots = self._slots.setdefault(tenant, asyncio.Semaphore(self.per_tenant))
        async with slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
