"""The v2 admin API against the real platform: tenants mirrored as hub groups, users, roles,
endpoints, quotas, partitions and nodes, and the JSON errors of bad input."""

import pytest
import requests
from conftest import unique

pytestmark = pytest.mark.platform


def hub_group(platform, admin, name):
    r = requests.get(f"{platform.url}/hub/api/groups/{name}", headers={"Authorization": f"token {admin.token}"},
                     timeout=10)
    return r.json() if r.status_code == 200 else None


def test_defaults_of_the_embedded_platform(admin):
    assert [g["name"] for g in admin.get("/admin/git/endpoints").json()][:1] == ["GitHub"]
    assert admin.get("/admin/registry/endpoints").json()[0]["id"] == 1
    storage = admin.get("/admin/storage/endpoints/1").json()
    assert storage["kind"] == "local" and storage["secretKey"] is None
    nodes = admin.get("/tenant/nodes").json()
    assert len(nodes) == 1 and nodes[0]["allocatableCpu"] >= 1 and nodes[0]["allocatableMemory"] >= 1
    assert admin.get("/tenant/partitions").json() == ["default"]
    roles = {r["id"]: r for r in admin.get("/admin/roles").json()}
    assert roles[1]["name"] == "admin" and roles[1]["isSystemRole"]
    assert {roles[2]["name"], roles[3]["name"]} == {"user", "manager"}


def test_tenant_lifecycle_is_mirrored_as_a_hub_group(platform, admin, new_user):
    name = unique("lab")
    r = admin.post("/admin/tenants", {"tenantName": name, "displayName": "Lab", "gitIds": [1],
                                      "registryIds": [1], "storageId": 1, "availableInfiniteTimeNotebook": True})
    assert r.status_code == 201
    tenant = r.json()
    assert tenant["name"] == name and isinstance(tenant["id"], int)
    group = hub_group(platform, admin, name)
    assert group["users"] == [] and group["properties"]["kqi_tenant_id"] == tenant["id"]

    user = new_user([{"id": tenant["id"], "default": True, "roles": [2]}])
    assert hub_group(platform, admin, name)["users"] == [user["name"]]

    details = admin.get(f"/admin/tenants/{tenant['id']}").json()
    assert details["gitIds"] == [1] and details["defaultGitId"] == 1 and details["storageId"] == 1
    assert details["availableInfiniteTimeNotebook"] is True

    r = admin.put(f"/admin/tenants/{tenant['id']}", {"displayName": "Lab 2", "gitIds": [1], "registryIds": [1],
                                                      "storageId": 1})
    assert r.status_code == 200 and r.json()["displayName"] == "Lab 2"
    assert hub_group(platform, admin, name)["properties"]["display_name"] == "Lab 2"

    r = admin.delete(f"/admin/tenants/{tenant['id']}")
    assert r.status_code == 200 and r.json() == {"containerWarnMsg": None}
    assert hub_group(platform, admin, name) is None
    assert admin.get(f"/admin/tenants/{tenant['id']}").status_code == 404


def test_user_create_edit_delete_writes_both_sides(platform, admin, new_tenant):
    t1, t2 = new_tenant(), new_tenant()
    name = unique("Alice")
    r = admin.post("/admin/users", {"name": name, "password": "alice-pass-1", "systemRoles": [],
                                    "tenants": [{"id": t1["id"], "default": True, "roles": [2, 3]}]})
    assert r.status_code == 201
    user = r.json()
    assert user["name"] == name.lower()
    assert [t["id"] for t in user["tenants"]] == [t1["id"]]
    assert {r["id"] for r in user["tenants"][0]["roles"]} == {2, 3}
    assert hub_group(platform, admin, t1["name"])["users"] == [name.lower()]

    # move to t2 and make admin: both groups and the hub admin flag follow
    r = admin.put(f"/admin/users/{user['id']}", {"systemRoles": [1], "tenants": [{"id": t2["id"]}]})
    assert r.status_code == 200
    assert [s["id"] for s in r.json()["systemRoles"]] == [1]
    assert hub_group(platform, admin, t1["name"])["users"] == []
    assert hub_group(platform, admin, t2["name"])["users"] == [name.lower()]
    hub_user = requests.get(f"{platform.url}/hub/api/users/{name.lower()}",
                            headers={"Authorization": f"token {admin.token}"}, timeout=10).json()
    assert hub_user["admin"] is True

    # the new account logs in (case-insensitively) and sees its tenant
    api = platform.api().login(name.upper(), "alice-pass-1")
    assert api.get("/account").json()["selectedTenant"]["id"] == t2["id"]

    assert admin.delete(f"/admin/users/{user['id']}").status_code == 204
    assert admin.get(f"/admin/users/{user['id']}").status_code == 404
    assert api.get("/account").status_code == 401
    r = requests.get(f"{platform.url}/hub/api/users/{name.lower()}",
                     headers={"Authorization": f"token {admin.token}"}, timeout=10)
    assert r.status_code == 404


