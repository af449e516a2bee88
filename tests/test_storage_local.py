"""The embedded local object store: signing, multipart uploads, dedupe, and its URLs over real HTTP.

The HTTP tests run ``handlers.storage`` in a tiny tornado application on a
loopback port (in a thread of its own, so the tests can use ``requests``)
and upload as the upstream CLI does: one PUT per part labelled
``application/x-www-form-urlencoded``, no Authorization header.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from tornado import httpserver, netutil, web
from tornado.httputil import url_concat

from handlers.files import requested_range
from handlers.storage import default_handlers
from kqi_services.storage import signing
from kqi_services.storage import uploads as local_module
from kqi_services.storage.base import ObjectNotFound, SignatureError, UploadError
from kqi_services.storage.local import LocalStore
from kqi_services.storage.uploads import AppendWriter, PartWriter

PREFIX = "/services/kqi/"
CLI_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
MiB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(str(tmp_path / "store"), "test-secret")


class StorageServer:
    """The storage handlers of one LocalStore, served on 127.0.0.1 by a thread's own IOLoop."""

    def __init__(self, store: LocalStore):
        self.store = store
        routes = [(PREFIX + pattern, handler) for pattern, handler in default_handlers]
        self.app = web.Application(routes, local_store=store)
        [self._socket] = netutil.bind_sockets(0, "127.0.0.1")
        self.url_base = f"http://127.0.0.1:{self._socket.getsockname()[1]}{PREFIX.rstrip('/')}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        server = httpserver.HTTPServer(self.app)
        server.add_sockets([self._socket])
        self._ready.set()
        self._loop.run_forever()
        server.stop()
        self._loop.close()

    def __enter__(self) -> StorageServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def server(store):
    with StorageServer(store) as running:
        yield running


def put_parts(urls: list[str], data: bytes, part_size: int) -> dict[int, str]:
    """PUT ``data`` in parts as the upstream CLI does; the ETags as it echoes them."""
    etags = {}
    for number, url in enumerate(urls, 1):
        body = data[(number - 1) * part_size:number * part_size]
        r = requests.put(url, data=body, headers=CLI_HEADERS, timeout=30)
        assert r.status_code == 200, r.text
        etags[number] = r.headers["ETag"]
    return etags


