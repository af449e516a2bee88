"""Data, uploads and datasets through the v2 API on the real platform (local object store)."""

import hashlib
import os

import pytest
import requests
from conftest import FORM, unique, upload

pytestmark = pytest.mark.platform

@pytest.fixture
def member(platform, new_tenant, new_user):
    """A fresh tenant and a logged-in member of it."""
    tenant = new_tenant()
    user = new_user([{"id": tenant["id"]}])
    api = platform.api().login(user["name"], user["password"])
    api.tenant = tenant
    return api


def new_data(api, **body):
    r = api.post("/data", {"name": unique("data"), **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_data_with_files_round_trip(member):
    data = new_data(member, memo="first", tags=["cats", "v1"])
    assert data["tags"] == ["cats", "v1"] and data["isRaw"] is True
    payload = os.urandom(3 * 1024 * 1024 + 17)
    ticket = upload(member, "images.bin", payload)
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "images.bin",
                                                             "storedPath": ticket["storedPath"]}]})
    assert r.status_code == 201 and r.json()["files"][0]["fileName"] == "images.bin"
    empty = upload(member, "empty.txt", b"")
    member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "empty.txt", "storedPath": empty["storedPath"]}]})

    files = member.get(f"/data/{data['id']}/files", params={"withUrl": "true"}).json()
    assert [f["fileName"] for f in files] == ["images.bin", "empty.txt"]
    assert files[0]["fileSize"] == len(payload)
    got = requests.get(files[0]["url"], timeout=60)  # signed URL, no token
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(payload).digest()
    part = requests.get(files[0]["url"], headers={"Range": "bytes=10-19"}, timeout=60)
    assert part.status_code == 206 and part.content == payload[10:20]
    assert requests.get(files[1]["url"], timeout=10).content == b""
    details = member.get(f"/data/{data['id']}").json()
    assert details["fileNames"] == ["images.bin", "empty.txt"]
    one = member.get(f"/data/{data['id']}/files/images.bin").json()
    assert one["fileSize"] == len(payload) and one["url"]


def test_duplicate_file_name_is_409_and_nothing_registered(member):
    data = new_data(member)
    a, b = upload(member, "a.txt", b"one"), upload(member, "a.txt", b"two")
    member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "a.txt", "storedPath": a["storedPath"]}]})
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "a.txt", "storedPath": b["storedPath"]}]})
    assert r.status_code == 409
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x", "storedPath": a["storedPath"]},
                                                            {"fileName": "x", "storedPath": b["storedPath"]}]})
    assert r.status_code == 409
    assert [f["fileName"] for f in member.get(f"/data/{data['id']}/files").json()] == ["a.txt"]


def test_registering_needs_a_completed_upload_of_this_tenant(platform, member, new_tenant, new_user):
    data = new_data(member)
    r = member.get("/upload/parameter", params={"fileName": "late.bin", "partSum": 1, "type": "Data"})
    pending = r.json()
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "late.bin",
                                                             "storedPath": pending["storedPath"]}]})
    assert r.status_code == 400 and "not complete" in r.json()["message"]
    other_tenant = new_tenant()
    stranger_user = new_user([{"id": other_tenant["id"]}])
    stranger = platform.api().login(stranger_user["name"], stranger_user["password"])
    theirs = upload(stranger, "theirs.bin", b"secret bytes")
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "t.bin",
                                                             "storedPath": theirs["storedPath"]}]})
    assert r.status_code == 400 and "not issued to this tenant" in r.json()["message"]


def test_another_tenants_data_is_404(platform, member, new_tenant, new_user):
    data = new_data(member)
    other_tenant = new_tenant()
    stranger_user = new_user([{"id": other_tenant["id"]}])
    stranger = platform.api().login(stranger_user["name"], stranger_user["password"])
    for method, path in (("GET", f"/data/{data['id']}"), ("GET", f"/data/{data['id']}/files"),
                         ("PUT", f"/data/{data['id']}"), ("DELETE", f"/data/{data['id']}")):
        r = stranger.request(method, path, json={"name": "x"})
        assert r.status_code == 404, (method, path)
    assert data["id"] not in [d["id"] for d in stranger.get("/data").json()]