def test_plain_user_is_403_on_admin_endpoints(platform, new_tenant, new_user):
    t = new_tenant()
    user = new_user([{"id": t["id"]}])
    api = platform.api().login(user["name"], user["password"])
    for path in ("/admin/tenants", "/admin/users", "/admin/roles", "/admin/quotas", "/admin/nodes",
                 "/admin/git/endpoints", "/admin/storage/endpoints"):
        r = api.get(path)
        assert r.status_code == 403, path
        assert r.json()["status"] == 403
    assert api.post("/admin/tenants", {"tenantName": "x"}).status_code == 403
    # but their own tenant's views work
    assert api.get("/tenant").json()["id"] == t["id"]
    assert api.get("/tenant/quota").json()["tenantId"] == t["id"]


@pytest.mark.parametrize(
    "body, message",
    [
        (None, "must be a JSON object"),
        ({"displayName": "x", "gitIds": [1], "registryIds": [1], "storageId": 1}, "Missing field tenantName"),
        ({"tenantName": "Bad Name", "displayName": "x", "gitIds": [1], "registryIds": [1], "storageId": 1},
         "tenantName must match"),
        ({"tenantName": "ok-name", "displayName": "x", "gitIds": "1", "registryIds": [1], "storageId": 1},
         "gitIds must be a list of integers"),
        ({"tenantName": "ok-name", "displayName": "x", "gitIds": [99], "registryIds": [1], "storageId": 1},
         "Git endpoint 99 does not exist"),
        ({"tenantName": "ok-name", "displayName": "x", "gitIds": [1], "registryIds": [1], "storageId": "1"},
         "storageId must be an integer"),
        ({"tenantName": "ok-name", "displayName": "x", "gitIds": [1], "registryIds": [1], "storageId": 1,
          "defaultGitId": 5}, "defaultGitId must be one of gitIds"),
    ],
)
def test_bad_tenant_input_is_400_with_a_message(admin, body, message):
    r = admin.post("/admin/tenants", body)
    assert r.status_code == 400
    assert r.json()["status"] == 400 and message in r.json()["message"]
    assert not [t for t in admin.get("/admin/tenants").json() if t["name"] == "ok-name"]


