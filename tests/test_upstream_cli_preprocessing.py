"""The upstream kamonohashi-cli 4.0.2, unchanged, against the platform: the 12 `kqi preprocessing` commands.

A new user in a new tenant logs in with the upstream `kqi` (a HOME of its
own) and defines, edits, runs and deletes preprocessings as the guide's
two workflows describe: on the platform (`run`, `list-histories`,
`halt-history`, `delete-history`) and outside it (`build-history`,
`build-history-files` upload a local directory's results). Asserted: exit
codes, printed lines, and what the API then reports for the same token
(histories, the data made and their bytes).
"""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from conftest import unique, upload
from upstream import cli_login, field, require_upstream_cli

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module", autouse=True)
def _upstream_installed():
    require_upstream_cli()


@pytest.fixture
def user_cli(platform, tmp_path, new_tenant, new_user, git_endpoint):
    tenant = new_tenant(gitIds=[1, git_endpoint["id"]], defaultGitId=git_endpoint["id"])
    user = new_user([{"id": tenant["id"], "default": True}])
    cli, api = cli_login(platform, tmp_path / "home", tenant, user)
    data = api.post("/data", {"name": "raw", "tags": ["t1"]}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    second = api.post("/data", {"name": "raw2"}).json()
    ticket = upload(api, "y.csv", b"3,4\n")
    api.post(f"/data/{second['id']}/files", {"files": [{"fileName": "y.csv", "storedPath": ticket["storedPath"]}]})
    return cli, api, data, second, git_endpoint


def history(api, pre_id, data_id, statuses=("Completed", "Failed", "Killed", "Error"), timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = api.get(f"/preprocessings/{pre_id}/histories/{data_id}").json()
        if h["status"] in statuses:
            return h
        time.sleep(0.3)
    raise AssertionError(f"history {pre_id}.{data_id} still {h['status']}")


def files_of(api, data_id):
    return {f["fileName"]: requests.get(f["url"], timeout=30).content
            for f in api.get(f"/data/{data_id}/files", params={"withUrl": "true"}).json()}


def test_upstream_preprocessing_on_the_platform(user_cli, tmp_path):
    cli, api, data, second, git = user_cli
    name = unique("resize")
    spec = tmp_path / "pre.json"
    spec.write_text(json.dumps({
        "name": name, "entryPoint": "mkdir -p /kqi/output/small && cp /kqi/input/$DATA_ID/* /kqi/output/small/",
        "containerImage": {"image": "python", "tag": "3.11"},
        "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
        "memo": "from a file", "cpu": 1, "memory": 1, "gpu": 0}))
    r = cli("preprocessing", "create", "-f", spec)
    pre_id = int(re.fullmatch(r"created (\d+)", r.stdout.strip()).group(1))

    listed = cli("preprocessing", "list", "--name", name).stdout
    assert str(pre_id) in listed and name in listed and "from a file" in listed, listed
    got = cli("preprocessing", "get", pre_id).stdout
    assert field(got, "name") == name and "mkdir -p /kqi/output/small" in got, got
    saved = tmp_path / "got.json"
    cli("preprocessing", "get", pre_id, "-d", saved)
    assert json.loads(saved.read_text())["entryPoint"].startswith("mkdir -p")

    cli("preprocessing", "update-meta-info", pre_id, "-m", "edited memo", "-c", 2)
    details = api.get(f"/preprocessings/{pre_id}").json()
    assert details["memo"] == "edited memo" and details["cpu"] == 2 and details["name"] == name
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "memo": "replaced"}))
    assert cli("preprocessing", "update", pre_id, "-f", spec).stdout.strip() == f"updated {pre_id}"
    assert api.get(f"/preprocessings/{pre_id}").json()["memo"] == "replaced"

    r = cli("preprocessing", "run", pre_id, "-did", data["id"], "-did", second["id"], "-c", 1, "-mem", 1, "-g", 0,
            "-o", "MODE", "fast")
    assert r.stdout.split() == ["started", f"{pre_id}.{data['id']}", "started", f"{pre_id}.{second['id']}"], r.stdout
    done = history(api, pre_id, data["id"])
    assert done["status"] == "Completed", done
    [made] = done["outputDataIds"]
    assert api.get(f"/data/{made}").json()["name"] == "small"
    assert files_of(api, made) == {"x.csv": b"a,b\n1,2\n"}
    assert history(api, pre_id, second["id"])["status"] == "Completed"

    table = cli("preprocessing", "list-histories", pre_id).stdout
    assert table.split()[:4] == ["data_id", "data_name", "created_at", "status"], table
    assert {line.split()[0] for line in table.splitlines()[1:] if line.strip()} == {str(data["id"]), str(second["id"])}
    assert "Completed" in table

    # a second run on the same data is refused until its history is deleted (which deletes its data)
    r = cli("preprocessing", "run", pre_id, "-did", data["id"], "-c", 1, "-mem", 1, "-g", 0, ok=False)
    assert r.returncode != 0 or "[ERROR]" in r.stdout + r.stderr
    assert "already been processed" in r.stdout + r.stderr, r.stdout + r.stderr
    assert cli("preprocessing", "delete-history", pre_id, "-did", data["id"]).stdout.strip() == \
        f"deleted {pre_id}.{data['id']}"
    assert api.get(f"/data/{made}").status_code == 404
    r = cli("preprocessing", "delete", pre_id, ok=False)  # it still has a (finished) history: deletable
    assert r.returncode == 0, r.stdout + r.stderr
    assert api.get(f"/preprocessings/{pre_id}").status_code == 404