@pytest.mark.parametrize("name", ["a/b", "..", "bad\x00name", "tab\tname", "", "x" * 300])
def test_bad_file_names_are_refused(member, name):
    r = member.get("/upload/parameter", params={"fileName": name, "partSum": 1, "type": "Data"})
    assert r.status_code == 400 and r.json()["message"]


@pytest.mark.parametrize("params, message", [
    ({"fileName": "a", "partSum": -1, "type": "Data"}, "partSum"),
    ({"fileName": "a", "partSum": 10001, "type": "Data"}, "partSum"),
    ({"fileName": "a", "partSum": "x", "type": "Data"}, "partSum"),
    ({"fileName": "a", "partSum": 1, "type": "Nope"}, "type must be one of"),
])
def test_bad_upload_parameters(member, params, message):
    r = member.get("/upload/parameter", params=params)
    assert r.status_code == 400 and message in r.json()["message"]


def test_upload_protocol_errors(member):
    r = member.get("/upload/parameter", params={"fileName": "p.bin", "partSum": 2, "type": "Data"})
    ticket = r.json()
    uri1, uri2 = ticket["uris"]
    # forged and tampered signatures are refused before any byte is stored
    assert requests.put(uri1.replace("signature=", "signature=00"), data=b"x", headers=FORM,
                        timeout=10).status_code == 403
    assert requests.put(uri1.replace("/parts/", "/parts/x"), data=b"x", headers=FORM, timeout=10).status_code in (403, 404)
    e1 = requests.put(uri1, data=b"part one", headers=FORM, timeout=10).headers["ETag"]
    complete = {"key": ticket["key"], "uploadId": ticket["uploadId"]}
    # a missing part, a wrong ETag, a malformed list
    r = member.post("/upload/complete", {**complete, "partETags": [f"1+{e1}"]})
    assert r.status_code == 400
    e2 = requests.put(uri2, data=b"part two", headers=FORM, timeout=10).headers["ETag"]
    r = member.post("/upload/complete", {**complete, "partETags": [f"1+{e1}", '2+"deadbeef"']})
    assert r.status_code == 400
    r = member.post("/upload/complete", {**complete, "partETags": ["one+two"]})
    assert r.status_code == 400
    r = member.post("/upload/complete", {**complete, "partETags": [f"1+{e1}", f"2+{e2}"]})
    assert r.status_code == 200 and r.json()["size"] == len(b"part onepart two")
    # completing twice
    r = member.post("/upload/complete", {**complete, "partETags": [f"1+{e1}", f"2+{e2}"]})
    assert r.status_code == 409


def test_list_filters_paging_and_tags(member):
    tag = unique("tag")
    made = [new_data(member, name=f"filter-{i}", memo="alpha" if i % 2 else "beta", tags=[tag]) for i in range(5)]
    r = member.get("/data", params={"Name": "filter-", "perPage": 2, "page": 1})
    assert len(r.json()) == 2 and r.headers["X-Total-Count"] == "5"
    assert [d["name"] for d in member.get("/data", params={"Memo": "ALPHA"}).json()] == ["filter-3", "filter-1"]
    assert len(member.get("/data", params={"tag": tag}).json()) == 5
    assert member.get("/data", params={"Id": f">{made[2]['id']}"}).json()[-1]["id"] == made[3]["id"]
    assert member.get("/data", params={"Id": "abc"}).status_code == 400
    assert tag in member.get("/data/datatags").json()
    # tags: add, remove, oversize
    d = made[0]
    assert member.put(f"/data/{d['id']}/tags/extra").json()["tags"] == sorted([tag, "extra"])
    assert member.delete(f"/data/{d['id']}/tags/extra").status_code == 204
    assert member.put(f"/data/{d['id']}/tags/{'x' * 300}").status_code == 400
    assert member.post("/data", {"name": "bad", "tags": ["a,b"]}).status_code == 400
    r = member.put(f"/data/{d['id']}", {"memo": "edited"})
    assert r.json()["memo"] == "edited" and r.json()["name"] == "filter-0"