def test_malformed_json_and_unknown_ids(admin):
    r = admin.request("POST", "/admin/tenants", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "Invalid JSON" in r.json()["message"]
    assert admin.get("/admin/tenants/999999").status_code == 404
    assert admin.get("/admin/tenants/abc").status_code == 400
    assert admin.get("/admin/users/999999").json()["status"] == 404
    r = admin.get("/no/such/endpoint")
    assert r.status_code == 404 and r.json()["status"] == 404


def test_duplicate_names_are_409(admin, new_tenant, new_user):
    t = new_tenant()
    r = admin.post("/admin/tenants", {"tenantName": t["name"], "displayName": "x", "gitIds": [1],
                                      "registryIds": [1], "storageId": 1})
    assert r.status_code == 409
    u = new_user([{"id": t["id"]}])
    r = admin.post("/admin/users", {"name": u["name"].upper(), "password": "another-pass", "tenants": [{"id": t["id"]}]})
    assert r.status_code == 409


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "bob smith", "password": "long-enough", "tenants": [{"id": 1}]}, "name must match"),
        ({"name": "bob", "password": "short", "tenants": [{"id": 1}]}, "at least 8"),
        ({"name": "bob", "password": "long-enough", "tenants": []}, "at least one tenant"),
        ({"name": "bob", "password": "long-enough", "tenants": [{"id": 424242}]}, "does not exist"),
        ({"name": "bob", "password": "long-enough", "tenants": [{"id": 1, "roles": [1]}]}, "not a role of tenant"),
        ({"name": "bob", "password": "long-enough", "systemRoles": [2], "tenants": [{"id": 1}]}, "not a system role"),
        ({"name": "bob", "password": 12345678, "tenants": [{"id": 1}]}, "password must be a string"),
    ],
)
def test_bad_user_input_is_400(admin, body, message):
    r = admin.post("/admin/users", body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert "bob" not in [u["name"] for u in admin.get("/admin/users").json()]


def test_admin_password_reset_takes_a_bare_string_and_revokes_tokens(platform, admin, new_tenant, new_user):
    t = new_tenant()
    user = new_user([{"id": t["id"]}])
    old = platform.api().login(user["name"], user["password"])
    assert old.get("/account").status_code == 200
    r = admin.put(f"/admin/users/{user['id']}/password", "a-brand-new-pass")
    assert r.status_code == 204
    assert old.get("/account").status_code == 401
    assert platform.api().post("/account/login", {"userName": user["name"], "password": user["password"]}).status_code == 401
    platform.api().login(user["name"], "a-brand-new-pass")
    assert admin.put(f"/admin/users/{user['id']}/password", {"password": "x"}).status_code == 400


def test_user_changes_own_password_and_old_tokens_stop(platform, new_tenant, new_user):
    t = new_tenant()
    user = new_user([{"id": t["id"]}])
    api = platform.api().login(user["name"], user["password"])
    other = platform.api().login(user["name"], user["password"])
    r = api.put("/account/password", {"currentPassword": "wrong-one", "newPassword": "next-pass-456"})
    assert r.status_code == 400
    r = api.put("/account/password", {"currentPassword": user["password"], "newPassword": "next-pass-456"})
    assert r.status_code == 204
    assert api.get("/account").status_code == 401 and other.get("/account").status_code == 401
    platform.api().login(user["name"], "next-pass-456")


def test_lockout_after_repeated_failures(platform, new_tenant, new_user):
    t = new_tenant()
    user = new_user([{"id": t["id"]}])
    api = platform.api()
    for _ in range(5):
        assert api.post("/account/login", {"userName": user["name"], "password": "bad-bad-bad"}).status_code == 401
    # the right password is refused while locked
    r = api.post("/account/login", {"userName": user["name"], "password": user["password"]})
    assert r.status_code == 401


def test_quotas(platform, admin, new_tenant, new_user):
    t = new_tenant()
    r = admin.post("/admin/quotas", [{"tenantId": t["id"], "cpu": 4, "memory": 16, "gpu": 0}])
    assert r.status_code == 200
    mine = next(q for q in r.json() if q["tenantId"] == t["id"])
    assert (mine["cpu"], mine["memory"], mine["gpu"]) == (4, 16, 0)
    user = new_user([{"id": t["id"]}])
    api = platform.api().login(user["name"], user["password"])
    assert api.get("/tenant/quota").json()["cpu"] == 4
    assert hub_group(platform, admin, t["name"])["properties"]["quota"] == {"cpu": 4, "memory": 16, "gpu": 0}
    # omitted values are kept; negative ones refused with nothing changed
    admin.post("/admin/quotas", [{"tenantId": t["id"], "gpu": 2}])
    assert api.get("/tenant/quota").json()["cpu"] == 4
    r = admin.post("/admin/quotas", [{"tenantId": t["id"], "cpu": 1}, {"tenantId": t["id"], "memory": -1}])
    assert r.status_code == 400
    assert api.get("/tenant/quota").json()["cpu"] == 4
    assert admin.post("/admin/quotas", {"tenantId": t["id"]}).status_code == 400


def test_nodes_and_partitions(platform, admin, new_tenant, new_user):
    t = new_tenant()
    name = unique("gpu-node")
    r = admin.post("/admin/nodes", {"name": name, "partition": "gpu", "accessLevel": 1,
                                    "assignedTenantIds": [t["id"]], "cpu": 8, "memory": 64, "gpu": 2})
    assert r.status_code == 201
    node = r.json()
    user = new_user([{"id": t["id"]}])
    api = platform.api().login(user["name"], user["password"])
    assert "gpu" in api.get("/tenant/partitions").json()
    assert any(n["name"] == name and n["allocatableGpu"] == 2 for n in api.get("/tenant/nodes").json())
    assert "gpu" not in admin.get("/tenant/partitions").json()  # private to t
    assert admin.get(f"/admin/nodes/{node['id']}").json()["assignedTenants"][0]["id"] == t["id"]
    assert admin.post("/admin/nodes", {"name": "bad name", "accessLevel": 2}).status_code == 400
    assert admin.post("/admin/nodes", {"name": name, "accessLevel": 2}).status_code == 409
    r = admin.get("/admin/nodes", params={"perPage": 1, "page": 1})
    assert len(r.json()) == 1 and int(r.headers["X-Total-Count"]) >= 2
    assert admin.delete(f"/admin/nodes/{node['id']}").status_code == 204


def test_endpoints_crud_and_in_use(admin, new_tenant):
    r = admin.post("/admin/git/endpoints", {"name": "local git", "serviceType": 0,
                                            "repositoryUrl": "file:///srv/git", "apiUrl": "file:///srv/git"})
    assert r.status_code == 201
    git = r.json()
    assert git["serviceTypeName"] == "None"
    assert admin.post("/admin/git/endpoints", {"name": "x", "serviceType": 0, "repositoryUrl": "-oProxyCommand=x",
                                               "apiUrl": "http://x"}).status_code == 400
    assert admin.post("/admin/git/endpoints", {"name": "x", "serviceType": 0, "repositoryUrl": "ftp://x",
                                               "apiUrl": "http://x"}).status_code == 400
    t = new_tenant(gitIds=[1, git["id"]], defaultGitId=git["id"])
    assert admin.delete(f"/admin/git/endpoints/{git['id']}").status_code == 409
    admin.delete(f"/admin/tenants/{t['id']}")
    assert admin.delete(f"/admin/git/endpoints/{git['id']}").status_code == 204

    r = admin.post("/admin/storage/endpoints", {"name": "minio", "serverUrl": "http://127.0.0.1:9000",
                                                "accessKey": "AK", "secretKey": "very-secret-key",
                                                "nfsServer": "", "nfsRoot": ""})
    assert r.status_code == 201 and "very-secret-key" not in r.text
    details = admin.get(f"/admin/storage/endpoints/{r.json()['id']}")
    assert details.json()["accessKey"] == "AK" and "very-secret-key" not in details.text

    r = admin.post("/admin/registry/endpoints", {"name": "harbor", "host": "harbor.example", "portNo": 443,
                                                 "serviceType": 4, "projectName": "ml",
                                                 "apiUrl": "https://harbor.example/api",
                                                 "registryUrl": "https://harbor.example"})
    assert r.status_code == 201 and r.json()["registryPath"] == "harbor.example/ml"
    assert admin.get("/admin/git/types").json()[0] == {"id": 0, "name": "None"}


def test_git_and_registry_tokens_are_per_user_and_encrypted(platform, admin, new_tenant, new_user):
    t = new_tenant()
    alice, bob = new_user([{"id": t["id"]}]), new_user([{"id": t["id"]}])
    a = platform.api().login(alice["name"], alice["password"])
    b = platform.api().login(bob["name"], bob["password"])
    r = a.put("/account/gits", {"id": 1, "token": "ghp_alice_secret"})
    assert r.status_code == 200 and r.json()["token"] == "ghp_alice_secret"
    assert a.get("/account/gits").json()["gits"][0]["token"] == "ghp_alice_secret"
    assert b.get("/account/gits").json()["gits"][0]["token"] is None
    a.put("/account/registries", {"id": 1, "userName": "alice", "password": "reg-secret"})
    assert a.get("/account/registries").json()["registries"][0]["password"] == "reg-secret"
    assert a.put("/account/gits", {"id": 999, "token": "x"}).status_code == 404
    # at rest the database holds neither secret in clear
    with open(platform.state_dir + "/kqi.sqlite", "rb") as f:
        raw = f.read()
    assert b"ghp_alice_secret" not in raw and b"reg-secret" not in raw
    assert "ghp_alice_secret" not in platform.log()


def test_tenant_users_view_and_manager_role(platform, admin, new_tenant, new_user):
    t, other = new_tenant(), new_tenant()
    manager = new_user([{"id": t["id"], "roles": [2, 3]}])
    member = new_user([{"id": t["id"], "roles": [2]}, {"id": other["id"], "default": True}])
    m = platform.api().login(manager["name"], manager["password"])
    names = [u["name"] for u in m.get("/tenant/users").json()]
    assert names == sorted(names, key=lambda n: [manager["name"], member["name"]].index(n))
    assert m.put(f"/tenant/users/{member['id']}/roles", [2, 3]).status_code == 200
    plain = platform.api().login(member["name"], member["password"], tenantId=other["id"])
    assert plain.delete(f"/tenant/users/{manager['id']}").status_code in (403, 404)
    assert m.delete(f"/tenant/users/{member['id']}").status_code == 204
    assert hub_group(platform, admin, t["name"])["users"] == [manager["name"]]


def test_version_needs_no_token(platform):
    r = platform.api().get("/version")
    assert r.status_code == 200 and r.json()["version"]
