"""The upstream kamonohashi-cli 4.0.2, unchanged, against the platform: account and tenant commands.

Each call runs `.venv-upstream/bin/kqi` as a subprocess with its own HOME (so its
`~/.kqi/config.json` is the test's) and no stdin; what is asserted is what a user
sees (exit code, printed lines) and the state the admin API then reports.
"""

import json
import os
import re

import pytest
from conftest import unique
from upstream import Cli, require_upstream_cli
from upstream import field as _field

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="session", autouse=True)
def _upstream_installed():
    """Session scope: checked before the (session) platform starts, so a skip costs nothing."""
    require_upstream_cli()


@pytest.fixture
def cli(platform, tmp_path):
    def make(name="home") -> Cli:
        home = tmp_path / name
        home.mkdir()
        return Cli(str(home), platform.url + "/services/kqi")

    return make


@pytest.fixture(scope="module")
def admin_cli(platform, tmp_path_factory) -> Cli:
    c = Cli(str(tmp_path_factory.mktemp("admin-home")), platform.url + "/services/kqi")
    c.login("admin", platform.admin_password)
    return c


def test_login_prints_the_account_and_stores_a_working_token(platform, admin, cli):
    c = cli()
    r = c.login("admin", platform.admin_password)
    assert _field(r.stdout, "user name") == "admin"
    assert _field(r.stdout, "tenant") == "default"
    assert _field(r.stdout, "expires in") == f"{10 * 24 * 3600} seconds"
    token = _field(r.stdout, "token")
    with open(os.path.join(c.home, ".kqi", "config.json")) as f:
        config = json.load(f)
    assert config["server"] == platform.url + "/services/kqi"
    assert config["token"] == token
    assert platform.api(token).get("/account").json()["userName"] == "admin"


def test_wrong_password_exits_non_zero_and_stores_nothing(platform, cli):
    c = cli()
    r = c("account", "login", "-s", c.server, "-u", "admin", "-p", "wrong-password", ok=False)
    assert r.returncode != 0
    assert "[ERROR] 401" in r.stdout
    assert not os.path.exists(os.path.join(c.home, ".kqi", "config.json"))


def test_account_get_shows_the_selected_tenant(admin, admin_cli):
    r = admin_cli("account", "get")
    me = admin.get("/account").json()
    assert _field(r.stdout, "user name") == "admin"
    sel = me["selectedTenant"]
    assert _field(r.stdout, "selected tenant") == f"{sel['id']} {sel['displayName']}"
    assert "assigned tenant:" in r.stdout
    assert f"* {sel['id']} {sel['displayName']}" in r.stdout


def test_switch_tenant_then_account_get_shows_the_new_tenant(platform, cli, new_tenant, new_user):
    t1 = new_tenant(displayName="First tenant")
    t2 = new_tenant(displayName="Second tenant")
    user = new_user([{"id": t1["id"], "default": True}, {"id": t2["id"]}])
    c = cli()
    r = c.login(user["name"], user["password"])
    assert _field(r.stdout, "tenant") == t1["name"]
    r = c("account", "get")
    assert _field(r.stdout, "selected tenant") == f"{t1['id']} First tenant"
    assert f"* {t1['id']} First tenant" in r.stdout and f"  {t2['id']} Second tenant" in r.stdout

    r = c("account", "switch-tenant", t2["id"])
    assert _field(r.stdout, "user name") == user["name"]
    assert _field(r.stdout, "selected tenant") == f"{t2['id']} {t2['name']}"
    r = c("account", "get")
    assert _field(r.stdout, "selected tenant") == f"{t2['id']} Second tenant"
    assert f"* {t2['id']} Second tenant" in r.stdout and f"  {t1['id']} First tenant" in r.stdout


def test_tenant_list_shows_every_tenant(admin, admin_cli, new_tenant):
    t = new_tenant(displayName="Listed tenant")
    r = admin_cli("tenant", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "display_name", "storage_path"]
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert set(rows) == {str(x["id"]) for x in admin.get("/admin/tenants").json()}
    assert rows[str(t["id"])].split()[1:4] == [t["name"], "Listed", "tenant"]


def test_tenant_get_prints_its_details(admin, admin_cli, new_tenant):
    t = new_tenant(displayName="Shown tenant")
    r = admin_cli("tenant", "get", t["id"])
    assert _field(r.stdout, "id") == str(t["id"])
    assert _field(r.stdout, "name") == t["name"]
    assert _field(r.stdout, "display_name") == "Shown tenant"
    assert _field(r.stdout, "storage_id") == "1"
    assert re.search(r"^git_ids:\n  - 1$", r.stdout, re.M), r.stdout
    assert re.search(r"^registry_ids:\n  - 1$", r.stdout, re.M), r.stdout


def test_tenant_create_update_delete(admin, admin_cli):
    name = unique("cli")
    r = admin_cli("tenant", "create", "-n", name, "-dn", "Made by kqi", "-gid", 1, "-rid", 1, "-sid", 1)
    m = re.fullmatch(r"created (\d+)\n", r.stdout)
    assert m, r.stdout
    tid = int(m.group(1))
    t = admin.get(f"/admin/tenants/{tid}").json()
    assert (t["name"], t["displayName"], t["storageId"]) == (name, "Made by kqi", 1)
    assert t["gitIds"] == [1] and t["registryIds"] == [1]

    r = admin_cli("tenant", "update", tid, "-dn", "Renamed by kqi", "-gid", 1, "-rid", 1, "-sid", 1)
    assert r.stdout == f"updated {tid}\n"
    t = admin.get(f"/admin/tenants/{tid}").json()
    assert (t["name"], t["displayName"]) == (name, "Renamed by kqi")

    r = admin_cli("tenant", "delete", tid)
    assert r.stdout.splitlines()[0] == f"deleted {tid}"
    assert "container_warn_msg:" in r.stdout
    assert admin.get(f"/admin/tenants/{tid}").status_code == 404
    assert tid not in [x["id"] for x in admin.get("/admin/tenants").json()]
