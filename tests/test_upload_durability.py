"""Killing the service in the middle of an upload loses no registered data and registers nothing half-done."""

import hashlib
import os
import signal

import pytest
import requests
from conftest import FORM, service_pid, upload, wait_until

pytestmark = pytest.mark.platform


def test_service_killed_mid_upload(start_platform):
    p = start_platform()
    admin = p.api().login("admin", p.admin_password)
    payload = os.urandom(2 * 1024 * 1024 + 3)
    kept = upload(admin, "kept.bin", payload)
    data = admin.post("/data", {"name": "durable"}).json()
    admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "kept.bin", "storedPath": kept["storedPath"]}]})

    # half an upload: part 1 of 2 sent, then the service dies
    ticket = admin.get("/upload/parameter", params={"fileName": "half.bin", "partSum": 2, "type": "Data"}).json()
    assert requests.put(ticket["uris"][0], data=os.urandom(1024 * 1024), headers=FORM, timeout=30).status_code == 200
    old = service_pid(p)
    os.kill(old, signal.SIGKILL)

    def service_back():
        try:
            return service_pid(p) != old and admin.get("/version").status_code == 200
        except (AssertionError, requests.RequestException):
            return False

    wait_until(service_back, 60, "JupyterHub to restart the kqi service")
    files = admin.get(f"/data/{data['id']}/files", params={"withUrl": "true"}).json()
    assert [f["fileName"] for f in files] == ["kept.bin"]
    got = requests.get(files[0]["url"], timeout=30).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    # the half upload cannot be registered, and completing it without its second part is refused
    r = admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "half.bin",
                                                            "storedPath": ticket["storedPath"]}]})
    assert r.status_code == 400
    e1 = requests.put(ticket["uris"][0], data=b"again", headers=FORM, timeout=30).headers["ETag"]
    r = admin.post("/upload/complete", {"key": ticket["key"], "uploadId": ticket["uploadId"], "partETags": [f"1+{e1}"]})
    assert r.status_code == 400
