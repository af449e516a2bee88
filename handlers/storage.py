"""The local store's self-signed URLs: PUT of upload parts, GET/HEAD of bound objects.

Clients (the upstream CLI among them) fetch these URLs with a bare HTTP
client and no Authorization header: the signature in the query is the
credential, checked before a byte of the body is read. Parts are streamed to
disk as they arrive, never parsed (the CLI labels them
``application/x-www-form-urlencoded``) nor held in memory; downloads are
streamed in chunks and honour a single HTTP Range.
"""

from __future__ import annotations

from tornado import web

from kqi_services.storage.base import StorageError

from .base import APIHandler
from .files import FileSender

#: the largest part a client may PUT (S3's limit)
MAX_PART_BYTES = 5 * 1024**3


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
    refusal: StorageError | None = None

    async def prepare(self):
        await super().prepare()
        upload_id, part = self.path_args[0], int(self.path_args[1])
        try:
            self.store.verify_part_url(upload_id, part, *self.signed_query())
            self.writer = self.store.open_part(upload_id, part)
        except StorageError as e:
            # answered once the body is read and dropped: a reply before the body ends makes
            # tornado close the connection mid-request, which proxies report as 502/503
            self.refusal = e
            return
        self.request.connection.set_max_body_size(MAX_PART_BYTES)

    def data_received(self, chunk: bytes) -> None:
        if self.refusal is None:
            self.writer.write(chunk)

    def put(self, upload_id, part):
        if self.refusal is not None:
            raise self.refusal
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


class ObjectDownloadHandler(FileSender, StorageURLHandler):
    """GET/HEAD storage/objects/{stored_path}: the bound file as an attachment, Range honoured."""

    def resolve(self, stored_path: str) -> tuple[str, str]:
        """Check the URL's signature; the object's path on disk and its download name."""
        file_name = self.get_query_argument("filename", "")
        self.store.verify_download_url(stored_path, file_name, *self.signed_query())
        return self.store.local_path(stored_path), file_name or stored_path.rsplit("/", 1)[-1]

    def head(self, stored_path):
        self.file_headers(*self.resolve(stored_path))

    async def get(self, stored_path):
        path, file_name = self.resolve(stored_path)
        span = self.file_headers(path, file_name)
        if span is not None:
            await self.send_file(path, *span)


default_handlers = [
    (r"storage/parts/([^/]+)/([0-9]+)", PartUploadHandler),
    (r"storage/objects/(.+)", ObjectDownloadHandler),
]
