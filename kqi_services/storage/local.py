"""The embedded object store: content-addressed files on this disk, URLs signed by the service.

Layout under ``root``::

    uploads/{upload_id}/manifest.json         key, stored_path, part_count, created, completed, sha256, size
    uploads/{upload_id}/part-00001-{sha256}   a part as it was PUT; its SHA-256 is its ETag
    uploads/{upload_id}/completing            made by the first complete: the lock against a second
    objects/sha256/ab/cdef…                   the bytes, stored once, read-only (0444)
    paths/{stored_path}                       a hard link to the object: the binding
    tmp/                                      objects being assembled

The same bytes uploaded twice are one inode: complete hashes the assembled
file and keeps it only if ``objects/`` has no such digest yet. A binding is a
hard link, so staging can hard-link ``local_path(stored_path)`` into a run
without copying. Deleting the last binding of an object removes it; objects
left with no link but their own (their bindings and staged copies gone) are
collected by ``purge_abandoned``.

Parts are streamed to disk while hashed (``PartWriter``); the HTTP handlers in
``handlers/storage.py`` serve the signed part and download URLs.
"""

from __future__ import annotations

import contextlib
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
from typing import BinaryIO, Iterable
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
READ_CHUNK = 1024 * 1024
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_FILE = re.compile(r"^part-(\d{5})-([0-9a-f]{64})$")


class PartWriter:
    """One part being received: written to a temp file while hashed, put in place by ``commit``.

    Use it as a context manager (or call ``abort``) so an interrupted part
    leaves no temp file behind.
    """

    def __init__(self, upload_dir: str, part: int):
        self.upload_dir = upload_dir
        self.part = part
        self.size = 0
        self._digest = hashlib.sha256()
        self._fd, self._tmp_path = tempfile.mkstemp(prefix=f".part-{part:05d}-", suffix=".tmp", dir=upload_dir)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk).cast("B")
        self._digest.update(view)
        self.size += len(view)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self) -> str:
        """Put the part in place (replacing none: each content has its own name); return its ETag."""
        os.close(self._fd)
        self._fd = None
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
        """A writer for part ``part`` (1-based) of an open upload; UploadError otherwise."""
        upload_dir = self._upload_dir(upload_id)
        part_count = self._manifest(upload_dir)["part_count"]
        if not 1 <= part <= part_count:
            raise UploadError(f"Part {part} is out of range: this upload has parts 1..{part_count}")
        if os.path.lexists(os.path.join(upload_dir, COMPLETING)):
            raise UploadError(f"Upload {upload_id} is already completed")
        return PartWriter(upload_dir, part)

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
        try:
            os.mkdir(marker)
        except FileExistsError:
            raise UploadError(f"Upload {upload_id} is already being completed") from None
        try:
            parts = _parts_to_assemble(upload_dir, manifest["part_count"], etags)
            stored = self._store_and_bind(parts, manifest["stored_path"])
        except BaseException:
            os.rmdir(marker)
            raise
        manifest.update(completed=True, sha256=stored.sha256, size=stored.size)
        _write_json(os.path.join(upload_dir, MANIFEST), manifest, durable=True)
        _remove_parts(upload_dir)
        return stored

    def _store_and_bind(self, parts: list[tuple[str, str]], stored_path: str) -> StoredObject:
        if len(parts) == 1:
            source, digest = parts[0]  # a single part's SHA-256 is the object's: no copy
            _fsync(source)
        else:
            source, digest = self._assemble(parts)
        try:
            with self._lock:
                self._bind(self._keep_object(source, digest), stored_path)
        finally:
            if len(parts) != 1:
                _unlink_if_present(source)
        return StoredObject(stored_path, os.stat(self._binding_path(stored_path)).st_size, digest)

    def _assemble(self, parts: list[tuple[str, str]]) -> tuple[str, str]:
        """Concatenate the parts into a temp file while hashing it; return (path, SHA-256)."""
        fd, path = tempfile.mkstemp(suffix=".assembling", dir=os.path.join(self.root, "tmp"))
        digest = hashlib.sha256()
        try:
            for part_path, _ in parts:
                with open(part_path, "rb") as part:
                    _append_hashing(part.fileno(), fd, digest)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_if_present(path)
            raise
        os.close(fd)
        return path, digest.hexdigest()

    def _keep_object(self, source: str, digest: str) -> str:
        """Make ``source`` the object of ``digest`` unless that object exists; return its path."""
        obj = self._object_path(digest)
        os.makedirs(os.path.dirname(obj), exist_ok=True)
        os.chmod(source, 0o444)
        try:
            os.link(source, obj)
        except FileExistsError:
            return obj  # the same bytes are stored already: that inode is the object
        _fsync(os.path.dirname(obj))
        return obj

    def _bind(self, obj: str, stored_path: str) -> None:
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
        _fsync(os.path.dirname(binding))

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
        query = {"filename": file_name,
                 **signing.sign(self.secret, "GET", stored_path, expires_in, filename=file_name)}
        return f"{url_base.rstrip('/')}/storage/objects/{quote(stored_path)}?{urlencode(query)}"

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


