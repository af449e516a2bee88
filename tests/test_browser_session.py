"""A person's way in: the hub's login page, then the kqi service through OAuth with a cookie."""

import pytest
from conftest import hub_login

pytestmark = pytest.mark.platform


def test_wrong_password_on_the_login_page(platform):
    s = hub_login(platform, "admin", "not-the-password")
    assert "Invalid username or password" in s.login_response.text
    assert "jupyterhub-hub-login" not in s.cookies


def test_login_page_then_service_cookie_and_tenant_switch(platform, new_tenant, new_user):
    t1, t2 = new_tenant(), new_tenant()
    user = new_user([{"id": t1["id"], "default": True}, {"id": t2["id"]}])
    s = hub_login(platform, user["name"].upper(), user["password"])
    assert s.login_response.status_code == 302 and "jupyterhub-hub-login" in s.cookies
    home = s.get(platform.url + "/hub/home", timeout=10)
    assert home.status_code == 200 and user["name"] in home.text

    # the service's landing page runs the OAuth round trip and sets its cookie
    r = s.get(platform.url + "/services/kqi/", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["userName"] == user["name"] and r.json()["tenant"]["id"] == t1["id"]

    api = platform.api_base
    assert s.get(api + "/account", timeout=10).json()["selectedTenant"]["id"] == t1["id"]
    # cookie-authenticated writes must be same-origin
    r = s.put(api + "/account/selected-tenant", json={"tenantId": t2["id"]}, timeout=10)
    assert r.status_code == 403
    r = s.put(api + "/account/selected-tenant", json={"tenantId": t2["id"]}, headers={"Origin": platform.url},
              timeout=10)
    assert r.status_code == 200 and r.json()["selectedTenant"]["id"] == t2["id"]
    assert s.get(api + "/tenant", timeout=10).json()["id"] == t2["id"]
    r = s.put(api + "/account/selected-tenant", json={"tenantId": 987654}, headers={"Origin": platform.url},
              timeout=10)
    assert r.status_code == 404