def test_datasets_by_type_flat_copy_and_lock(platform, member):
    d1, d2 = new_data(member), new_data(member)
    for d, content in ((d1, b"train"), (d2, b"valid")):
        t = upload(member, "f.txt", content)
        member.post(f"/data/{d['id']}/files", {"files": [{"fileName": "f.txt", "storedPath": t["storedPath"]}]})
    assert [t["name"] for t in member.get("/datatypes").json()] == ["training", "validation", "testing"]
    r = member.post("/datasets", {"name": "ds", "memo": "m", "entries": {"training": [{"id": d1["id"]}],
                                                                       "validation": [{"id": d2["id"]}]}})
    assert r.status_code == 201
    ds = r.json()
    details = member.get(f"/datasets/{ds['id']}").json()
    assert [e["id"] for e in details["entries"]["training"]] == [d1["id"]] and details["isLocked"] is False
    pairs = member.get(f"/datasets/{ds['id']}/pathpairs").json()
    assert {p["dataPath"] for p in pairs} == {f"training/{d1['id']}/f.txt", f"validation/{d2['id']}/f.txt"}
    files = member.get(f"/datasets/{ds['id']}/files", params={"withUrl": "true"}).json()
    training = next(e for e in files["entries"] if e["type"] == "training")
    assert requests.get(training["files"][0]["url"], timeout=10).content == b"train"

    flat = member.post("/datasets", {"name": "flat", "isFlat": True, "entries": {},
                                     "flatEntries": [{"id": d1["id"]}, {"id": d2["id"]}]}).json()
    assert {p["dataPath"] for p in member.get(f"/datasets/{flat['id']}/pathpairs").json()} == {
        f"{d1['id']}/f.txt", f"{d2['id']}/f.txt"}

    # copy = create from another's entries
    copy = member.post("/datasets", {"name": "copy", "entries": {"training": [{"id": d1["id"]}]}}).json()
    assert member.put(f"/datasets/{copy['id']}", {"name": "copy2", "entries": {"testing": [{"id": d2["id"]}]}}).status_code == 200
    assert list(member.get(f"/datasets/{copy['id']}").json()["entries"]) == ["testing"]
    # data used by a dataset cannot be deleted
    r = member.delete(f"/data/{d1['id']}")
    assert r.status_code == 409
    assert member.patch(f"/datasets/{ds['id']}", {"memo": "new memo"}).json()["memo"] == "new memo"


@pytest.mark.parametrize("body, status", [
    ({"name": "x", "entries": {"nonsense": [{"id": 1}]}}, 400),
    ({"name": "x", "entries": {"training": [1]}}, 400),
    ({"name": "x", "entries": {"training": [{"id": 99999999}]}}, 404),
    ({"entries": {}}, 400),
    ({"name": "x", "entries": []}, 400),
])
def test_bad_dataset_input(member, body, status):
    r = member.post("/datasets", body)
    assert r.status_code == status and r.json()["message"]


def test_delete_data_and_file(member):
    data = new_data(member)
    t = upload(member, "gone.txt", b"bye")
    r = member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "gone.txt", "storedPath": t["storedPath"]}]})
    file_id = r.json()["files"][0]["fileId"]
    url = member.get(f"/data/{data['id']}/files", params={"withUrl": "true"}).json()[0]["url"]
    assert member.delete(f"/data/{data['id']}/files/{file_id}").status_code == 204
    assert requests.get(url, timeout=10).status_code == 404
    assert member.delete(f"/data/{data['id']}").status_code == 204
    assert member.get(f"/data/{data['id']}").status_code == 404
