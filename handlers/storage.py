"""The local store's self-signed URLs: PUT of upload parts, GET/HEAD of bound objects.

Clients (the upstream CLI among them) fetch these URLs with a bare HTTP
client and no Authorization header: the signature in the query is the
credential, checked before a byte of the body is read. Parts are streamed to
disk as they arrive, never parsed (the CLI labels them
``application/x-www-form-urlencoded``) nor held in memory; downloads are
streamed in chunks and honour a single HTTP Range.
"""

from __future__ import annotations

import os

from tornado import httputil, iostream, web

from kqi_services.storage.base import content_disposition

from .base import APIHandler

#: the largest part a client may PUT (S3's limit)
MAX_PART_BYTES = 5 * 1024**3
DOWNLOAD_CHUNK = 1024 * 1024


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


class StorageURLHandler(APIHandler):
    """Base of handlers whose URL carries its own signature instead of a token."""

    auth_required = False

    @property
    def store(self):
        return self.settings["local_store"]

    def signed_query(self) -> tuple[str | None, str | None]:
        return self.get_query_argument("expires", None), self.get_query_argument("signature", None)


@web.stream_request_body
class PartUploadHandler(StorageURLHandler):
    """PUT storage/parts/{upload_id}/{part}: one part of a multipart upload, answered with its ETag."""

    writer = None

    async def prepare(self):
        await super().prepare()
        upload_id, part = self.path_args[0], int(self.path_args[1])
        self.store.verify_part_url(upload_id, part, *self.signed_query())
        self.request.connection.set_max_body_size(MAX_PART_BYTES)
        self.writer = self.store.open_part(upload_id, part)

    def data_received(self, chunk: bytes) -> None:
        self.writer.write(chunk)

    def put(self, upload_id, part):
        etag = self.writer.commit()
        self.set_header("ETag", etag)
        self.write_json({"partNumber": int(part), "etag": etag, "size": self.writer.size})

    def on_finish(self):
        self._drop_writer()
        super().on_finish()

    def on_connection_close(self):
        self._drop_writer()

    def _drop_writer(self):
        if self.writer is not None:
            self.writer.abort()  # nothing left to do once committed


class ObjectDownloadHandler(StorageURLHandler):
    """GET/HEAD storage/objects/{stored_path}: the bound file as an attachment, Range honoured."""

    def compute_etag(self):
        return None  # tornado would hash only what is still buffered

    def _open(self, stored_path: str) -> tuple[str, int, int] | None:
        """Check the URL, set the headers; (path, start, end) to send, None when answered already."""
        file_name = self.get_query_argument("filename", "")
        self.store.verify_download_url(stored_path, file_name, *self.signed_query())
        path = self.store.local_path(stored_path)
        size = os.stat(path).st_size
        try:
            byte_range = requested_range(self.request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            self.set_header("Content-Range", f"bytes */{size}")
            self.write_json({"status": 416, "message": f"The requested range is outside the file's {size} bytes"},
                            416)
            return None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", content_disposition(file_name or stored_path.rsplit("/", 1)[-1]))
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("X-Content-Type-Options", "nosniff")
        start, end = byte_range or (0, size)
        if byte_range:
            self.set_status(206)
            self.set_header("Content-Range", httputil._get_content_range(start, end, size))
        self.set_header("Content-Length", end - start)
        return path, start, end

    def head(self, stored_path):
        self._open(stored_path)

    async def get(self, stored_path):
        opened = self._open(stored_path)
        if opened is None:
            return
        path, start, end = opened
        with open(path, "rb") as f:
            f.seek(start)
            remaining = end - start
            while remaining:
                chunk = f.read(min(DOWNLOAD_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                self.write(chunk)
                try:
                    await self.flush()
                except iostream.StreamClosedError:
                    return  # the client went away


default_handlers = [
    (r"storage/parts/([^/]+)/([0-9]+)", PartUploadHandler),
    (r"storage/objects/(.+)", ObjectDownloadHandler),
]