def upload(store: LocalStore, data: bytes, file_name="data.bin", part_size=MiB, prefix="t1/data"):
    """Upload ``data`` through the store API (no HTTP); return the stored object."""
    part_count = -(-len(data) // part_size)
    ticket = store.begin_upload(prefix, file_name, part_count, "http://unused")
    etags = {part: store.write_part(ticket.upload_id, part, data[(part - 1) * part_size:part * part_size])
             for part in range(1, part_count + 1)}
    return store.complete_upload(ticket.key, ticket.upload_id, etags)


def object_files(store: LocalStore) -> list[str]:
    root = os.path.join(store.root, "objects", "sha256")
    return [os.path.join(root, shard, name)
            for shard in os.listdir(root) for name in os.listdir(os.path.join(root, shard))]


# signing ------------------------------------------------------------------------------------


def test_signature_covers_every_field_and_expires():
    secret, now = b"s3cret", 1_700_000_000
    query = signing.sign(secret, "PUT", "upload-1", 60, part=2, now=now)
    assert query["expires"] == str(now + 60)
    signing.verify(secret, "PUT", "upload-1", query["expires"], query["signature"], part=2, now=now)
    signing.verify(secret, "put", "upload-1", query["expires"], query["signature"], part=2, now=now + 60)
    genuine = dict(secret=secret, method="PUT", key="upload-1", expires=query["expires"],
                   signature=query["signature"], part=2, now=now)
    forged = [
        dict(secret=b"other"), dict(method="GET"), dict(key="upload-2"), dict(part=3), dict(filename="x"),
        dict(expires=str(now + 3600)), dict(signature=query["signature"][:-1] + "0"), dict(signature="é"),
        dict(signature=None), dict(expires=None), dict(expires="-1"), dict(expires="1e9"),
    ]
    for change in forged:
        with pytest.raises(SignatureError):
            signing.verify(**{**genuine, **change})
    with pytest.raises(SignatureError, match="expired"):
        signing.verify(secret, "PUT", "upload-1", query["expires"], query["signature"], part=2, now=now + 61)


def test_requested_range():
    assert requested_range(None, 10) is None
    assert requested_range("bytes=0-", 10) is None
    assert requested_range("bytes=0-99", 10) is None
    assert requested_range("bytes=2-4", 10) == (2, 5)
    assert requested_range("bytes=5-", 10) == (5, 10)
    assert requested_range("bytes=-3", 10) == (7, 10)
    assert requested_range("bytes=-30", 10) is None
    assert requested_range("bytes=1-2,5-6", 10) is None  # several ranges: the whole file
    assert requested_range("items=1-2", 10) is None


# the store ----------------------------------------------------------------------------------


def test_multipart_upload_is_assembled_hashed_and_read_only(store):
    data = os.urandom(3 * MiB + 123)
    ticket = store.begin_upload("t1/data", "model.bin", 4, "http://h/services/kqi/")
    assert ticket.key == ticket.stored_path
    assert ticket.stored_path.startswith("t1/data/") and ticket.stored_path.endswith(f"/{ticket.upload_id}/model.bin")
    assert all(url.startswith(f"http://h/services/kqi/storage/parts/{ticket.upload_id}/{n}?expires=")
               for n, url in enumerate(ticket.part_urls, 1))
    etags = {}
    for part in (3, 1, 4, 2):  # any order, from files, iterables and bytes
        chunk = data[(part - 1) * MiB:part * MiB]
        source = [chunk[:1000], chunk[1000:]] if part % 2 else chunk
        etags[part] = store.write_part(ticket.upload_id, part, source)
        # parts 1 then 2 come in order: appended, their ETag the SHA-256 of the bytes so far;
        # 3 and 4 came early: files of their own, their ETag their SHA-256
        expected = data[:part * MiB] if part in (1, 2) else chunk
        assert etags[part] == f'"{hashlib.sha256(expected).hexdigest()}"'
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    assert (stored.stored_path, stored.size, stored.sha256) == (ticket.stored_path, len(data),
                                                               hashlib.sha256(data).hexdigest())
    path = store.local_path(ticket.stored_path)
    with open(path, "rb") as f:
        assert f.read() == data
    assert os.stat(path).st_mode & 0o777 == 0o444
    assert store.stat(ticket.stored_path) == stored
    upload_dir = os.path.join(store.root, "uploads", ticket.upload_id)
    assert sorted(os.listdir(upload_dir)) == ["completing", "manifest.json"]  # the parts are gone
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_same_bytes_are_one_object(store):
    data = os.urandom(2 * MiB + 5)
    first = upload(store, data, "a.bin")
    second = upload(store, data, "b.bin", part_size=512 * 1024)  # other parts, same bytes
    single = upload(store, data, "c.bin", part_size=4 * MiB)  # one part: linked, not copied
    inodes = {os.stat(store.local_path(s.stored_path)).st_ino for s in (first, second, single)}
    assert len(inodes) == 1
    [obj] = object_files(store)
    assert os.stat(obj).st_ino in inodes and os.stat(obj).st_nlink == 4
    assert os.path.basename(os.path.dirname(obj)) + os.path.basename(obj) == first.sha256


def test_an_object_with_the_most_links_is_copied_for_a_new_binding(store, monkeypatch):
    first = upload(store, b"common bytes", "a.txt")
    real_link = os.link

    def link(src, dst):
        if dst.startswith(os.path.join(store.root, "paths") + os.sep):
            raise OSError(errno.EMLINK, "Too many links")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    second = upload(store, b"common bytes", "b.txt")
    monkeypatch.undo()
    assert second.sha256 == first.sha256
    copy = store.local_path(second.stored_path)
    assert os.stat(copy).st_ino != os.stat(store.local_path(first.stored_path)).st_ino
    assert Path(copy).read_bytes() == b"common bytes" and os.stat(copy).st_mode & 0o777 == 0o444
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_empty_file(store):
    ticket = store.begin_upload("t1/data", "empty.txt", 0, "http://h")
    assert ticket.part_urls == []
    stored = store.complete_upload(ticket.key, ticket.upload_id, {})
    assert (stored.size, stored.sha256) == (0, EMPTY_SHA256)
    again = upload(store, b"", "empty2.txt")
    assert os.stat(store.local_path(again.stored_path)).st_ino == os.stat(store.local_path(stored.stored_path)).st_ino


def test_complete_refuses_missing_parts_wrong_etags_and_a_second_complete(store):
    ticket = store.begin_upload("t1/data", "f.bin", 2, "http://h")
    first = store.write_part(ticket.upload_id, 1, b"one")
    with pytest.raises(UploadError, match="Part 2 was not uploaded"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: first})
    second = store.write_part(ticket.upload_id, 2, b"two")
    with pytest.raises(UploadError, match="ETag of part 2 does not match"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: first})
    with pytest.raises(UploadError, match="missing \\[2\\]"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first})
    with pytest.raises(UploadError, match="unknown \\[3\\]"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: second, 3: second})
    with pytest.raises(UploadError, match="key does not belong"):
        store.complete_upload("t1/data/other", ticket.upload_id, {1: first, 2: second})
    with pytest.raises(UploadError, match="begun with 2 parts"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: second}, part_count=3)
    with pytest.raises(ObjectNotFound):
        store.stat(ticket.stored_path)  # nothing was bound by the failures
    # a part sent again replaces nothing: the client's ETag chooses the bytes
    store.write_part(ticket.upload_id, 2, b"TWO")
    stored = store.complete_upload(ticket.key, ticket.upload_id, {1: first.upper(), 2: second.strip('"')},
                                   part_count=2)
    with open(store.local_path(stored.stored_path), "rb") as f:
        assert f.read() == b"onetwo"
    with pytest.raises(UploadError, match="already completed"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: second})
    with pytest.raises(UploadError, match="already completed"):
        store.write_part(ticket.upload_id, 1, b"late")


