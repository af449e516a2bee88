"""Login through the hub, tenant-bound tokens, switch-tenant, lockout, password changes."""

import pytest
import requests
from conftest import Api

pytestmark = pytest.mark.platform


def test_login_answers_the_upstream_shape(platform, admin):
    r = platform.api().post("/account/login", {"userName": "ADMIN", "password": platform.admin_password})
    assert r.status_code == 200
    body = r.json()
    assert {"token", "userName", "tenantId", "tenantName", "expiresIn"} <= set(body)
    assert body["userName"] == "admin"
    assert body["tenantName"] == "default"
    assert body["expiresIn"] == 10 * 24 * 3600


def test_login_token_is_a_hub_token(platform, admin):
    r = requests.get(platform.url + "/hub/api/user", headers={"Authorization": f"token {admin.token}"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["name"] == "admin"


def test_wrong_password_is_401_json(platform):
    r = platform.api().post("/account/login", {"userName": "admin", "password": "nope-nope"})
    assert r.status_code == 401
    assert r.json()["status"] == 401
    assert "password" in r.json()["message"]


def test_no_token_is_401_and_garbage_token_is_401(platform):
    r = platform.api().get("/account")
    assert r.status_code == 401 and r.json()["status"] == 401
    r = platform.api("not-a-token").get("/account")
    assert r.status_code == 401


def test_two_tokens_in_two_tenants(platform, admin, new_tenant, new_user):
    t1, t2 = new_tenant(), new_tenant()
    user = new_user([{"id": t1["id"], "default": True}, {"id": t2["id"]}])
    api = platform.api()
    a = api.login(user["name"], user["password"])
    b = api.login(user["name"], user["password"], tenantId=t2["id"])
    assert a.get("/tenant").json()["id"] == t1["id"]
    assert b.get("/tenant").json()["id"] == t2["id"]
    # switch-tenant returns a new token; the old one keeps its tenant
    r = a.post(f"/account/tenants/{t2['id']}/token", {})
    assert r.status_code == 200
    c = Api(api.base, r.json()["token"])
    assert r.json()["tenantId"] == t2["id"]
    assert c.get("/account").json()["selectedTenant"]["id"] == t2["id"]
    assert a.get("/account").json()["selectedTenant"]["id"] == t1["id"]


def test_switch_to_foreign_tenant_is_404(platform, new_tenant, new_user):
    t1, other = new_tenant(), new_tenant()
    user = new_user([{"id": t1["id"]}])
    a = platform.api().login(user["name"], user["password"])
    assert a.post(f"/account/tenants/{other['id']}/token", {}).status_code == 404
    r = platform.api().post("/account/login", {"userName": user["name"], "password": user["password"],
                                               "tenantId": other["id"]})
    assert r.status_code == 404
