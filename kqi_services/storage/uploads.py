"""Multipart uploads of the local store, assembled on disk: parts, completion, their durability.

The files of an upload, under ``uploads/{upload_id}/``, are described in
``uploaddir``; objects are assembled in ``tmp/``.

Parts that arrive in order (what the upstream CLI sends: 1, 2, 3… one after
the other) are appended to one ``data`` file while the service keeps, in
memory, the SHA-256 of everything appended so far. Such a part's ETag is that
running SHA-256 after it (for part 1, the part's own SHA-256), so a byte is
hashed once on its way in. When every part named at complete is one of those,
the ``data`` file already is the object and its SHA-256 is known: complete
only flushes and links it. Any other part (out of order, sent while another
is being appended, sent again, or after the service restarted and forgot the
running hash) is kept in a file of its own named by its SHA-256, which is its
ETag; complete then assembles the object from ``data`` ranges and part files
into ``tmp/`` and hashes it, checking the records of ``data`` on the way.
Writeback to the disk is started as parts are written, so the ``fsync`` of
complete has little left to do.

``UploadAssembler`` is the upload half of ``local.LocalStore``, which mixes
it in: it takes the parts (streamed to disk while hashed by ``PartWriter``
and ``AppendWriter``), checks them at complete and hands the flushed file and
its SHA-256 to the store's ``_keep_and_bind``, which keeps the bytes once,
content-addressed, and binds the stored path to them. The manifest of the
completed upload stays as the binding's record (its SHA-256). The HTTP
handlers in ``handlers/storage.py`` serve the signed part URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, BinaryIO
from urllib.parse import urlencode

from . import signing
from .base import (
    StoredObject,
    UploadError,
    UploadTicket,
    check_part_count,
    new_stored_path,
)
from .diskio import READ_CHUNK, copy_range, fsync_path, start_writeback, unlink_if_present, write_all
from .uploaddir import (
    COMPLETING,
    DATA,
    MANIFEST,
    UPLOAD_ID,
    PartSource,
    append_record,
    last_activity,
    part_sources,
    read_manifest,
    remove_parts,
    trim_and_fsync,
    write_manifest,
)

#: writeback to the disk is started each time this much has been written
WRITEBACK_STEP = 8 * 1024 * 1024

Chunk = bytes | bytearray | memoryview


class PartWriter:
    """One part received out of order: written to a temp file while hashed, put in place by ``commit``.

    Use it as a context manager (or call ``abort``) so an interrupted part
    leaves no temp file behind. Its ETag is the part's SHA-256.
    """

    def __init__(self, upload_dir: str, part: int):
        self.upload_dir = upload_dir
        self.part = part
        self.size = 0
        self._digest = hashlib.sha256()
        self._fd: int | None
        self._tmp_path: str | None
        self._fd, self._tmp_path = tempfile.mkstemp(prefix=f".part-{part:05d}-", suffix=".tmp", dir=upload_dir)
        self._offset = 0  # where the part starts in the file
        self._flushed = 0  # how much of the part writeback was started for

    def _open_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"Part {self.part} is closed")
        return self._fd

    def write(self, chunk: Chunk) -> None:
        fd = self._open_fd()
        view = memoryview(chunk).cast("B")
        self._digest.update(view)
        write_all(fd, view)
        self.size += len(view)
        if self.size - self._flushed >= WRITEBACK_STEP:
            self._start_writeback(fd)

    def _start_writeback(self, fd: int) -> None:
        start_writeback(fd, self._offset + self._flushed, self.size - self._flushed)
        self._flushed = self.size

    def _close(self) -> None:
        """Start the writeback of what is left and close the file."""
        fd = self._open_fd()
        try:
            self._start_writeback(fd)
        finally:
            os.close(fd)
            self._fd = None

    def commit(self) -> str:
        """Put the part in place (replacing none: each content has its own name); return its ETag."""
        self._close()
        digest = self._digest.hexdigest()
        if os.path.lexists(os.path.join(self.upload_dir, COMPLETING)):
            self.abort()
            raise UploadError("The upload is already completed")
        assert self._tmp_path is not None  # set until the part is committed or aborted
        try:
            os.replace(self._tmp_path, os.path.join(self.upload_dir, f"part-{self.part:05d}-{digest}"))
        except FileNotFoundError:
            raise UploadError("The upload was removed while its part was received") from None
        self._tmp_path = None
        return f'"{digest}"'

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tmp_path is not None:
            unlink_if_present(self._tmp_path)
            self._tmp_path = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class _Sequence:
    """What the service remembers of an upload's ``data`` file: parts 1..parts, their size, their SHA-256.

    ``writer`` is the part being appended (one at a time); ``closed`` is set
    while a complete runs (and for good once the upload is done or purged).
    Changed only under the store's uploads lock.
    """

    __slots__ = ("parts", "size", "digest", "writer", "closed")

    def __init__(self) -> None:
        self.parts = 0
        self.size = 0
        self.digest = hashlib.sha256()
        self.writer: AppendWriter | None = None
        self.closed = False


class AppendWriter(PartWriter):
    """The next part in order: appended to the upload's ``data`` file, hashed on from the running SHA-256.

    Its ETag is the SHA-256 of the upload's bytes up to the end of this part.
    An aborted part leaves bytes past the recorded end; the next writer cuts them.
    """

    def __init__(self, upload_dir: str, part: int, sequence: _Sequence, lock: threading.Lock):
        self.upload_dir = upload_dir
        self.part = part
        self.size = 0
        self._sequence = sequence
        self._lock = lock
        self._digest = sequence.digest.copy()
        self._offset = sequence.size
        self._flushed = 0
        self._tmp_path = None
        fd = os.open(os.path.join(upload_dir, DATA), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fd = fd
        try:
            os.ftruncate(fd, self._offset)
            os.lseek(fd, self._offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise

    def commit(self) -> str:
        """Record the part as appended; return its ETag."""
        self._close()
        etag = self._digest.hexdigest()
        with self._lock:
            sequence = self._sequence
            if sequence.writer is not self:
                raise UploadError("The upload was removed while its part was received")
            sequence.writer = None
            if sequence.closed or os.path.lexists(os.path.join(self.upload_dir, COMPLETING)):
                raise UploadError("The upload is already completed")
            try:  # a line appended to the manifest: no file to create
                append_record(self.upload_dir, self.part, etag, self.size)
            except FileNotFoundError:
                raise UploadError("The upload was removed while its part was received") from None
            sequence.parts, sequence.size, sequence.digest = self.part, self._offset + self.size, self._digest
        return f'"{etag}"'

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with self._lock:
            if self._sequence.writer is self:
                self._sequence.writer = None


class UploadAssembler(ABC):
    """The multipart uploads of a local store under ``root/uploads``, their part URLs signed with ``secret``.

    Mixed into ``local.LocalStore``, which sets ``root`` and ``secret`` and
    keeps what a complete assembled (``_keep_and_bind``).
    """

    root: str
    secret: bytes

    def __init__(self) -> None:
        # the running SHA-256 of uploads begun by this process, by upload id (lost on restart)
        self._sequences: dict[str, _Sequence] = {}
        self._uploads_lock = threading.Lock()

    @abstractmethod
    def _keep_and_bind(self, source: str, digest: str, stored_path: str) -> StoredObject:
        """Keep the flushed file ``source`` (SHA-256 ``digest``) as an object and bind ``stored_path`` to it."""

    def begin_upload(self, prefix: str, file_name: str, part_count: int, url_base: str,
                     expires_in: int = 24 * 3600) -> UploadTicket:
        check_part_count(part_count)
        upload_id = uuid.uuid4().hex
        stored_path = new_stored_path(prefix, file_name, upload_id)
        upload_dir = self._upload_dir(upload_id)
        os.mkdir(upload_dir)
        write_manifest(upload_dir, {
            "key": stored_path, "stored_path": stored_path, "file_name": file_name,
            "part_count": part_count, "created": time.time(), "completed": False,
        })
        if part_count:
            with self._uploads_lock:
                self._sequences[upload_id] = _Sequence()
        base = url_base.rstrip("/")
        urls = [self._part_url(base, upload_id, part, expires_in) for part in range(1, part_count + 1)]
        return UploadTicket(upload_id, stored_path, stored_path, file_name, urls)

    def _part_url(self, base: str, upload_id: str, part: int, expires_in: int) -> str:
        query = signing.sign(self.secret, "PUT", upload_id, expires_in, part=part)
        return f"{base}/storage/parts/{upload_id}/{part}?{urlencode(query)}"

    def verify_part_url(self, upload_id: str, part: int, expires: str | None, signature: str | None) -> None:
        """SignatureError unless the query of a part URL is one this store signed and is unexpired."""
        signing.verify(self.secret, "PUT", upload_id, expires, signature, part=part)

    def open_part(self, upload_id: str, part: int) -> PartWriter:
        """A writer for part ``part`` (1-based) of an open upload; UploadError otherwise.

        The next part in order is appended (``AppendWriter``) unless another
        is being appended; any other gets a file of its own (``PartWriter``).
        """
        upload_dir = self._upload_dir(upload_id)
        part_count = self._manifest(upload_dir)["part_count"]
        if not 1 <= part <= part_count:
            raise UploadError(f"Part {part} is out of range: this upload has parts 1..{part_count}")
        if os.path.lexists(os.path.join(upload_dir, COMPLETING)):
            raise UploadError(f"Upload {upload_id} is already completed")
        with self._uploads_lock:
            sequence = self._sequences.get(upload_id)
            if (sequence is not None and not sequence.closed and sequence.writer is None
                    and part == sequence.parts + 1):
                try:
                    sequence.writer = AppendWriter(upload_dir, part, sequence, self._uploads_lock)
                except FileNotFoundError:
                    raise UploadError(f"Unknown upload {upload_id!r}") from None
                return sequence.writer
        try:
            return PartWriter(upload_dir, part)
        except FileNotFoundError:
            raise UploadError(f"Unknown upload {upload_id!r}") from None

    def write_part(self, upload_id: str, part: int, source: BinaryIO | Iterable[Chunk] | Chunk) -> str:
        """Store a part from a file object, an iterable of chunks or bytes; return its ETag."""
        with self.open_part(upload_id, part) as writer:
            for chunk in _chunks(source):
                writer.write(chunk)
            return writer.commit()

    def complete_upload(self, key: str, upload_id: str, etags: dict[int, str],
                        part_count: int | None = None) -> StoredObject:
        upload_dir = self._upload_dir(upload_id)
        manifest = self._manifest(upload_dir)
        if key != manifest["key"]:
            raise UploadError(f"The key does not belong to upload {upload_id}")
        if part_count is not None and part_count != manifest["part_count"]:
            raise UploadError(f"Upload {upload_id} was begun with {manifest['part_count']} parts, not {part_count}")
        if manifest["completed"]:
            raise UploadError(f"Upload {upload_id} is already completed")
        marker = os.path.join(upload_dir, COMPLETING)
        with self._uploads_lock:  # parts are committed under it: none slips in once the marker is there
            try:  # a second name of the manifest: made at once, and only by one
                os.link(os.path.join(upload_dir, MANIFEST), marker)
            except FileExistsError:
                raise UploadError(f"Upload {upload_id} is already being completed") from None
            os.utime(marker)  # when a complete was last tried (see purge_abandoned)
            sequence = self._sequences.get(upload_id)
            known = None
            if sequence is not None:
                sequence.closed = True
                known = (sequence.parts, sequence.size, sequence.digest.copy())
        try:
            sources = part_sources(upload_dir, manifest["part_count"], etags)
        except BaseException:
            with self._uploads_lock:
                if sequence is not None:
                    sequence.closed = False  # nothing was changed: the upload goes on
            os.unlink(marker)
            raise
        try:
            stored = self._store_and_bind(upload_dir, sources, known, manifest["stored_path"])
        except BaseException:
            with self._uploads_lock:  # ``data`` may be an object now: never append to it again
                self._sequences.pop(upload_id, None)
            os.unlink(marker)
            raise
        with self._uploads_lock:
            self._sequences.pop(upload_id, None)
        manifest.update(completed=True, sha256=stored.sha256, size=stored.size)
        write_manifest(upload_dir, manifest, durable=True)
        remove_parts(upload_dir)
        return stored

    def _store_and_bind(self, upload_dir: str, sources: list[PartSource], known: tuple[int, int, Any] | None,
                        stored_path: str) -> StoredObject:
        """The object of the parts, flushed, kept and bound (``known``: parts, size and SHA-256 of ``data``)."""
        temporary = False
        if sources and all(s.in_data for s in sources):
            # the parts are ``data`` from its start: it is the object
            source = os.path.join(upload_dir, DATA)
            last = sources[-1]
            assert last.size is not None  # a range of ``data`` has its size
            end = last.offset + last.size
            trim_and_fsync(source, end)
            if known is not None and known[:2] == (len(sources), end):
                digest = known[2].hexdigest()
            else:  # the running hash was lost (a restart): hash ``data`` again, checking its records
                digest = _hash_sources(sources, None)
        elif len(sources) == 1:
            source, digest = sources[0].path, sources[0].etag  # a single part's SHA-256 is the object's
            fsync_path(source)
        else:
            source, digest = self._assemble(sources)
            temporary = True
        try:
            return self._keep_and_bind(source, digest, stored_path)
        finally:
            if temporary:
                unlink_if_present(source)

    def _assemble(self, sources: list[PartSource]) -> tuple[str, str]:
        """Concatenate the parts into a temp file while hashing it; return (path, SHA-256)."""
        fd, path = tempfile.mkstemp(suffix=".assembling", dir=os.path.join(self.root, "tmp"))
        try:
            digest = _hash_sources(sources, fd)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_if_present(path)
            raise
        os.close(fd)
        return path, digest

    def _purge_uploads(self, cutoff: float) -> int:
        """Remove the uploads begun before ``cutoff`` and never completed; return how many."""
        uploads = os.path.join(self.root, "uploads")
        purged = 0
        for upload_id in os.listdir(uploads):
            upload_dir = os.path.join(uploads, upload_id)
            manifest = read_manifest(upload_dir)
            if manifest is not None and manifest.get("completed"):
                continue
            if last_activity(upload_dir, manifest) <= cutoff:
                with self._uploads_lock:
                    sequence = self._sequences.pop(upload_id, None)
                    if sequence is not None:
                        sequence.closed, sequence.writer = True, None
                shutil.rmtree(upload_dir, ignore_errors=True)
                purged += 1
        return purged

    # paths and records -----------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> str:
        if not isinstance(upload_id, str) or not UPLOAD_ID.match(upload_id):
            raise UploadError(f"Unknown upload {upload_id!r}")
        return os.path.join(self.root, "uploads", upload_id)

    @staticmethod
    def _manifest(upload_dir: str) -> dict[str, Any]:
        manifest = read_manifest(upload_dir)
        if manifest is None:
            raise UploadError(f"Unknown upload {os.path.basename(upload_dir)!r}")
        return manifest

    def _record_dir(self, stored_path: str) -> str | None:
        """The upload directory that bound ``stored_path`` (``{prefix}/{day}/{upload_id}/{name}``)."""
        upload_id = stored_path.split("/")[-2]
        if not UPLOAD_ID.match(upload_id):
            return None
        upload_dir = os.path.join(self.root, "uploads", upload_id)
        manifest = read_manifest(upload_dir)
        return upload_dir if manifest and manifest.get("stored_path") == stored_path else None

    def _recorded_sha256(self, stored_path: str) -> str | None:
        upload_dir = self._record_dir(stored_path)
        manifest = read_manifest(upload_dir) if upload_dir else None
        return manifest.get("sha256") if manifest else None


# helpers --------------------------------------------------------------------


def _hash_sources(sources: list[PartSource], out_fd: int | None) -> str:
    """The SHA-256 of the parts one after the other, also appended to ``out_fd`` unless None.

    While the bytes so far are ``data`` from its start, each record's ETag
    (the running SHA-256 when it was appended) is checked on the way.
    """
    digest = hashlib.sha256()
    from_start = True
    written = 0
    with contextlib.ExitStack() as stack:
        opened: dict[str, tuple[int, mmap.mmap | None, int]] = {}
        for source in sources:
            if source.path not in opened:
                try:
                    fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    raise UploadError(f"The bytes of part {source.part} are missing; upload it again") from None
                stack.callback(os.close, fd)
                size = os.fstat(fd).st_size
                view = None
                if size:
                    view = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
                    stack.callback(view.close)
                    view.madvise(mmap.MADV_SEQUENTIAL)
                opened[source.path] = (fd, view, size)
            fd, view, file_size = opened[source.path]
            size = file_size if source.size is None else source.size
            if source.offset + size > file_size:
                raise UploadError(f"The bytes of part {source.part} are missing; upload it again")
            if size:
                assert view is not None  # the file is not empty: it is mapped
                with memoryview(view) as whole:
                    digest.update(whole[source.offset:source.offset + size])
            from_start = from_start and source.in_data and source.offset == written
            if from_start and digest.hexdigest() != source.etag:
                raise UploadError(f"The stored bytes of part {source.part} do not match its ETag; upload it again")
            if out_fd is not None and size:
                copy_range(fd, out_fd, size, source.offset)
                start_writeback(out_fd, written, size)
            written += size
    return digest.hexdigest()


def _chunks(source: BinaryIO | Iterable[Chunk] | Chunk) -> Iterable[Chunk]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return [source]
    if hasattr(source, "read"):
        read = source.read
        return iter(lambda: read(READ_CHUNK), b"")
    return source