def test_parts_out_of_range_and_unknown_uploads(store):
    ticket = store.begin_upload("t1/data", "f.bin", 2, "http://h")
    for part in (0, 3, -1):
        with pytest.raises(UploadError, match="out of range"):
            store.open_part(ticket.upload_id, part)
    for upload_id in ("0" * 32, "../../etc", ticket.upload_id.upper(), ""):
        with pytest.raises(UploadError, match="Unknown upload"):
            store.open_part(upload_id, 1)
        with pytest.raises(UploadError, match="Unknown upload"):
            store.complete_upload(ticket.key, upload_id, {})


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\x00b", "a\nb", "tab\tname", "del\x7f",
                                  "x" * 256, "é" * 128])
def test_bad_file_names(store, name):
    with pytest.raises(UploadError):
        store.begin_upload("t1/data", name, 1, "http://h")


@pytest.mark.parametrize("name", ["データ.csv", "a b (1).txt", "a..b", ".hidden", "x" * 255, "é" * 127])
def test_good_file_names(store, name):
    stored = upload(store, b"x", name)
    assert stored.stored_path.endswith("/" + name)


@pytest.mark.parametrize("prefix", ["", "/abs", "a//b", "a/../b", "a/.b", "a b"])
def test_bad_prefixes(store, prefix):
    with pytest.raises(UploadError, match="prefix"):
        store.begin_upload(prefix, "f.txt", 1, "http://h")


