"""The files of one upload directory of the local store, and where each part's bytes are in them.

Layout of ``uploads/{upload_id}/`` (see ``uploads`` for how the parts get there)::

    manifest.json         key, stored_path, part_count, created, completed, sha256, size
                          (one JSON line), then a line ``part N {etag} {size}``
                          for each part appended to ``data``
    data                  parts 1..k as they came in order, back to back
    part-00001-{sha256}   a part that came out of order, as it was PUT
    completing            linked by the first complete: the lock against a second

``part_sources`` reads them at complete: which bytes each part named by the
client is (a range of ``data`` if its record has that ETag, else the part
file of that SHA-256).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any, NamedTuple

from .base import UploadError, normalize_etag
from .diskio import mtime, unlink_if_present

MANIFEST = "manifest.json"
COMPLETING = "completing"
DATA = "data"
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_FILE = re.compile(r"^part-(\d{5})-([0-9a-f]{64})$")
_RECORD = re.compile(r"^part (\d+) ([0-9a-f]{64}) (\d+)$")


def read_manifest(upload_dir: str) -> dict[str, Any] | None:
    """The manifest: the JSON object on its first line (the lines after it are part records); None if none."""
    try:
        with open(os.path.join(upload_dir, MANIFEST)) as f:
            return json.loads(f.readline())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def write_manifest(upload_dir: str, data: dict[str, Any], durable: bool = False) -> None:
    """Replace the manifest (its part records with it), flushed to the disk when ``durable``."""
    path = os.path.join(upload_dir, MANIFEST)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data) + "\n")
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def append_record(upload_dir: str, part: int, etag: str, size: int) -> None:
    """Record a part appended to ``data``: one line appended to the manifest (a single write: never interleaved).

    FileNotFoundError when the upload was removed.
    """
    fd = os.open(os.path.join(upload_dir, MANIFEST), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, f"part {part} {etag} {size}\n".encode())
    finally:
        os.close(fd)


class PartSource(NamedTuple):
    """Where the bytes of one part are: a part file, or a range of the ``data`` file."""

    part: int
    etag: str
    path: str
    offset: int
    size: int | None  # None: the whole part file
    in_data: bool


def part_sources(upload_dir: str, part_count: int, etags: dict[int, str]) -> list[PartSource]:
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
    sources: list[PartSource] = []
    for part in sorted(etags):
        etag = normalize_etag(etags[part])
        if part in in_data and in_data[part][0] == etag:
            sources.append(PartSource(part, etag, data_path, in_data[part][1], in_data[part][2], True))
        elif etag in files.get(part, ()):
            sources.append(PartSource(part, etag, os.path.join(upload_dir, f"part-{part:05d}-{etag}"), 0, None, False))
        elif part not in in_data and part not in files:
            raise UploadError(f"Part {part} was not uploaded")
        else:
            raise UploadError(f"The ETag of part {part} does not match the uploaded part")
    return sources


def trim_and_fsync(path: str, end: int) -> None:
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


def remove_parts(upload_dir: str) -> None:
    """Remove the parts' bytes (``data``, part files, parts being received) once they are the object."""
    for name in os.listdir(upload_dir):
        if name.startswith(("part-", ".part-")) or name == DATA:
            unlink_if_present(os.path.join(upload_dir, name))


def last_activity(upload_dir: str, manifest: dict[str, Any] | None) -> float:
    """When the upload began, or its last complete was tried, whichever is later."""
    times = [manifest["created"]] if manifest else [mtime(upload_dir)]
    times.append(mtime(os.path.join(upload_dir, COMPLETING)))
    return max(times)
