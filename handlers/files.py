"""Sending a file from disk to an HTTP client: attachment headers, one Range, streamed in chunks."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from tornado import httputil, iostream

from kqi_services.jobs.runfiles import chunks
from kqi_services.storage.base import content_disposition

DOWNLOAD_CHUNK = 1024 * 1024


@lru_cache(maxsize=4096)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: str) -> str:
    """The file's SHA-256 (computed once per version of the file: its mtime and size)."""
    st = os.stat(path)
    return _sha256(path, st.st_mtime_ns, st.st_size)


class RangeNotSatisfiable(Exception):
    pass


def requested_range(range_header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` slice a Range header asks of ``size`` bytes; None for the whole file.

    Multiple ranges and other units are answered with the whole file, as
    tornado's StaticFileHandler does.

    >>> requested_range("bytes=2-4", 10), requested_range("bytes=-3", 10), requested_range("bytes=8-", 10)
    ((2, 5), (7, 10), (8, 10))
    >>> requested_range("bytes=0-", 10) is None
    True
    """
    parsed = httputil._parse_request_range(range_header) if range_header else None
    if parsed is None:
        return None
    start, end = parsed
    if start is not None and start < 0:
        start = max(start + size, 0)
    if (start is not None and (start >= size or (end is not None and start >= end))) or end == 0:
        raise RangeNotSatisfiable()
    start, end = start or 0, min(end if end is not None else size, size)
    return None if (start, end) == (0, size) else (start, end)


class FileSender:
    """Mixin for a RequestHandler (with ``write_json``) that answers with a file's bytes.

    By path (``file_headers`` and ``send_file``: files the service wrote
    itself) or from an fd already open (``size_headers`` and ``send_fd``:
    a run's files, opened once by ``RunTree`` and never by path again).
    """

    def compute_etag(self):
        return None  # tornado would hash only what is still buffered

    def file_headers(self, path: str, file_name: str) -> tuple[int, int] | None:
        """Set the headers of ``path``; the (start, end) to send, or None when answered already (416)."""
        return self.size_headers(os.stat(path).st_size, file_name)

    def size_headers(self, size: int, file_name: str) -> tuple[int, int] | None:
        """Set the headers of a file of ``size`` bytes; the (start, end) to send, or None when answered (416)."""
        try:
            byte_range = requested_range(self.request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            self.set_header("Content-Range", f"bytes */{size}")
            self.write_json({"status": 416, "message": f"The requested range is outside the file's {size} bytes"},
                            416)
            return None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", content_disposition(file_name))
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("X-Content-Type-Options", "nosniff")
        start, end = byte_range or (0, size)
        if byte_range:
            self.set_status(206)
            self.set_header("Content-Range", httputil._get_content_range(start, end, size))
        self.set_header("Content-Length", end - start)
        return start, end

    async def send_file(self, path: str, start: int, end: int) -> None:
        with open(path, "rb") as f:
            await self.send_fd(f.fileno(), start, end)

    async def send_fd(self, fd: int, start: int, end: int) -> None:
        """Send bytes ``[start, end)`` of the open file ``fd`` (a file that shrank meanwhile ends short)."""
        for chunk in chunks(fd, start, end, DOWNLOAD_CHUNK):
            self.write(chunk)
            try:
                await self.flush()
            except iostream.StreamClosedError:
                return  # the client went away