def test_delete_drops_a_binding_and_the_object_with_its_last_one(store):
    data = os.urandom(1000)
    first, second = upload(store, data, "a.bin"), upload(store, data, "b.bin")
    [obj] = object_files(store)
    store.delete(first.stored_path)
    with pytest.raises(ObjectNotFound):
        store.stat(first.stored_path)
    assert object_files(store) == [obj] and store.stat(second.stored_path).size == 1000
    store.delete(second.stored_path)
    assert object_files(store) == []
    store.delete(second.stored_path)  # already gone: nothing to do
    assert os.listdir(os.path.join(store.root, "paths")) == []
    assert os.listdir(os.path.join(store.root, "uploads")) == []
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../b", "a//b"):
        with pytest.raises(ObjectNotFound):
            store.delete(bad)


def test_staged_links_keep_bytes_until_purge(store, tmp_path):
    stored = upload(store, b"staged bytes")
    staged = tmp_path / "run" / "input"
    staged.parent.mkdir()
    os.link(store.local_path(stored.stored_path), staged)  # as staging does
    store.delete(stored.stored_path)
    assert staged.read_bytes() == b"staged bytes" and len(object_files(store)) == 1
    store.purge_abandoned(3600)
    assert len(object_files(store)) == 1  # still linked by the run
    staged.unlink()
    store.purge_abandoned(3600)
    assert object_files(store) == []


def test_purge_abandoned_uploads(store):
    done = upload(store, b"done")
    open_ticket = store.begin_upload("t1/data", "open.bin", 2, "http://h")
    store.write_part(open_ticket.upload_id, 1, b"part")
    empty_ticket = store.begin_upload("t1/data", "never.bin", 0, "http://h")
    assert store.purge_abandoned(3600) == 0
    time.sleep(0.01)
    assert store.purge_abandoned(0) == 2
    assert sorted(os.listdir(os.path.join(store.root, "uploads"))) == [done.stored_path.split("/")[-2]]
    for ticket in (open_ticket, empty_ticket):
        with pytest.raises(UploadError, match="Unknown upload"):
            store.complete_upload(ticket.key, ticket.upload_id, {})
    assert store.stat(done.stored_path).size == 4


# over HTTP ----------------------------------------------------------------------------------


def test_http_multipart_upload_and_download(server):
    store = server.store
    data = os.urandom(5 * MiB + 777)
    ticket = store.begin_upload("t1/data", "résumé 1.bin", 3, server.url_base)
    etags = put_parts(ticket.part_urls, data, 2 * MiB)
    assert all(etag.startswith('"') and etag.endswith('"') for etag in etags.values())
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)  # ETags as the CLI echoes them
    assert stored.sha256 == hashlib.sha256(data).hexdigest()

    url = store.download_url(stored.stored_path, "résumé 1.bin", server.url_base)
    assert url.startswith(server.url_base + "/storage/objects/" + quote(stored.stored_path) + "?")
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Disposition"] == \
        "attachment; filename=\"r_sum_ 1.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.bin"
    assert "Authorization" not in r.request.headers

    r = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert (r.status_code, r.content) == (206, data[1000:2000])
    assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}" and r.headers["Content-Length"] == "1000"
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert (r.status_code, r.content) == (206, data[-10:])
    r = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    assert r.json()["status"] == 416

    r = requests.head(url, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data)) and r.content == b""


def test_http_part_bodies_are_never_parsed_as_forms(server):
    body = b"a=1&b=2&expires=0&signature=x"
    ticket = server.store.begin_upload("t1/data", "form.txt", 1, server.url_base)
    etags = put_parts(ticket.part_urls, body, len(body))
    stored = server.store.complete_upload(ticket.key, ticket.upload_id, etags)
    r = requests.get(server.store.download_url(stored.stored_path, "form.txt", server.url_base), timeout=30)
    assert r.content == body