def test_upstream_preprocessing_halt_and_the_external_flow(user_cli, tmp_path):
    cli, api, data, second, git = user_cli
    spec = tmp_path / "sleep.json"
    spec.write_text(json.dumps({"name": unique("slow"), "entryPoint": "sleep 60",
                                "containerImage": {"image": "python", "tag": "3.11"},
                                "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
                                "cpu": 1, "memory": 1, "gpu": 0}))
    slow = int(cli("preprocessing", "create", "-f", spec).stdout.split()[-1])
    cli("preprocessing", "run", slow, "-did", data["id"], "-c", 1, "-mem", 1, "-g", 0)
    history(api, slow, data["id"], statuses=("Running",))
    assert cli("preprocessing", "halt-history", slow, "-did", data["id"]).stdout.strip() == f"halted {slow}.{data['id']}"
    assert history(api, slow, data["id"])["status"] == "Killed"

    # outside the platform: a definition with a name only, results from a local directory
    spec.write_text(json.dumps({"name": "made elsewhere"}))
    external = int(cli("preprocessing", "create", "-f", spec).stdout.split()[-1])
    source = tmp_path / "results"
    (source / "crops" / "sub").mkdir(parents=True)
    (source / "crops" / "a.png").write_bytes(b"\x89PNG-a")
    (source / "crops" / "sub" / "b.png").write_bytes(b"\x89PNG-b")
    (source / "labels").mkdir()
    (source / "labels" / "l.txt").write_text("cat\n")
    (source / "ignored.txt").write_text("top-level files are not data")
    r = cli("preprocessing", "build-history", external, "-did", data["id"], "-s", source, "-m", "local run",
            "-t", "v1")
    assert r.stdout.strip().splitlines()[-1] == f"built {external}.{data['id']}", r.stdout
    done = api.get(f"/preprocessings/{external}/histories/{data['id']}").json()
    assert done["status"] == "Completed" and len(done["outputDataIds"]) == 2, done
    made = {d["name"]: d for d in (api.get(f"/data/{i}").json() for i in done["outputDataIds"])}
    assert set(made) == {"crops", "labels"}
    assert made["crops"]["memo"] == "local run" and made["crops"]["tags"] == ["v1"]
    assert made["crops"]["parentDataId"] == data["id"]
    assert files_of(api, made["crops"]["id"]) == {"a.png": b"\x89PNG-a", "b.png": b"\x89PNG-b"}

    # build-history-files: results for a history opened beforehand (through the API, as a script would)
    assert api.post(f"/preprocessings/{external}/histories/{second['id']}").status_code == 201
    cli("preprocessing", "build-history-files", external, "-did", second["id"], "-s", source)
    other = api.get(f"/preprocessings/{external}/histories/{second['id']}").json()
    assert other["status"] == "Completed" and len(other["outputDataIds"]) == 2, other
