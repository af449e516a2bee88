"""The embedded object store: content-addressed files on this disk, URLs signed by the service.

Layout under ``root``::

    uploads/{upload_id}/manifest.json         key, stored_path, part_count, created, completed, sha256, size
                                              (one JSON line), then a line ``part N {etag} {size}``
                                              for each part appended to ``data``
    uploads/{upload_id}/data                  parts 1..k as they came in order, back to back
    uploads/{upload_id}/part-00001-{sha256}   a part that came out of order, as it was PUT
    uploads/{upload_id}/completing            linked by the first complete: the lock against a second
    objects/sha256/ab/cdef…                   the bytes, stored once, read-only (0444)
    paths/{stored_path}                       a hard link to the object: the binding
    tmp/                                      objects being assembled

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

The same bytes uploaded twice are one inode: complete keeps the object only
if ``objects/`` has no such digest yet. A binding is a hard link, so staging
can hard-link ``local_path(stored_path)`` into a run without copying.
Deleting the last binding of an object removes it; objects left with no link
but their own (their bindings and staged copies gone) are collected by
``purge_abandoned``.

Parts are streamed to disk while hashed (``PartWriter``, ``AppendWriter``);
the HTTP handlers in ``handlers/storage.py`` serve the signed part and
download URLs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import mmap
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from typing import BinaryIO, NamedTuple
from urllib.parse import quote, urlencode

from . import signing
from .base import (
    ObjectNotFound,
    ObjectStore,
    StoredObject,
    UploadError,
    UploadTicket,
    check_file_name,
    check_part_count,
    check_stored_path,
    new_stored_path,
    normalize_etag,
)

MANIFEST = "manifest.json"
COMPLETING = "completing"
DATA = "data"
READ_CHUNK = 1024 * 1024
#: writeback to the disk is started each time this much has been written
WRITEBACK_STEP = 8 * 1024 * 1024
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_FILE = re.compile(r"^part-(\d{5})-([0-9a-f]{64})$")
_RECORD = re.compile(r"^part (\d+) ([0-9a-f]{64}) (\d+)$")


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
        self._fd, self._tmp_path = tempfile.mkstemp(prefix=f".part-{part:05d}-", suffix=".tmp", dir=upload_dir)
        self._offset = 0  # where the part starts in the file
        self._flushed = 0  # how much of the part writeback was started for

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk).cast("B")
        self._digest.update(view)
        _write_all(self._fd, view)
        self.size += len(view)
        if self.size - self._flushed >= WRITEBACK_STEP:
            self._start_writeback()

    def _start_writeback(self) -> None:
        start_writeback(self._fd, self._offset + self._flushed, self.size - self._flushed)
        self._flushed = self.size

    def _close(self) -> None:
        """Start the writeback of what is left and close the file."""
        try:
            self._start_writeback()
        finally:
            os.close(self._fd)
            self._fd = None

    def commit(self) -> str:
        """Put the part in place (replacing none: each content has its own name); return its ETag."""
        self._close()
        digest = self._digest.hexdigest()
        if os.path.lexists(os.path.join(self.upload_dir, COMPLETING)):
            self.abort()
            raise UploadError("The upload is already completed")
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
            _unlink_if_present(self._tmp_path)
            self._tmp_path = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


class _Sequence:
    """What the service remembers of an upload's ``data`` file: parts 1..parts, their size, their SHA-256.

    ``writer`` is the part being appended (one at a time); ``closed`` is set
    while a complete runs (and for good once the upload is done or purged).
    Changed only under the store's uploads lock.
    """

    __slots__ = ("parts", "size", "digest", "writer", "closed")

    def __init__(self):
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
        self._fd = os.open(os.path.join(upload_dir, DATA), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(self._fd, self._offset)
            os.lseek(self._fd, self._offset, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
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
                _append_line(os.path.join(self.upload_dir, MANIFEST), f"part {self.part} {etag} {self.size}\n")
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


class _Source(NamedTuple):
    """Where the bytes of one part are: a part file, or a range of the ``data`` file."""

    part: int
    etag: str
    path: str
    offset: int
    size: int | None  # None: the whole part file
    in_data: bool


class LocalStore(ObjectStore):
    """Content-addressed objects under ``root``; part and download URLs signed with ``secret``."""

    kind = "local"

    def __init__(self, root: str, secret: bytes | str):
        if not secret:
            raise ValueError("LocalStore needs a non-empty secret to sign its URLs")
        self.root = os.path.abspath(root)
        self.secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        # objects and bindings are linked and unlinked under this lock (link counts decide deletion)
        self._lock = threading.Lock()
        # the running SHA-256 of uploads begun by this process, by upload id (lost on restart)
        self._sequences: dict[str, _Sequence] = {}
        self._uploads_lock = threading.Lock()
        for sub in ("uploads", "objects/sha256", "paths", "tmp"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    # uploads -------------------------------------------------------------------------------
    def begin_upload(self, prefix: str, file_name: str, part_count: int, url_base: str,
                     expires_in: int = 24 * 3600) -> UploadTicket:
        check_part_count(part_count)
        upload_id = uuid.uuid4().hex
        stored_path = new_stored_path(prefix, file_name, upload_id)
        upload_dir = self._upload_dir(upload_id)
        os.mkdir(upload_dir)
        _write_json(os.path.join(upload_dir, MANIFEST), {
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

    def write_part(self, upload_id: str, part: int, source: BinaryIO | Iterable[bytes] | bytes) -> str:
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
            sources = _part_sources(upload_dir, manifest["part_count"], etags)
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
        _write_json(os.path.join(upload_dir, MANIFEST), manifest, durable=True)
        _remove_parts(upload_dir)
        return stored

    def _store_and_bind(self, upload_dir: str, sources: list[_Source], known: tuple | None,
                        stored_path: str) -> StoredObject:
        temporary = None
        if sources and all(s.in_data for s in sources):
            # the parts are ``data`` from its start: it is the object
            source = os.path.join(upload_dir, DATA)
            end = sources[-1].offset + sources[-1].size
            _trim_and_fsync(source, end)
            if known is not None and known[:2] == (len(sources), end):
                digest = known[2].hexdigest()
            else:  # the running hash was lost (a restart): hash ``data`` again, checking its records
                digest = _hash_sources(sources, None)
        elif len(sources) == 1:
            source, digest = sources[0].path, sources[0].etag  # a single part's SHA-256 is the object's
            _fsync(source)
        else:
            source, digest = temporary = self._assemble(sources)
        try:
            with self._lock:
                obj, new = self._keep_object(source, digest)
                binding = self._bind(obj, stored_path)
        finally:
            if temporary:
                _unlink_if_present(source)
        # the new names made durable, the object's first (one journal commit mostly covers both)
        if new:
            _fsync(os.path.dirname(obj))
        _fsync(os.path.dirname(binding))
        return StoredObject(stored_path, os.stat(binding).st_size, digest)

    def _assemble(self, sources: list[_Source]) -> tuple[str, str]:
        """Concatenate the parts into a temp file while hashing it; return (path, SHA-256)."""
        fd, path = tempfile.mkstemp(suffix=".assembling", dir=os.path.join(self.root, "tmp"))
        try:
            digest = _hash_sources(sources, fd)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_if_present(path)
            raise
        os.close(fd)
        return path, digest

    def _keep_object(self, source: str, digest: str) -> tuple[str, bool]:
        """Make ``source`` (flushed) the object of ``digest`` unless that object exists.

        Returns the object's path and whether ``source`` became it (its
        directory is then to be flushed).
        """
        obj = self._object_path(digest)
        if not os.path.isdir(os.path.dirname(obj)):
            os.makedirs(os.path.dirname(obj), exist_ok=True)
        os.chmod(source, 0o444)
        try:
            os.link(source, obj)
        except FileExistsError:
            return obj, False  # the same bytes are stored already: that inode is the object
        return obj, True

    def _bind(self, obj: str, stored_path: str) -> str:
        """Link ``stored_path`` to the object; return the binding's path (its directory is to be flushed)."""
        binding = self._binding_path(stored_path)
        os.makedirs(os.path.dirname(binding), exist_ok=True)
        try:
            os.link(obj, binding)
        except FileExistsError:
            raise UploadError(f"{stored_path} is bound already") from None
        except OSError as e:
            if e.errno != errno.EMLINK:
                raise
            self._bind_copy(obj, binding)  # the object has as many links as the filesystem allows
        return binding

    def _bind_copy(self, obj: str, binding: str) -> None:
        fd, tmp = tempfile.mkstemp(suffix=".copy", dir=os.path.join(self.root, "tmp"))
        try:
            with open(obj, "rb") as src:
                _copy_range(src.fileno(), fd, os.fstat(src.fileno()).st_size)
            os.fchmod(fd, 0o444)
            os.fsync(fd)
            os.rename(tmp, binding)
        finally:
            os.close(fd)
            _unlink_if_present(tmp)

    # bound objects -------------------------------------------------------------------------
    def put_file(self, prefix: str, file_name: str, path: str) -> StoredObject:
        """Store a file the service made itself (a run's log, its output.zip)."""
        ticket = self.begin_upload(prefix, file_name, 1, "")
        with open(path, "rb") as source:
            etag = self.write_part(ticket.upload_id, 1, source)
        return self.complete_upload(ticket.key, ticket.upload_id, {1: etag}, 1)

    def stat(self, stored_path: str) -> StoredObject:
        try:
            size = os.stat(self._binding_path(stored_path)).st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"No such object: {stored_path}") from None
        return StoredObject(stored_path, size, self._recorded_sha256(stored_path))

    def local_path(self, stored_path: str) -> str:
        binding = self._binding_path(stored_path)
        if not os.path.isfile(binding):
            raise ObjectNotFound(f"No such object: {stored_path}")
        return binding

    def download_url(self, stored_path: str, file_name: str, url_base: str, expires_in: int = 3600) -> str:
        check_stored_path(stored_path)
        check_file_name(file_name)
        signed = signing.sign(self.secret, "GET", stored_path, expires_in, filename=file_name)
        # expires and signature are digits and hex: only the file name needs quoting (10,000 URLs a listing)
        return (f"{url_base.rstrip('/')}/storage/objects/{quote(stored_path)}?filename={quote(file_name, safe='')}"
                f"&expires={signed['expires']}&signature={signed['signature']}")

    def verify_download_url(self, stored_path: str, file_name: str, expires: str | None,
                            signature: str | None) -> None:
        """SignatureError unless the query of a download URL is one this store signed and is unexpired."""
        signing.verify(self.secret, "GET", stored_path, expires, signature, filename=file_name)

    def delete(self, stored_path: str) -> None:
        binding = self._binding_path(stored_path)
        digest = self._recorded_sha256(stored_path)
        with self._lock:
            try:
                os.unlink(binding)
            except FileNotFoundError:
                return
            if digest:
                self._drop_if_unused(self._object_path(digest))
        _remove_empty_dirs(os.path.dirname(binding), os.path.join(self.root, "paths"))
        upload_dir = self._record_dir(stored_path)
        if upload_dir:
            shutil.rmtree(upload_dir, ignore_errors=True)

    @staticmethod
    def _drop_if_unused(obj: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(obj).st_nlink == 1:
                os.unlink(obj)

    # housekeeping --------------------------------------------------------------------------
    def purge_abandoned(self, older_than_seconds: int) -> int:
        """Remove uploads begun before then and never completed, stale temp files and unused objects."""
        cutoff = time.time() - older_than_seconds
        uploads = os.path.join(self.root, "uploads")
        purged = 0
        for upload_id in os.listdir(uploads):
            upload_dir = os.path.join(uploads, upload_id)
            manifest = _read_json(os.path.join(upload_dir, MANIFEST))
            if manifest is not None and manifest.get("completed"):
                continue
            if _last_activity(upload_dir, manifest) <= cutoff:
                with self._uploads_lock:
                    sequence = self._sequences.pop(upload_id, None)
                    if sequence is not None:
                        sequence.closed, sequence.writer = True, None
                shutil.rmtree(upload_dir, ignore_errors=True)
                purged += 1
        tmp = os.path.join(self.root, "tmp")
        for name in os.listdir(tmp):
            _unlink_if_older(os.path.join(tmp, name), cutoff)
        self._collect_unused_objects()
        return purged

    def _collect_unused_objects(self) -> None:
        """Remove objects whose only link is their own (no binding, no staged copy)."""
        objects = os.path.join(self.root, "objects", "sha256")
        for shard in os.listdir(objects):
            for name in os.listdir(os.path.join(objects, shard)):
                with self._lock:
                    self._drop_if_unused(os.path.join(objects, shard, name))

    # paths -----------------------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> str:
        if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
            raise UploadError(f"Unknown upload {upload_id!r}")
        return os.path.join(self.root, "uploads", upload_id)

    @staticmethod
    def _manifest(upload_dir: str) -> dict:
        manifest = _read_json(os.path.join(upload_dir, MANIFEST))
        if manifest is None:
            raise UploadError(f"Unknown upload {os.path.basename(upload_dir)!r}")
        return manifest

    def _object_path(self, digest: str) -> str:
        return os.path.join(self.root, "objects", "sha256", digest[:2], digest[2:])

    def _binding_path(self, stored_path: str) -> str:
        return os.path.join(self.root, "paths", check_stored_path(stored_path))

    def _record_dir(self, stored_path: str) -> str | None:
        """The upload directory that bound ``stored_path`` (``{prefix}/{day}/{upload_id}/{name}``)."""
        upload_id = stored_path.split("/")[-2]
        if not _UPLOAD_ID.match(upload_id):
            return None
        upload_dir = os.path.join(self.root, "uploads", upload_id)
        manifest = _read_json(os.path.join(upload_dir, MANIFEST))
        return upload_dir if manifest and manifest.get("stored_path") == stored_path else None

    def _recorded_sha256(self, stored_path: str) -> str | None:
        upload_dir = self._record_dir(stored_path)
        return _read_json(os.path.join(upload_dir, MANIFEST)).get("sha256") if upload_dir else None


# helpers on files ---------------------------------------------------------------------------


def _part_sources(upload_dir: str, part_count: int, etags: dict[int, str]) -> list[_Source]:
    """Where each part is, in order, chosen by the client's ETag: a record of ``data``, else a part file."""
    expected = set(range(1, part_count + 1))
    if set(etags) != expected:
        missing, unknown = sorted(expected - set(etags)), sorted(set(etags) - expected)
        raise UploadError(f"The ETags must name parts 1..{part_count}"
                          + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    files: dict[int, set[str]] = {}
    for name in os.listdir(upload_dir):
        match = _PART_FILE.match(name)
        if match:
            files.setdefault(int(match[1]), set()).add(match[2])
    records: dict[int, tuple[str, int]] = {}
    with open(os.path.join(upload_dir, MANIFEST)) as f:
        for line in f:
            match = _RECORD.match(line)  # a line cut short by a crash does not match
            if match and line.endswith("\n"):
                records[int(match[1])] = (match[2], int(match[3]))
    in_data: dict[int, tuple[str, int, int]] = {}  # part → (ETag, offset, size): parts 1..k back to back
    offset = 0
    for part in range(1, len(records) + 1):
        if part not in records:
            break
        etag, size = records[part]
        in_data[part] = (etag, offset, size)
        offset += size
    data_path = os.path.join(upload_dir, DATA)
    sources = []
    for part in sorted(etags):
        etag = normalize_etag(etags[part])
        if part in in_data and in_data[part][0] == etag:
            sources.append(_Source(part, etag, data_path, in_data[part][1], in_data[part][2], True))
        elif etag in files.get(part, ()):
            sources.append(_Source(part, etag, os.path.join(upload_dir, f"part-{part:05d}-{etag}"), 0, None, False))
        elif part not in in_data and part not in files:
            raise UploadError(f"Part {part} was not uploaded")
        else:
            raise UploadError(f"The ETag of part {part} does not match the uploaded part")
    return sources


def _hash_sources(sources: list[_Source], out_fd: int | None) -> str:
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
                with memoryview(view) as whole:
                    digest.update(whole[source.offset:source.offset + size])
            from_start = from_start and source.in_data and source.offset == written
            if from_start and digest.hexdigest() != source.etag:
                raise UploadError(f"The stored bytes of part {source.part} do not match its ETag; upload it again")
            if out_fd is not None and size:
                _copy_range(fd, out_fd, size, source.offset)
                start_writeback(out_fd, written, size)
            written += size
    return digest.hexdigest()


def _copy_range(src_fd: int, out_fd: int, size: int, src_offset: int = 0) -> None:
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
        _write_all(out_fd, memoryview(chunk))
        done += len(chunk)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def _load_sync_file_range():
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


def _trim_and_fsync(path: str, end: int) -> None:
    """Cut what an aborted part left past ``end`` and flush the file to the disk."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UploadError("The bytes of the uploaded parts are missing; upload them again") from None
    try:
        size = os.fstat(fd).st_size
        if size < end:
            raise UploadError("The bytes of the uploaded parts are missing; upload them again")
        if size > end:
            os.ftruncate(fd, end)
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_line(path: str, line: str) -> None:
    """Append one line to an existing file (a single write: appends never interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _chunks(source) -> Iterable[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return [source]
    if hasattr(source, "read"):
        return iter(lambda: source.read(READ_CHUNK), b"")
    return source


def _remove_parts(upload_dir: str) -> None:
    for name in os.listdir(upload_dir):
        if name.startswith(("part-", ".part-")) or name == DATA:
            _unlink_if_present(os.path.join(upload_dir, name))


def _last_activity(upload_dir: str, manifest: dict | None) -> float:
    """When the upload began, or its last complete was tried, whichever is later."""
    times = [manifest["created"]] if manifest else [_mtime(upload_dir)]
    times.append(_mtime(os.path.join(upload_dir, COMPLETING)))
    return max(times)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _unlink_if_older(path: str, cutoff: float) -> None:
    if 0 < _mtime(path) <= cutoff:
        _unlink_if_present(path)


def _unlink_if_present(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _remove_empty_dirs(path: str, stop: str) -> None:
    while path != stop and path.startswith(stop + os.sep):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


def _read_json(path: str) -> dict | None:
    """A manifest: the JSON object on its first line (the lines after it are part records)."""
    try:
        with open(path) as f:
            return json.loads(f.readline())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def _write_json(path: str, data: dict, durable: bool = False) -> None:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data) + "\n")
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: str) -> None:
    """Flush a file's bytes, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
