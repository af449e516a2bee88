"""The S3 object store against a real SeaweedFS: presigned part PUTs, complete, presigned downloads.

Parts are PUT to the presigned URLs as the upstream CLI sends them (a bare
HTTP client, ``Content-Type: application/x-www-form-urlencoded``). S3 wants
parts other than the last to be at least 5 MiB.
"""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from kqi_services.storage.base import ObjectNotFound, UploadError

CLI_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture(scope="module")
def store(s3_server):
    return s3_server.store("kqi-" + uuid.uuid4().hex[:8])


def put_parts(urls: list[str], data: bytes, part_size: int = PART) -> dict[int, str]:
    etags = {}
    for number, url in enumerate(urls, 1):
        r = requests.put(url, data=data[(number - 1) * part_size:number * part_size], headers=CLI_HEADERS,
                         timeout=60)
        assert r.status_code == 200, r.text
        etags[number] = r.headers["ETag"]
    return etags


def test_bucket_is_created_on_first_upload(s3_server):
    fresh = s3_server.store("kqi-" + uuid.uuid4().hex[:8])
    ticket = fresh.begin_upload("t1/data", "a.txt", 0, "http://unused")
    assert fresh.client.head_bucket(Bucket=fresh.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert fresh.complete_upload(ticket.key, ticket.upload_id, {}).size == 0


def test_multipart_upload_and_download(store):
    data = os.urandom(2 * PART + 12345)
    ticket = store.begin_upload("t1/data", "résumé 1.bin", 3, "http://unused")
    assert ticket.key == ticket.stored_path and ticket.stored_path.endswith("/résumé 1.bin")
    assert all(url.startswith(store.client.meta.endpoint_url + f"/{store.bucket}/") for url in ticket.part_urls)
    etags = put_parts(ticket.part_urls, data)
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags, part_count=3)
    assert (stored.stored_path, stored.size, stored.sha256) == (ticket.stored_path, len(data), None)
    assert store.stat(ticket.stored_path) == stored
    head = store.client.head_object(Bucket=store.bucket, Key=ticket.key)
    assert head["ContentType"] == "application/octet-stream"  # not the parts' form type

    url = store.download_url(stored.stored_path, "résumé 1.bin", "http://unused")
    r = requests.get(url, timeout=60)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-Disposition"] == \
        "attachment; filename=\"r_sum_ 1.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.bin"
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=60)
    assert (r.status_code, r.content) == (206, data[100:200])
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"


def test_empty_file(store):
    ticket = store.begin_upload("t1/data", "empty.txt", 0, "http://unused")
    assert ticket.part_urls == []
    assert store.complete_upload(ticket.key, ticket.upload_id, {}, part_count=0).size == 0
    r = requests.get(store.download_url(ticket.stored_path, "empty.txt", "http://unused"), timeout=60)
    assert (r.status_code, r.content) == (200, b"")
    with pytest.raises(UploadError, match="already completed"):
        store.complete_upload(ticket.key, ticket.upload_id, {})


def test_complete_refuses_missing_parts_wrong_etags_and_a_second_complete(store):
    data = os.urandom(PART + 10)
    ticket = store.begin_upload("t1/data", "f.bin", 2, "http://unused")
    etags = put_parts(ticket.part_urls[:1], data)
    with pytest.raises(UploadError, match="Part 2 was not uploaded"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: etags[1], 2: etags[1]})
    etags = put_parts(ticket.part_urls, data)
    with pytest.raises(UploadError, match="ETag of part 2 does not match"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: etags[1], 2: etags[1]})
    with pytest.raises(UploadError, match="2 parts"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: etags[1]}, part_count=2)
    with pytest.raises(UploadError, match="parts 1..2"):
        store.complete_upload(ticket.key, ticket.upload_id, {1: etags[1], 3: etags[2]})
    with pytest.raises(ObjectNotFound):
        store.stat(ticket.stored_path)
    stored = store.complete_upload(ticket.key, ticket.upload_id, {1: etags[1].strip('"'), 2: etags[2].upper()})
    assert stored.size == len(data)
    with pytest.raises(UploadError, match="already completed"):
        store.complete_upload(ticket.key, ticket.upload_id, etags)


def test_expired_and_tampered_urls_are_refused(store):
    ticket = store.begin_upload("t1/data", "f.txt", 1, "http://unused", expires_in=1)
    etags = put_parts(ticket.part_urls, b"hello")
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    url = store.download_url(stored.stored_path, "f.txt", "http://unused", expires_in=1)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert requests.get(tampered, timeout=60).status_code == 403
    other = store.begin_upload("t1/data", "g.txt", 1, "http://unused", expires_in=1)
    time.sleep(2.1)
    assert requests.get(url, timeout=60).status_code == 403
    r = requests.put(other.part_urls[0], data=b"late", headers=CLI_HEADERS, timeout=60)
    assert r.status_code == 403 and b"expired" in r.content


def test_delete(store):
    ticket = store.begin_upload("t1/data", "gone.txt", 1, "http://unused")
    store.complete_upload(ticket.key, ticket.upload_id, put_parts(ticket.part_urls, b"bytes"))
    store.delete(ticket.stored_path)
    with pytest.raises(ObjectNotFound):
        store.stat(ticket.stored_path)
    store.delete(ticket.stored_path)  # already gone: nothing to do


def test_purge_abandoned_uploads(s3_server):
    own = s3_server.store("kqi-" + uuid.uuid4().hex[:8])
    assert own.purge_abandoned(0) == 0  # no bucket yet
    done = own.begin_upload("t1/data", "done.txt", 1, "http://unused")
    own.complete_upload(done.key, done.upload_id, put_parts(done.part_urls, b"done"))
    abandoned = own.begin_upload("t1/data", "open.bin", 2, "http://unused")
    put_parts(abandoned.part_urls[:1], b"part")
    own.begin_upload("t1/data", "never.txt", 0, "http://unused")
    assert own.purge_abandoned(3600) == 0
    time.sleep(1.1)  # S3 keeps Initiated in seconds
    assert own.purge_abandoned(0) == 2
    assert own.client.list_multipart_uploads(Bucket=own.bucket).get("Uploads", []) == []
    with pytest.raises(UploadError, match="unknown or already completed"):
        own.complete_upload(abandoned.key, abandoned.upload_id, {1: '"x"', 2: '"y"'})
    assert own.stat(done.stored_path).size == 4