def test_http_empty_file_download(server):
    stored = upload(server.store, b"", "empty.txt")
    url = server.store.download_url(stored.stored_path, "empty.txt", server.url_base)
    r = requests.get(url, timeout=30)
    assert (r.status_code, r.content, r.headers["Content-Length"]) == (200, b"", "0")
    assert requests.get(url, headers={"Range": "bytes=0-"}, timeout=30).status_code == 416


def _with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return url_concat(parts._replace(query="").geturl(), query)


def test_http_forged_tampered_and_expired_urls_are_refused(server):
    store = server.store
    ticket = store.begin_upload("t1/data", "f.bin", 2, server.url_base)
    part1, part2 = ticket.part_urls
    past = signing.sign(store.secret, "PUT", ticket.upload_id, 60, part=1, now=time.time() - 3600)
    refused = [
        part1.replace("/parts/" + ticket.upload_id + "/1?", "/parts/" + ticket.upload_id + "/2?"),  # other part
        _with_query(part1, signature="0" * 64),
        _with_query(part1, expires=str(int(time.time()) + 999999)),
        _with_query(part1, signature=None),
        _with_query(part1, **past),
        part2.split("?")[0],
    ]
    for url in refused:
        r = requests.put(url, data=b"x" * 1000, headers=CLI_HEADERS, timeout=30)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["status"] == 403 and r.json()["message"]
    assert [n for n in os.listdir(os.path.join(store.root, "uploads", ticket.upload_id)) if "part" in n] == []

    stored = upload(store, b"secret bytes", "f.txt")
    url = store.download_url(stored.stored_path, "f.txt", server.url_base)
    expired = signing.sign(store.secret, "GET", stored.stored_path, 60, filename="f.txt", now=time.time() - 3600)
    other = upload(store, b"other bytes", "g.txt")
    for bad in (_with_query(url, filename="evil.exe"), _with_query(url, signature="1" * 64),
                _with_query(url, **expired), url.replace(quote(stored.stored_path), quote(other.stored_path))):
        r = requests.get(bad, timeout=30)
        assert r.status_code == 403 and r.json()["status"] == 403, bad
        assert requests.head(bad, timeout=30).status_code == 403


def test_http_part_errors_are_json(server):
    store = server.store
    ticket = store.begin_upload("t1/data", "f.bin", 1, server.url_base)
    beyond = signing.sign(store.secret, "PUT", ticket.upload_id, 60, part=2)
    r = requests.put(url_concat(f"{server.url_base}/storage/parts/{ticket.upload_id}/2", beyond), data=b"x",
                     headers=CLI_HEADERS, timeout=30)
    assert r.status_code == 400 and "out of range" in r.json()["message"]
    unknown = "f" * 32
    r = requests.put(url_concat(f"{server.url_base}/storage/parts/{unknown}/1",
                                signing.sign(store.secret, "PUT", unknown, 60, part=1)), data=b"x", timeout=30)
    assert r.status_code == 400 and "Unknown upload" in r.json()["message"]
    put_parts(ticket.part_urls, b"x", 1)
    store.complete_upload(ticket.key, ticket.upload_id, {1: f'"{hashlib.sha256(b"x").hexdigest()}"'})
    r = requests.put(ticket.part_urls[0], data=b"x", headers=CLI_HEADERS, timeout=30)
    assert r.status_code == 400 and "already completed" in r.json()["message"]
    r = requests.get(store.download_url("t1/data/20260101/" + "a" * 32 + "/gone.txt", "gone.txt", server.url_base),
                     timeout=30)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_http_part_larger_than_tornados_default_body_limit(server):
    chunk, count = b"\0" * MiB, 101  # tornado refuses bodies over 100 MiB unless told otherwise
    ticket = server.store.begin_upload("t1/data", "zeros.bin", 1, server.url_base)
    r = requests.put(ticket.part_urls[0], data=(chunk for _ in range(count)), headers=CLI_HEADERS, timeout=60)
    assert r.status_code == 200, r.text
    digest = hashlib.sha256()
    for _ in range(count):
        digest.update(chunk)
    assert r.headers["ETag"] == f'"{digest.hexdigest()}"' and r.json()["size"] == count * MiB


