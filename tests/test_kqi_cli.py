"""Our ``kqi`` CLI against the real platform, run as a user runs it (a subprocess with its own HOME).

What is asserted is what a user sees: exit codes, printed lines, ``--json``
parsed, files downloaded byte for byte, a followed log ending with the status.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import unique

pytestmark = pytest.mark.platform

KQI = os.path.join(os.path.dirname(sys.executable), "kqi")


class Kqi:
    """One user's ``kqi``: a HOME (so a ~/.kqi/config.json) of its own, and optional KQI_* variables."""

    def __init__(self, home, **env):
        self.home = str(home)
        os.makedirs(self.home, exist_ok=True)
        self.env = env

    def __call__(self, *args, ok=True, input=None, timeout=120):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KQI_", "JUPYTERHUB_"))}
        env.update(HOME=self.home, NO_PROXY="*", no_proxy="*", **self.env)
        r = subprocess.run([KQI, *map(str, args)], env=env, input=input, capture_output=True, text=True,
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if ok:
            assert r.returncode == 0, f"kqi {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout}{r.stderr}"
        return r

    def json(self, *args):
        return json.loads(self(*args, "--json").stdout)


def field(out: str, key: str) -> str:
    for line in out.splitlines():
        if line.startswith(key + ":"):
            return line[len(key) + 1:].strip()
    raise AssertionError(f"no {key!r} in:\n{out}")


@pytest.fixture
def member(platform, new_tenant, new_user, tmp_path):
    """A fresh tenant, a member, and their ``kqi`` logged in (``account login``)."""
    tenant = new_tenant()
    user = new_user([{"id": tenant["id"]}])
    kqi = Kqi(tmp_path / "home")
    r = kqi("account", "login", "-s", platform.url + "/services/kqi/", "-u", user["name"], "-p", user["password"])
    assert field(r.stdout, "user name") == user["name"]
    assert field(r.stdout, "tenant") == tenant["name"]
    kqi.user, kqi.tenant = user, tenant
    return kqi


@pytest.fixture
def lab_kqi(platform, lab, tmp_path):  # noqa: F811
    """The ``lab`` member's ``kqi`` with no config file: KQI_SERVER and KQI_TOKEN, as inside a run or a notebook."""
    kqi = Kqi(tmp_path / "home", KQI_SERVER=platform.url + "/services/kqi", KQI_TOKEN=lab["api"].token)
    kqi.lab = lab
    return kqi


def created(r) -> int:
    """The id of ``created N``, the last line a ``create`` prints."""
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("created "), r.stdout
    return int(line.split()[1])


def test_login_stores_the_upstream_config_and_errors_exit_non_zero(platform, member, tmp_path):
    with open(os.path.join(member.home, ".kqi", "config.json")) as f:
        config = json.load(f)
    assert config["server"] == platform.url + "/services/kqi" and config["token"]
    assert platform.api(config["token"]).get("/account").json()["userName"] == member.user["name"]
    me = member.json("account", "get")
    assert me["selectedTenant"]["id"] == member.tenant["id"]
    out = member("account", "get").stdout
    assert field(out, "selected tenant") == f"{member.tenant['id']} {member.tenant['displayName']}"

    stranger = Kqi(tmp_path / "stranger")
    r = stranger("account", "login", "-s", platform.url + "/services/kqi", "-u", member.user["name"],
                 "-p", "wrong-password", ok=False)
    assert r.returncode == 1 and "[ERROR] 401" in r.stderr and "Invalid user name or password" in r.stderr
    assert not os.path.exists(os.path.join(stranger.home, ".kqi", "config.json"))
    r = stranger("data", "list", ok=False)
    assert r.returncode == 1 and "kqi account login" in r.stderr
    r = member("data", "get", "987654321", ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr and "987654321" in r.stderr
    r = member("data", "get", "not-a-number", ok=False)
    assert r.returncode == 2 and "not a valid integer" in r.stderr


def test_password_prompt_and_switch_tenant(platform, new_tenant, new_user, tmp_path):
    first, second = new_tenant(), new_tenant()
    user = new_user([{"id": first["id"]}, {"id": second["id"]}])
    kqi = Kqi(tmp_path / "home")
    kqi("account", "login", "-s", platform.url + "/services/kqi", input=f"{user['name']}\n{user['password']}\n")
    r = kqi("account", "switch-tenant", second["id"])
    assert field(r.stdout, "selected tenant") == f"{second['id']} {second['name']}"
    assert kqi.json("account", "get")["selectedTenant"]["id"] == second["id"]


def test_data_round_trip_with_json_output(member, tmp_path):
    payload = os.urandom(17 * 1024 * 1024 + 5)  # two parts
    (tmp_path / "big.bin").write_bytes(payload)
    (tmp_path / "note.txt").write_text("hello")
    name = unique("data")
    r = member("data", "create", "-n", name, "-f", tmp_path / "big.bin", "-f", tmp_path / "note.txt",
               "-m", "memo one", "-t", "cats", "-t", "v1")
    assert r.stdout.startswith("created ")
    data_id = int(r.stdout.split()[1])
    assert "big.bin" in r.stderr and "%" in r.stderr  # tqdm bars on stderr

    table = member("data", "list", "--name", name).stdout.splitlines()
    assert table[0].split() == ["id", "name", "created_at", "created_by", "memo", "tags"]
    assert table[1].split()[:2] == [str(data_id), name] and "cats,v1" in table[1]
    listed = member.json("data", "list", "--tag", "cats", "--name", name)
    assert [d["id"] for d in listed] == [data_id] and listed[0]["tags"] == ["cats", "v1"]
    details = member.json("data", "get", data_id)
    assert details["fileNames"] == ["big.bin", "note.txt"]
    assert field(member("data", "get", data_id).stdout, "memo") == "memo one"
    files = member.json("data", "list-files", data_id)
    assert [f["fileName"] for f in files] == ["big.bin", "note.txt"]

    out = tmp_path / "out"
    out.mkdir()
    member("data", "download-files", data_id, "-d", out)
    assert (out / "big.bin").read_bytes() == payload and (out / "note.txt").read_text() == "hello"

    assert member("data", "update", data_id, "-m", "memo two").stdout.strip() == f"updated {data_id}"
    edited = member.json("data", "get", data_id)
    assert edited["memo"] == "memo two" and edited["tags"] == ["cats", "v1"] and edited["name"] == name
    note = next(f for f in files if f["fileName"] == "note.txt")
    assert member("data", "delete-file", data_id, "-f", note["fileId"]).stdout.strip() == f"deleted {note['fileId']}"
    member("data", "upload-files", data_id, "-f", tmp_path / "note.txt")
    assert [f["fileName"] for f in member.json("data", "list-files", data_id)] == ["big.bin", "note.txt"]

    body = tmp_path / "ds.json"
    body.write_text(json.dumps({"name": "ds", "memo": "m", "entries": {"training": [{"id": data_id}]}}))
    r = member("dataset", "create", "-f", body)
    ds_id = int(r.stdout.split()[1])
    assert [d["id"] for d in member.json("dataset", "list")] == [ds_id]
    assert member.json("dataset", "get", ds_id)["entries"]["training"][0]["id"] == data_id
    pairs = member("dataset", "list-path-pairs", ds_id).stdout.splitlines()
    assert f"training/{data_id}/big.bin" in pairs
    ds_out = tmp_path / "ds-out"
    ds_out.mkdir()
    member("dataset", "download-files", ds_id, "-d", ds_out, "-t", "training")
    assert (ds_out / "training" / str(data_id) / "big.bin").read_bytes() == payload
    assert member("dataset", "list-data-types").stdout.split() == ["training", "validation", "testing"]
    r = member("data", "delete", data_id, ok=False)  # used by the dataset
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr
    assert member("dataset", "delete", ds_id).stdout.strip() == f"deleted {ds_id}"
    assert member("data", "delete", data_id).stdout.strip() == f"deleted {data_id}"


def test_training_create_logs_follow_and_outputs(lab_kqi, tmp_path):
    kqi, lab = lab_kqi, lab_kqi.lab
    r = kqi("training", "create", "-n", unique("run")[:30], "-rim", "python", "-rt", "3.11",
            "-d", lab["dataset"]["id"], "-gid", lab["git"]["id"], "-go", "kqi", "-gr", "model",
            "-c", 1, "-mem", 1, "-g", 0, "-t", "cli", "-o", "MY_OPTION", "42",
            "-e", "echo start $MY_OPTION; sleep 1; mkdir -p '/kqi/output/sub dir'; "
                  "echo result > '/kqi/output/sub dir/r #1.txt'; echo end")
    run_id = created(r)
    r = kqi("training", "logs", "-f", run_id)
    assert "start 42\n" in r.stdout and r.stdout.rstrip().endswith("end")
    assert r.stderr.strip().splitlines()[-1] == "status: Completed"
    assert "start 42" in kqi("training", "logs", run_id).stdout

    run = kqi.json("training", "get", run_id)
    assert run["status"] == "Completed" and run["tags"] == ["cli"]
    assert field(kqi("training", "get", run_id).stdout, "status") == "Completed"  # upstream's key: value tree
    assert [t["id"] for t in kqi.json("training", "list", "--tag", "cli")] == [run_id]
    assert kqi("training", "list-container-files", run_id).stdout.splitlines() == ["/sub dir/r #1.txt"]
    out = tmp_path / "out"
    out.mkdir()
    kqi("training", "download-container-files", run_id, "-d", out)
    assert (out / "sub dir" / "r #1.txt").read_text() == "result\n"
    kqi("training", "download-files", run_id, "-d", out)
    assert "start 42" in (out / f"training_stdout_stderr_{run_id}.log").read_text()

    r = kqi("training", "halt", run_id, ok=False)
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr and "already Completed" in r.stderr
    assert kqi("training", "update", run_id, "-m", "edited").stdout.strip() == f"updated {run_id}"
    assert kqi.json("training", "get", run_id)["memo"] == "edited"
    kqi("training", "update", run_id, "-fav")
    edited = kqi.json("training", "get", run_id)
    assert edited["favorite"] is True and edited["memo"] == "edited" and edited["tags"] == ["cli"]
    assert kqi("training", "delete", run_id).stdout.strip() == f"deleted {run_id}"


def test_admin_tenant_commands(platform, tmp_path):
    kqi = Kqi(tmp_path / "admin")
    kqi("account", "login", "-s", platform.url + "/services/kqi", "-u", "admin", "-p", platform.admin_password)
    name = unique("t")
    r = kqi("tenant", "create", "-n", name, "-dn", "CLI tenant", "-gid", 1, "-rid", 1, "-sid", 1)
    tenant_id = int(r.stdout.split()[1])
    assert any(t["id"] == tenant_id and t["name"] == name for t in kqi.json("tenant", "list"))
    assert kqi.json("tenant", "get", tenant_id)["displayName"] == "CLI tenant"
    kqi("tenant", "update", tenant_id, "-dn", "Renamed", "-gid", 1, "-rid", 1, "-sid", 1)
    assert kqi.json("tenant", "get", tenant_id)["displayName"] == "Renamed"
    r = kqi("tenant", "delete", tenant_id)
    assert r.stdout.splitlines()[0] == f"deleted {tenant_id}"


@pytest.mark.upstream
def test_the_upstream_cli_shares_our_login_and_reads_our_uploads(member, tmp_path):
    from upstream import Cli, require_upstream_cli

    require_upstream_cli()
    (tmp_path / "f.bin").write_bytes(os.urandom(100_000))
    data_id = int(member("data", "create", "-n", "shared", "-f", tmp_path / "f.bin").stdout.split()[1])
    upstream = Cli(member.home, None)  # the same HOME, so the config.json our login wrote
    assert str(data_id) in upstream("data", "list").stdout
    out = tmp_path / "out"
    out.mkdir()
    upstream("data", "download-files", data_id, "-d", out)
    assert (out / "f.bin").read_bytes() == (tmp_path / "f.bin").read_bytes()
