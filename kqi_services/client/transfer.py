"""File transfers of the kqi client: v2 multipart uploads and streamed downloads.

Upload, as the upstream CLI and the service speak it:

1. ``GET /upload/parameter?fileName&partSum&type`` → ``{uris, uploadId, key, storedPath, …}``;
2. one ``PUT`` of each 16 MiB part to its absolute, signed URL, without
   ``Authorization`` (sent by a few threads at once; a failed part is
   retried with backoff), each answered with an ``ETag`` header;
3. ``POST /upload/complete`` with ``partETags: ["{partNo}+{etag}"]``.

Parts are read from disk as they are sent; downloads are written to disk
chunk by chunk. Neither ever holds a whole file in memory. Progress is
reported as ``progress(bytes_done, bytes_total)`` (``bytes_total`` is None
for a download without ``Content-Length``); it is always called once more
at the end.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .errors import KqiApiError

PART_SIZE = 16 * 1024 * 1024
WORKERS = 4
RETRIES = 3
BACKOFF = 0.5
DOWNLOAD_CHUNK = 1024 * 1024
#: what the upstream CLI labels parts with; the service streams the body whatever it says
PART_CONTENT_TYPE = "application/x-www-form-urlencoded"


class _Progress:
    """Thread-safe byte counter behind a ``progress(done, total)`` callback."""

    def __init__(self, callback, total: int | None):
        self.callback = callback
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        if not n:
            return
        with self.lock:
            self.done += n
            if self.callback:
                self.callback(self.done, self.total)

    def finish(self) -> None:
        if self.callback:
            with self.lock:
                self.callback(self.done, self.total if self.total is not None else self.done)


class _PartReader:
    """A file-like view of bytes [offset, offset+length) of a file, counting what is read."""

    def __init__(self, path: str, offset: int, length: int, progress: _Progress):
        self.file = open(path, "rb")
        self.file.seek(offset)
        self.remaining = length
        self.length = length
        self.progress = progress
        self.sent = 0

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        chunk = self.file.read(size)
        self.remaining -= len(chunk)
        self.sent += len(chunk)
        self.progress.add(len(chunk))
        return chunk

    def close(self) -> None:
        self.file.close()


def _put_part(client, url: str, path: str, number: int, part_size: int, size: int, progress: _Progress,
              retries: int, backoff: float) -> str:
    """PUT part ``number`` (1-based); its ETag. Retries connection errors, 5xx, 429 and missing ETags."""
    offset = (number - 1) * part_size
    length = min(part_size, size - offset)
    error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        reader = _PartReader(path, offset, length, progress)
        try:
            response = client.storage_session.put(url, data=reader, headers={"Content-Type": PART_CONTENT_TYPE},
                                                  timeout=(client.timeout, max(client.timeout, 300)))
        except requests.RequestException as e:
            error = KqiApiError(0, f"part {number}: {e}")
            progress.add(-reader.sent)
            continue
        finally:
            reader.close()
        etag = response.headers.get("ETag")
        if response.status_code < 300 and etag:
            return etag
        progress.add(-reader.sent)
        error = KqiApiError.from_response(response) if response.status_code >= 400 else \
            KqiApiError(response.status_code, f"part {number} was answered without an ETag")
        if 400 <= response.status_code < 500 and response.status_code != 429:
            break
    raise KqiApiError(getattr(error, "status", 0), f"Upload of part {number} of {os.path.basename(path)} "
                                                   f"failed: {getattr(error, 'message', error)}")


def upload_file(client, path: str, resource_type: str = "Data", *, progress=None, file_name: str | None = None,
                part_size: int = PART_SIZE, workers: int = WORKERS, retries: int = RETRIES,
                backoff: float = BACKOFF) -> dict:
    """Upload ``path``; the upload parameter model plus ``size``/``sha256`` of the completion.

    Args:
        client: a :class:`KqiClient`.
        path: the local file.
        resource_type: ``Data``, ``TrainingHistoryAttachedFiles``, …
        progress: ``progress(bytes_done, bytes_total)``.
        file_name: the name to store (default: the file's base name).
        part_size: bytes per part (16 MiB, as the upstream CLI).
        workers: parts sent at once.
        retries: further tries of a failed part.
        backoff: seconds before the first retry, doubled each time.

    The result's ``fileName`` and ``storedPath`` are what data and run
    attachments are registered with.
    """
    size = os.path.getsize(path)
    parts = (size - 1) // part_size + 1
    ticket = client.get("/upload/parameter", params={"fileName": file_name or os.path.basename(path),
                                                      "partSum": parts, "type": resource_type})
    uris = ticket.get("uris") or []
    if len(uris) != parts:
        raise KqiApiError(0, f"The service issued {len(uris)} part URLs for {parts} parts")
    counter = _Progress(progress, size)
    if parts:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, parts)), thread_name_prefix="kqi-upload") as pool:
            futures = [pool.submit(_put_part, client, uri, path, number, part_size, size, counter, retries, backoff)
                       for number, uri in enumerate(uris, start=1)]
            try:
                etags = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    else:
        etags = []
    done = client.post("/upload/complete", {"key": ticket["key"], "uploadId": ticket["uploadId"],
                                            "partETags": [f"{n}+{e}" for n, e in enumerate(etags, start=1)]})
    counter.finish()
    return {**ticket, **{k: v for k, v in (done or {}).items() if k in ("size", "sha256", "storedPath")}}


def safe_join(directory: str, relative: str) -> str:
    """``relative`` (a server-given path) under ``directory``; refuses ``..`` and absolute escapes."""
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"refusing to write outside {directory!r}: {relative!r}")
    return os.path.join(directory, *parts)


def download_url(client, url: str, directory: str, file_name: str, *, progress=None) -> str:
    """Stream ``url`` (signed, fetched without the token) into ``directory/basename(file_name)``; the path.

    The bytes go to a temporary file beside the target, renamed into place
    when complete, so an interrupted download leaves no partial file.
    """
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, os.path.basename(file_name.replace("\\", "/")) or "download")
    try:
        response = client.storage_session.get(url, stream=True, timeout=(client.timeout, max(client.timeout, 300)))
    except requests.RequestException as e:
        raise KqiApiError(0, f"Download of {file_name} failed: {e}") from e
    with response:
        if response.status_code >= 400:
            raise KqiApiError.from_response(response)
        length = response.headers.get("Content-Length")
        if response.headers.get("Content-Encoding", "identity") != "identity":
            length = None  # the length of the encoded body, not of the bytes written
        counter = _Progress(progress, int(length) if length and length.isdigit() else None)
        fd, partial = tempfile.mkstemp(prefix=".kqi-", suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    f.write(chunk)
                    counter.add(len(chunk))
            if counter.total is not None and counter.done != counter.total:
                raise KqiApiError(0, f"Download of {file_name} ended after {counter.done} of {counter.total} bytes")
            os.replace(partial, target)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
    counter.finish()
    return target