# the sequential fast path ---------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_rehash(monkeypatch):
    """Fail the test if complete reads the parts back (assembly or hashing again)."""
    def refuse(*args):
        raise AssertionError("complete read the parts back")

    monkeypatch.setattr(local_module, "_hash_sources", refuse)


def begin(store, data: bytes, part_size: int, name="data.bin"):
    ticket = store.begin_upload("t1/data", name, -(-len(data) // part_size), "http://h")
    return ticket, [data[i:i + part_size] for i in range(0, len(data), part_size)]


def test_parts_in_order_are_appended_hashed_once_and_become_the_object(store, monkeypatch):
    data = os.urandom(3 * MiB + 4321)
    ticket, parts = begin(store, data, MiB)
    etags = {}
    for number, chunk in enumerate(parts, 1):
        with store.open_part(ticket.upload_id, number) as writer:
            assert isinstance(writer, AppendWriter)
            writer.write(chunk[:100])
            writer.write(chunk[100:])
            etags[number] = writer.commit()
        assert etags[number] == f'"{sha(data[:sum(map(len, parts[:number]))])}"'  # the SHA-256 so far
    upload_dir = os.path.join(store.root, "uploads", ticket.upload_id)
    inode = os.stat(os.path.join(upload_dir, "data")).st_ino
    assert [n for n in os.listdir(upload_dir) if n.startswith(("part-", ".part-"))] == []
    no_rehash(monkeypatch)
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    assert (stored.size, stored.sha256) == (len(data), sha(data)) and etags[4] == f'"{stored.sha256}"'
    path = store.local_path(stored.stored_path)
    assert Path(path).read_bytes() == data
    assert os.stat(path).st_ino == inode and os.stat(path).st_mode & 0o777 == 0o444  # no copy was made
    assert sorted(os.listdir(upload_dir)) == ["completing", "manifest.json"]
    assert store._sequences == {}
    with pytest.raises(UploadError, match="already completed"):
        store.complete_upload(ticket.key, ticket.upload_id, etags)
    # the same bytes again, in order: one object
    again = upload(store, data, "again.bin")
    assert os.stat(store.local_path(again.stored_path)).st_ino == inode


def test_out_of_order_parts_get_files_and_complete_assembles(store):
    data = os.urandom(5 * MiB + 17)
    ticket, parts = begin(store, data, MiB)
    etags = {}
    for number in (2, 1, 4, 3, 6, 5):  # 1 is appended, then 2 is already a file: the rest are files
        writer = store.open_part(ticket.upload_id, number)
        assert isinstance(writer, AppendWriter) == (number == 1)
        with writer:
            writer.write(parts[number - 1])
            etags[number] = writer.commit()
        assert etags[number] == f'"{sha(parts[number - 1])}"'
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    assert (stored.size, stored.sha256) == (len(data), sha(data))
    assert Path(store.local_path(stored.stored_path)).read_bytes() == data
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_a_part_while_another_is_appended_gets_a_file(store):
    data = os.urandom(2 * MiB)
    ticket, parts = begin(store, data, MiB)
    first = store.open_part(ticket.upload_id, 1)
    retry = store.open_part(ticket.upload_id, 1)  # the same part again, at the same time (a client retry)
    second = store.open_part(ticket.upload_id, 2)
    assert isinstance(first, AppendWriter) and type(retry) is PartWriter and type(second) is PartWriter
    for writer, chunk in ((first, parts[0]), (retry, parts[0]), (second, parts[1])):
        with writer:
            writer.write(chunk)
            etag = writer.commit()
    stored = store.complete_upload(ticket.key, ticket.upload_id, {1: f'"{sha(parts[0])}"', 2: etag})
    assert (stored.sha256, Path(store.local_path(stored.stored_path)).read_bytes()) == (sha(data), data)


def test_a_part_sent_again_the_etag_chooses_the_bytes(store):
    data = os.urandom(3 * MiB)
    ticket, parts = begin(store, data, MiB)
    etags = {n: store.write_part(ticket.upload_id, n, chunk) for n, chunk in enumerate(parts, 1)}
    other = os.urandom(MiB // 2)
    replaced = store.write_part(ticket.upload_id, 2, other)  # already appended: a file of its own
    assert replaced == f'"{sha(other)}"'
    stored = store.complete_upload(ticket.key, ticket.upload_id, {**etags, 2: replaced})
    expected = parts[0] + other + parts[2]  # parts 1 and 3 from ``data``, 2 from its file
    assert (stored.size, stored.sha256) == (len(expected), sha(expected))
    assert Path(store.local_path(stored.stored_path)).read_bytes() == expected


def test_an_aborted_append_is_cut_and_the_part_sent_again(store, monkeypatch):
    data = os.urandom(2 * MiB + 3)
    ticket, parts = begin(store, data, MiB)
    first = store.write_part(ticket.upload_id, 1, parts[0])
    with store.open_part(ticket.upload_id, 2) as writer:  # the connection drops mid-part
        writer.write(b"garbage" * 1000)
    with store.open_part(ticket.upload_id, 2) as writer:
        assert isinstance(writer, AppendWriter)  # the next writer appends again, over the garbage
        writer.write(os.urandom(100))
    etags = {1: first, 2: store.write_part(ticket.upload_id, 2, parts[1]),
             3: store.write_part(ticket.upload_id, 3, parts[2])}
    no_rehash(monkeypatch)
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    assert (stored.sha256, Path(store.local_path(stored.stored_path)).read_bytes()) == (sha(data), data)


def test_a_refused_complete_keeps_the_fast_path(store, monkeypatch):
    data = os.urandom(2 * MiB)
    ticket, parts = begin(store, data, MiB)
    first = store.write_part(ticket.upload_id, 1, parts[0])
    with pytest.raises(UploadError, match="Part 2 was not uploaded"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: first})
    with pytest.raises(UploadError, match="ETag of part 1 does not match"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: '"' + "0" * 64 + '"', 2: first})
    second = store.write_part(ticket.upload_id, 2, parts[1])
    with pytest.raises(UploadError, match="ETag of part 2 does not match"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: f'"{sha(parts[1])}"'})
    no_rehash(monkeypatch)
    stored = store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: second})
    assert stored.sha256 == sha(data)


