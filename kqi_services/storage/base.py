"""The object store interface: multipart uploads by URL, objects bound at complete, signed downloads.

Two implementations sit behind it: ``local`` (content-addressed files on disk,
URLs served and signed by the kqi service) and ``s3`` (boto3, presigned URLs
straight to the S3 server). The kqi API (upload/parameter, upload/complete,
file registration, downloads) and the staging of runs only use this.

Life of an upload:
1. ``begin_upload(file_name, part_count, url_base)`` → ``UploadTicket``: an
   ``upload_id``, the ``key`` of the upload, the ``stored_path`` the file will
   have, and one absolute, self-signed PUT URL per part (1-based part numbers).
2. The client PUTs each part to its URL and keeps the ``ETag`` answered.
3. ``complete_upload(key, upload_id, etags)`` checks every part is there with
   that ETag, assembles the object (the local store: flushed to the disk) and
   binds ``stored_path`` to it; returns a ``StoredObject``. A second complete,
   a missing part or a wrong ETag raises ``UploadError``; nothing is bound then.
4. ``stat(stored_path)`` / ``download_url(...)`` / ``local_path(...)``
   serve registered files; ``delete(stored_path)`` drops one binding.

An ETag is whatever the store answered for a part, echoed back with or
without quotes: S3 answers the part's MD5; the local store the SHA-256 of the
upload's bytes up to the end of the part when the part came next in order
(so the last one's is the object's), else the part's own SHA-256.

Parts of uploads never completed are removed by ``purge_abandoned(older_than)``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from kqi_services import validation
from kqi_services.errors import InvalidInput, KqiError

#: S3's limit, which the local store keeps too
MAX_PARTS = 10_000

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StorageError(KqiError):
    """Base of store errors; ``status`` is the HTTP code the API answers.

    A KqiError, so any API handler answers it as JSON with that status.
    """

    status = 500


class UploadError(StorageError):
    """Bad part number, missing part, ETag mismatch, unknown or completed upload."""

    status = 400


class SignatureError(StorageError):
    """A forged, tampered or expired URL."""

    status = 403


class ObjectNotFound(StorageError):
    status = 404


@dataclass
class UploadTicket:
    upload_id: str
    key: str
    stored_path: str
    file_name: str
    part_urls: list[str] = field(default_factory=list)


@dataclass
class StoredObject:
    stored_path: str
    size: int
    sha256: str | None = None  # known for the local store; S3 does not compute it


class ObjectStore(ABC):
    """What the kqi service asks of an object store."""

    kind = ""

    @abstractmethod
    def begin_upload(self, prefix: str, file_name: str, part_count: int, url_base: str,
                     expires_in: int = 24 * 3600) -> UploadTicket:
        """Start a multipart upload of ``part_count`` parts (0 for an empty file).

        ``prefix`` is the kind of upload (``data``, ``training-history-attached-files``…),
        ``url_base`` the absolute public URL of the kqi service as the client
        reaches it (for URLs the service itself serves).
        """

    @abstractmethod
    def complete_upload(self, key: str, upload_id: str, etags: dict[int, str],
                        part_count: int | None = None) -> StoredObject:
        """Verify the parts against ``etags`` (part number → ETag), assemble and bind.

        ``etags`` must name parts 1..N (quotes around an ETag are ignored). Pass
        the ``part_count`` given to ``begin_upload`` where known: S3 cannot
        tell a forgotten last part from a shorter file (the local store knows).
        """

    @abstractmethod
    def put_file(self, prefix: str, file_name: str, path: str) -> StoredObject:
        """Store a file of this machine that the service produced; its ``stored_path`` is new."""

    def adopt_files(self, prefix: str, files: list[tuple[str, int]]) -> list[StoredObject]:
        """Store files a finished run made (a preprocessing's results), each given as (file name, open fd).

        Each fd is a regular file the caller opened without following links.
        This default uploads each one as ``put_file`` does; the local store
        hard-links them instead of copying. All or nothing is the caller's
        to decide: the objects made are returned in order; if one fails, those
        made before it are deleted again and the error is raised.
        """
        made: list[StoredObject] = []
        try:
            for name, fd in files:
                made.append(self.put_file(prefix, name, f"/proc/self/fd/{fd}"))
        except BaseException:
            for obj in made:
                self.delete(obj.stored_path)
            raise
        return made

    @abstractmethod
    def stat(self, stored_path: str) -> StoredObject:
        """The bound object, or ObjectNotFound."""

    @abstractmethod
    def download_url(self, stored_path: str, file_name: str, url_base: str, expires_in: int = 3600) -> str:
        """An absolute GET URL (Range honoured) that carries its own signature."""

    @abstractmethod
    def delete(self, stored_path: str) -> None:
        """Remove the binding (and the bytes when nothing else uses them); no error if absent."""

    @abstractmethod
    def purge_abandoned(self, older_than_seconds: int) -> int:
        """Remove parts of uploads not completed in time; return how many uploads."""

    def local_path(self, stored_path: str) -> str | None:
        """A file path holding the object's bytes when the store is on this disk, else None.

        The local store answers a read-only file that may be hard-linked
        (ObjectNotFound when nothing is bound there).
        """
        return None


# Rules both stores share --------------------------------------------------------------------


def check_file_name(file_name: str) -> str:
    """A file name usable as the last segment of a key: UploadError otherwise."""
    try:
        return validation.safe_file_name(file_name, "file name")
    except InvalidInput as e:
        raise UploadError(e.message) from None


def check_part_count(part_count: int) -> int:
    if isinstance(part_count, bool) or not isinstance(part_count, int) or not 0 <= part_count <= MAX_PARTS:
        raise UploadError(f"The part count must be an integer between 0 and {MAX_PARTS}")
    return part_count


def new_stored_path(prefix: str, file_name: str, unique_id: str, now: datetime | None = None) -> str:
    """``{prefix}/{yyyymmdd}/{unique_id}/{file_name}``; the prefix may have several segments.

    >>> new_stored_path("t1/data", "a b.txt", "abc", datetime(2026, 1, 2))
    't1/data/20260102/abc/a b.txt'
    """
    if not isinstance(prefix, str) or not all(_KEY_SEGMENT.match(s) for s in prefix.split("/")):
        raise UploadError(f"Invalid key prefix {prefix!r}")
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"{prefix}/{day}/{unique_id}/{check_file_name(file_name)}"


def check_stored_path(stored_path: str) -> str:
    """A relative key of safe segments (what ``new_stored_path`` makes): ObjectNotFound otherwise."""
    if not isinstance(stored_path, str) or stored_path.startswith("/"):
        raise ObjectNotFound(f"No such object: {stored_path!r}")
    segments = stored_path.split("/")
    try:
        for segment in segments:
            validation.safe_file_name(segment)
    except InvalidInput:
        raise ObjectNotFound(f"No such object: {stored_path!r}") from None
    if len(segments) < 2:
        raise ObjectNotFound(f"No such object: {stored_path!r}")
    return stored_path


def normalize_etag(etag: str) -> str:
    """An ETag as clients echo it, without quotes or case: ``'"AB12"'`` → ``'ab12'``."""
    if not isinstance(etag, str):
        raise UploadError("An ETag must be a string")
    return etag.strip().strip('"').lower()


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