def _parts_to_assemble(upload_dir: str, part_count: int, etags: dict[int, str]) -> list[tuple[str, str]]:
    """(path, SHA-256) of each part in order, checked against the client's ETags."""
    expected = set(range(1, part_count + 1))
    if set(etags) != expected:
        missing, unknown = sorted(expected - set(etags)), sorted(set(etags) - expected)
        raise UploadError(f"The ETags must name parts 1..{part_count}"
                          + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    uploaded: dict[int, set[str]] = {}
    for name in os.listdir(upload_dir):
        match = _PART_FILE.match(name)
        if match:
            uploaded.setdefault(int(match[1]), set()).add(match[2])
    parts = []
    for part in sorted(etags):
        etag = normalize_etag(etags[part])
        if part not in uploaded:
            raise UploadError(f"Part {part} was not uploaded")
        if etag not in uploaded[part]:
            raise UploadError(f"The ETag of part {part} does not match the uploaded part")
        parts.append((os.path.join(upload_dir, f"part-{part:05d}-{etag}"), etag))
    return parts


def _append_hashing(src_fd: int, out_fd: int, digest) -> None:
    """Hash a whole file through a read-only map, then append it to ``out_fd`` in the kernel."""
    size = os.fstat(src_fd).st_size
    if size == 0:
        return
    with mmap.mmap(src_fd, size, access=mmap.ACCESS_READ) as view:
        view.madvise(mmap.MADV_SEQUENTIAL)
        digest.update(view)
    _copy_range(src_fd, out_fd, size)


def _copy_range(src_fd: int, out_fd: int, size: int) -> None:
    """Append ``size`` bytes of ``src_fd`` (from its start) to ``out_fd``: copy_file_range, else read/write."""
    offset = 0
    try:
        while offset < size:
            copied = os.copy_file_range(src_fd, out_fd, size - offset, offset)
            if copied == 0:
                raise OSError(errno.EIO, "The file shrank while it was copied")
            offset += copied
        return
    except OSError as e:
        if offset or e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    while offset < size:
        chunk = os.pread(src_fd, min(READ_CHUNK, size - offset), offset)
        if not chunk:
            raise OSError(errno.EIO, "The file shrank while it was copied")
        view = memoryview(chunk)
        while view:
            view = view[os.write(out_fd, view):]
        offset += len(chunk)


def _chunks(source) -> Iterable[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return [source]
    if hasattr(source, "read"):
        return iter(lambda: source.read(READ_CHUNK), b"")
    return source


def _remove_parts(upload_dir: str) -> None:
    for name in os.listdir(upload_dir):
        if name.startswith(("part-", ".part-")):
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
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def _write_json(path: str, data: dict, durable: bool = False) -> None:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
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