@pytest.mark.parametrize("later_parts_after_restart", [False, True])
def test_a_restart_loses_the_running_hash_and_complete_hashes_again(store, later_parts_after_restart):
    data = os.urandom(4 * MiB + 99)
    ticket, parts = begin(store, data, MiB)
    before = 2 if later_parts_after_restart else len(parts)
    etags = {n: store.write_part(ticket.upload_id, n, parts[n - 1]) for n in range(1, before + 1)}
    restarted = LocalStore(store.root, "test-secret")  # what the service knows of the upload is gone
    for n in range(before + 1, len(parts) + 1):
        with restarted.open_part(ticket.upload_id, n) as writer:
            assert type(writer) is PartWriter
            writer.write(parts[n - 1])
            etags[n] = writer.commit()
    stored = restarted.complete_upload(ticket.key, ticket.upload_id, etags, part_count=len(parts))
    assert (stored.size, stored.sha256) == (len(data), sha(data))
    assert Path(restarted.local_path(stored.stored_path)).read_bytes() == data
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_after_a_restart_bytes_that_do_not_match_their_records_are_refused(store):
    data = os.urandom(2 * MiB)
    ticket, parts = begin(store, data, MiB)
    etags = {n: store.write_part(ticket.upload_id, n, chunk) for n, chunk in enumerate(parts, 1)}
    upload_dir = os.path.join(store.root, "uploads", ticket.upload_id)
    with open(os.path.join(upload_dir, "data"), "r+b") as f:  # the disk lost or changed bytes
        f.seek(MiB + 10)
        f.write(b"X")
    with open(os.path.join(upload_dir, "manifest.json"), "a") as f:
        f.write("part 3 " + "a" * 64)  # a record cut short by a crash: ignored
    restarted = LocalStore(store.root, "test-secret")
    with pytest.raises(UploadError, match="part 2 do not match its ETag"):
        restarted.complete_upload(ticket.key, ticket.upload_id, etags)
    with pytest.raises(ObjectNotFound):
        restarted.stat(ticket.stored_path)
    # part 2 sent again: a file of its own, and part 1 still from ``data``
    etags[2] = restarted.write_part(ticket.upload_id, 2, parts[1])
    stored = restarted.complete_upload(ticket.key, ticket.upload_id, etags)
    assert (stored.sha256, Path(restarted.local_path(stored.stored_path)).read_bytes()) == (sha(data), data)


