"""Starting, stopping and restarting the platform: state survives, processes do not."""

import os
import re
import signal

import pytest
import requests
from conftest import unique

pytestmark = pytest.mark.platform


def test_state_survives_a_restart_and_sigterm_stops_everything(start_platform, tmp_path):
    state = str(tmp_path / "state")
    first = start_platform(state, admin_password=None)
    # no KQI_ADMIN_PASSWORD: one is generated and printed once
    printed = re.search(r"created the system admin 'admin' with password\s+(\S+)", first.log())
    assert printed, first.log()[-2000:]
    password = printed.group(1)
    admin = first.api().login("admin", password)
    name = unique("kept")
    tenant = admin.post("/admin/tenants", {"tenantName": name, "displayName": "Kept", "gitIds": [1],
                                           "registryIds": [1], "storageId": 1}).json()
    user = admin.post("/admin/users", {"name": unique("keeper"), "password": "keeper-pass-1",
                                       "tenants": [{"id": tenant["id"]}]}).json()
    user_api = first.api().login(user["name"], "keeper-pass-1")
    for _ in range(3):  # three failures toward the lockout of five
        first.api().post("/account/login", {"userName": user["name"], "password": "wrong-wrong"})

    first.stop()
    assert first.process.returncode is not None
    # nothing of the first platform is left listening
    with pytest.raises(requests.ConnectionError):
        requests.get(first.api_base + "/version", timeout=2)

    port = int(first.url.rsplit(":", 1)[1])
    second = start_platform(state, admin_password=None, port=port)
    assert "created the system admin" not in second.log().split("KQI Hub:")[-1]
    # the password is stored only hashed
    with open(os.path.join(state, "kqi.sqlite"), "rb") as f:
        assert password.encode() not in f.read()
    # the old token still works, in its tenant, and the data is there
    assert user_api.get("/tenant").json()["id"] == tenant["id"]
    assert second.api().login("admin", password).get(f"/admin/tenants/{tenant['id']}").json()["name"] == name
    # the failure count survived: two more failures lock the account
    for _ in range(2):
        second.api().post("/account/login", {"userName": user["name"], "password": "wrong-wrong"})
    r = second.api().post("/account/login", {"userName": user["name"], "password": "keeper-pass-1"})
    assert r.status_code == 401


def test_sigint_stops_hub_proxy_and_service(start_platform):
    p = start_platform()
    assert len(p.children) >= 2  # proxy and kqi service under the hub
    p.process.send_signal(signal.SIGINT)
    p.process.wait(30)
    # start_platform's teardown asserts every child process is gone
