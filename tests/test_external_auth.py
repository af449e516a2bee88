"""Another JupyterHub authenticator by configuration alone: users are provisioned on first login."""

import pytest
import requests

pytestmark = pytest.mark.platform


def test_users_of_another_authenticator_are_provisioned(start_platform, tmp_path):
    profile = tmp_path / "profile.py"
    # JupyterHub's own shared-password authenticator stands in for LDAP/OAuth:
    # what matters is that the hub, not the kqi database, vouches for the user
    profile.write_text(
        "c = get_config()\n"
        "c.JupyterHub.authenticator_class = 'dummy'\n"
        "c.DummyAuthenticator.password = 'shared-secret-1'\n"
        "c.Authenticator.allow_all = True\n"
    )
    p = start_platform(extra_env={"KQI_HUB_CONFIG": str(profile)})
    r = p.api().post("/account/login", {"userName": "Erin", "password": "wrong"})
    assert r.status_code == 401
    # the failed try left no user behind in the hub
    admin = p.api().login("admin", "shared-secret-1")
    assert requests.get(p.url + "/hub/api/users/erin", headers={"Authorization": f"token {admin.token}"},
                        timeout=10).status_code == 404

    erin = p.api().login("Erin", "shared-secret-1")
    account = erin.get("/account").json()
    assert account["userName"] == "erin" and account["selectedTenant"]["name"] == "default"
    assert account["passwordChangeEnabled"] is False
    group = requests.get(p.url + "/hub/api/groups/default", headers={"Authorization": f"token {admin.token}"},
                         timeout=10).json()
    assert "erin" in group["users"]
    users = {u["name"]: u for u in admin.get("/admin/users").json()}
    assert users["erin"]["tenants"][0]["roles"][0]["name"] == "user"