def test_a_part_committed_after_complete_or_purge_is_refused(store):
    data = os.urandom(2 * MiB)
    ticket, parts = begin(store, data, MiB)
    first = store.write_part(ticket.upload_id, 1, parts[0])
    late = store.open_part(ticket.upload_id, 2)
    late.write(parts[1])
    with pytest.raises(UploadError, match="Part 2 was not uploaded"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: first, 2: first})
    os.link(os.path.join(store.root, "uploads", ticket.upload_id, "manifest.json"),
            os.path.join(store.root, "uploads", ticket.upload_id, "completing"))  # a complete under way
    with pytest.raises(UploadError, match="already completed"):
        late.commit()
    late.abort()

    other, other_parts = begin(store, data, MiB, "other.bin")
    writer = store.open_part(other.upload_id, 1)
    writer.write(other_parts[0])
    time.sleep(0.01)
    assert store.purge_abandoned(0) == 2
    assert store._sequences == {}
    with pytest.raises(UploadError, match="removed"):
        writer.commit()
    writer.abort()


def test_writeback_is_started_as_parts_are_written(store, monkeypatch):
    started = []
    real = local_module.start_writeback
    monkeypatch.setattr(local_module, "start_writeback",
                        lambda fd, offset, length: (started.append((offset, length)), real(fd, offset, length)))
    step = local_module.WRITEBACK_STEP
    data = os.urandom(step + MiB)
    ticket, parts = begin(store, data, step // 2 + 5)
    etags = {n: store.write_part(ticket.upload_id, n, [chunk[i:i + MiB] for i in range(0, len(chunk), MiB)])
             for n, chunk in enumerate(parts, 1)}
    ranges = sorted(r for r in started if r[1])
    assert ranges[0][0] == 0 and sum(length for _, length in ranges) == len(data)
    assert all(a + n == b for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False))  # contiguous, each byte once
    assert store.complete_upload(ticket.key, ticket.upload_id, etags).sha256 == sha(data)


def test_http_parts_in_and_out_of_order(server):
    store = server.store
    data = os.urandom(4 * MiB + 1)
    ticket = store.begin_upload("t1/data", "mixed.bin", 3, server.url_base)
    etags = {}
    for number in (1, 3, 2):  # 1 appended, 3 early (a file), 2 appended after 1
        body = data[(number - 1) * 2 * MiB:number * 2 * MiB]
        r = requests.put(ticket.part_urls[number - 1], data=body, headers=CLI_HEADERS, timeout=30)
        assert r.status_code == 200 and r.json()["size"] == len(body), r.text
        etags[number] = r.headers["ETag"]
    assert etags[2] == f'"{sha(data[:4 * MiB])}"' and etags[3] == f'"{sha(data[4 * MiB:])}"'
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    assert stored.sha256 == sha(data)
    r = requests.get(store.download_url(stored.stored_path, "mixed.bin", server.url_base), timeout=30)
    assert r.content == data
