"""The embedded object store: content-addressed files on this disk, URLs signed by the service.

Layout under ``root``::

    uploads/…                                 multipart uploads and their manifests (see ``uploads``)
    objects/sha256/ab/cdef…                   the bytes, stored once, read-only (0444)
    paths/{stored_path}                       a hard link to the object: the binding
    tmp/                                      objects being assembled, copies being made

The uploads (parts, complete, their durability) are ``uploads.UploadAssembler``,
which ``LocalStore`` mixes in: a complete hands the store a flushed file and
its SHA-256, and ``_keep_and_bind`` keeps it as the object and binds the
stored path. The binding's record (its SHA-256) is the completed upload's
manifest.

The same bytes uploaded twice are one inode: complete keeps the object only
if ``objects/`` has no such digest yet. A binding is a hard link, so staging
can hard-link ``local_path(stored_path)`` into a run without copying.
Deleting the last binding of an object removes it; objects left with no link
but their own (their bindings and staged copies gone) are collected by
``purge_abandoned``.

The HTTP handlers in ``handlers/storage.py`` serve the signed part and
download URLs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from urllib.parse import quote

from . import signing
from .base import (
    ObjectNotFound,
    ObjectStore,
    StoredObject,
    UploadError,
    check_file_name,
    check_stored_path,
    new_stored_path,
)
from .diskio import copy_range, fsync_path, link_fd, mtime, unlink_if_present
from .uploads import UploadAssembler


class LocalStore(UploadAssembler, ObjectStore):
    """Content-addressed objects under ``root``; part and download URLs signed with ``secret``."""

    kind = "local"

    def __init__(self, root: str, secret: bytes | str):
        if not secret:
            raise ValueError("LocalStore needs a non-empty secret to sign its URLs")
        super().__init__()
        self.root = os.path.abspath(root)
        self.secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        # objects and bindings are linked and unlinked under this lock (link counts decide deletion)
        self._lock = threading.Lock()
        for sub in ("uploads", "objects/sha256", "paths", "tmp"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    # objects and bindings ----------------------------------------------------------------------
    def _keep_and_bind(self, source: str, digest: str, stored_path: str) -> StoredObject:
        """Keep the flushed file ``source`` as the object of ``digest``, bind ``stored_path``, flush the names."""
        with self._lock:
            obj, new = self._keep_object(source, digest)
            binding = self._bind(obj, stored_path)
        # the new names made durable, the object's first (one journal commit mostly covers both)
        if new:
            fsync_path(os.path.dirname(obj))
        fsync_path(os.path.dirname(binding))
        return StoredObject(stored_path, os.stat(binding).st_size, digest)

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
                copy_range(src.fileno(), fd, os.fstat(src.fileno()).st_size)
            os.fchmod(fd, 0o444)
            os.fsync(fd)
            os.rename(tmp, binding)
        finally:
            os.close(fd)
            unlink_if_present(tmp)

    # bound objects -------------------------------------------------------------------------
    def put_file(self, prefix: str, file_name: str, path: str) -> StoredObject:
        """Store a file the service made itself (a run's log, its output.zip)."""
        ticket = self.begin_upload(prefix, file_name, 1, "")
        with open(path, "rb") as source:
            etag = self.write_part(ticket.upload_id, 1, source)
        return self.complete_upload(ticket.key, ticket.upload_id, {1: etag}, 1)

    def adopt_files(self, prefix: str, files: list[tuple[str, int]]) -> list[StoredObject]:
        """Bind each (file name, fd) by hard-linking its inode as the object: no copy.

        The file's SHA-256 is read from the fd; when the store holds those
        bytes already, that object is bound instead. The inode becomes the
        store's (read-only, 0444): the run has ended and its output stays as it
        was. A file on another filesystem is copied. The files of one call are
        bound in one directory (a name given twice gets one of its own), and
        directory entries are flushed once per directory at the end.
        """
        made: list[StoredObject] = []
        dirs = set()
        batch, used = uuid.uuid4().hex, set()  # one binding directory for the call, unless names repeat
        try:
            for name, fd in files:
                digest = _sha256_of(fd)
                stored_path = new_stored_path(prefix, name, batch if name not in used else uuid.uuid4().hex)
                used.add(name)
                with self._lock:
                    obj = self._object_path(digest)
                    if os.path.dirname(obj) not in dirs:
                        os.makedirs(os.path.dirname(obj), exist_ok=True)
                    if not os.path.exists(obj):
                        self._link_fd(fd, obj)
                    dirs.add(os.path.dirname(obj))
                    binding = self._bind(obj, stored_path)
                dirs.add(os.path.dirname(binding))
                made.append(StoredObject(stored_path, os.fstat(fd).st_size, digest))
        except BaseException:
            for stored in made:
                self.delete(stored.stored_path)
            raise
        for d in sorted(dirs):
            fsync_path(d)
        return made

    def _link_fd(self, fd: int, obj: str) -> None:
        """Make the open file ``fd`` the object ``obj`` (a link to its inode; a copy across filesystems)."""
        os.fchmod(fd, 0o444)
        try:
            link_fd(fd, obj)
            return
        except FileExistsError:
            return
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM):
                raise
        tmp_fd, tmp = tempfile.mkstemp(suffix=".adopt", dir=os.path.join(self.root, "tmp"))
        try:
            copy_range(fd, tmp_fd, os.fstat(fd).st_size)
            os.fchmod(tmp_fd, 0o444)
            os.fsync(tmp_fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, obj)
        finally:
            os.close(tmp_fd)
            unlink_if_present(tmp)

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
        purged = self._purge_uploads(cutoff)
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
    def _object_path(self, digest: str) -> str:
        return os.path.join(self.root, "objects", "sha256", digest[:2], digest[2:])

    def _binding_path(self, stored_path: str) -> str:
        return os.path.join(self.root, "paths", check_stored_path(stored_path))



# helpers on files ---------------------------------------------------------------------------


def _sha256_of(fd: int) -> str:
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1024 * 1024, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _unlink_if_older(path: str, cutoff: float) -> None:
    if 0 < mtime(path) <= cutoff:
        unlink_if_present(path)


def _remove_empty_dirs(path: str, stop: str) -> None:
    while path != stop and path.startswith(stop + os.sep):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)
