"""Trainings on the real platform: queue, sandbox, the /kqi runtime contract, logs, outputs, halt."""

import io
import json
import os
import subprocess
import time
import zipfile

import pytest
import requests
from conftest import unique
from test_data_api import upload

pytestmark = pytest.mark.platform

TRAIN_PY = """\
import json, os, sys
print("hello from the model", flush=True)
print("to stderr", file=sys.stderr, flush=True)
inputs = sorted(os.path.relpath(os.path.join(r, f), "/kqi/input") for r, _, fs in os.walk("/kqi/input") for f in fs)
env = {k: os.environ.get(k) for k in ("TRAINING_ID", "DATASET_ID", "PARENT_ID", "MODEL_REPOSITORY", "COMMIT_ID",
                                      "KQI_SERVER", "LANG", "ENTRY_POINT", "ZIP_FILE_CREATED", "MY_OPTION",
                                      "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES")}
try:
    open("/kqi/input/should-fail", "w")
    input_writable = True
except OSError:
    input_writable = False
import urllib.request
req = urllib.request.Request(os.environ["KQI_SERVER"] + "/api/v2/account",
                             headers={"Authorization": "Bearer " + os.environ["KQI_TOKEN"]})
account = json.load(urllib.request.urlopen(req, timeout=30))
os.makedirs("/kqi/output/sub dir", exist_ok=True)
with open("/kqi/output/sub dir/result #1.json", "w") as f:
    json.dump({"inputs": inputs, "env": env, "cwd": os.getcwd(), "pid": os.getpid(),
               "input_writable": input_writable, "account": account["userName"],
               "tenant": account["selectedTenant"]["id"], "token": os.environ["KQI_TOKEN"]}, f)
"""


@pytest.fixture(scope="module")
def git_endpoint(admin, tmp_path_factory):
    """A file:// git endpoint with the bare repository kqi/model (commits on master)."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    bare = root / "repos" / "kqi" / "model.git"
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    (work / "train.py").write_text(TRAIN_PY)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "model"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    commit = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    r = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0,
                                            "repositoryUrl": f"file://{root / 'repos'}", "apiUrl": f"file://{root}"})
    assert r.status_code == 201
    return {"id": r.json()["id"], "commit": commit}


def new_lab(platform, new_tenant, new_user, git_endpoint, admin=None) -> dict:
    """A tenant using the local git endpoint, a member logged in, and a dataset with one file."""
    tenant = new_tenant(gitIds=[1, git_endpoint["id"]], defaultGitId=git_endpoint["id"])
    user = new_user([{"id": tenant["id"]}])
    api = platform.api().login(user["name"], user["password"])
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    ds = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    return {"api": api, "tenant": tenant, "user": user, "data": data, "dataset": ds, "git": git_endpoint,
            "admin": admin}


@pytest.fixture
def lab(platform, admin, new_tenant, new_user, git_endpoint):
    """``new_lab``: a tenant, a logged-in member and a dataset (see there)."""
    return new_lab(platform, new_tenant, new_user, git_endpoint, admin)


def submit(lab, command, **overrides):
    body = {"name": unique("run")[:30], "containerImage": {"image": "python", "tag": "3.11"},
            "dataSetId": lab["dataset"]["id"], "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi",
                                                            "repository": "model"},
            "entryPoint": command, "cpu": 1, "memory": 1, "gpu": 0, **overrides}
    r = lab["api"].post("/training/run", body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(api, run_id, statuses=("Completed", "Failed", "Killed", "OOMKilled", "Error", "UserCanceled"),
             timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/training/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run['status']}: {run}")


def test_training_runs_with_the_runtime_contract(lab):
    api = lab["api"]
    run = submit(lab, "python3 train.py", options={"MY_OPTION": "42"}, zip=True)
    done = wait_for(api, run["id"])
    assert done["status"] == "Completed" and done["statusType"] == "Closed", done
    assert done["gitModel"]["commitId"] == lab["git"]["commit"]

    listing = api.get(f"/training/{run['id']}/container-files", params={"path": "/sub dir", "withUrl": "true"}).json()
    (result_file,) = listing["files"]
    assert result_file["fileName"] == "result #1.json"
    result = requests.get(result_file["url"], timeout=30).json()  # signed URL, no token
    assert result["cwd"] == "/kqi/git" and result["pid"] < 100  # its own PID namespace
    assert result["inputs"] == [f"training/{lab['data']['id']}/x.csv"]
    assert result["input_writable"] is False
    env = result["env"]
    assert env["TRAINING_ID"] == str(run["id"]) and env["DATASET_ID"] == str(lab["dataset"]["id"])
    assert env["COMMIT_ID"] == lab["git"]["commit"] and env["MODEL_REPOSITORY"].endswith("/kqi/model.git")
    assert env["LANG"] == "C.UTF-8" and env["MY_OPTION"] == "42" and env["PYTHONUNBUFFERED"] == "1"
    assert env["ZIP_FILE_CREATED"] == "true" and env["ENTRY_POINT"] == "python3 train.py"
    assert result["account"] == api.get("/account").json()["userName"]  # KQI_TOKEN works from inside
    assert result["tenant"] == lab["tenant"]["id"]

    files = {f["fileName"]: f for f in api.get(f"/training/{run['id']}/files", params={"withUrl": "true"}).json()}
    log_name = f"training_stdout_stderr_{run['id']}.log"
    log = requests.get(files[log_name]["url"], timeout=30).text
    assert "hello from the model" in log and "to stderr" in log
    archive = zipfile.ZipFile(io.BytesIO(requests.get(files["output.zip"]["url"], timeout=30).content))
    assert archive.namelist() == ["sub dir/result #1.json"]
    assert "KQI_TOKEN" not in log
    # the run token works for the kqi API only while the run runs
    assert result["token"].startswith("kqirun_")
    r = requests.get(result["env"]["KQI_SERVER"] + "/api/v2/account",
                     headers={"Authorization": "Bearer " + result["token"]}, timeout=30)
    assert r.status_code == 401 and "ended" in r.json()["message"]


def test_failed_exit_and_live_log(lab):
    api = lab["api"]
    run = submit(lab, "echo first; sleep 2; echo second; exit 3")
    time.sleep(1.2)
    r = api.get(f"/training/{run['id']}/log")
    if r.headers["X-Run-Status"] == "Running":
        assert "first" in r.text and "second" not in r.text  # live, before the end
    follow = api.get(f"/training/{run['id']}/log", params={"follow": "true"})
    assert "first" in follow.text and "second" in follow.text
    done = wait_for(api, run["id"])
    assert done["status"] == "Failed" and done["statusType"] == "Failed"


def test_halt_stops_the_whole_tree(lab):
    api = lab["api"]
    marker = unique("marker")
    run = submit(lab, f"(setsid sleep 300 {marker} &) ; sleep 300")
    wait_for(api, run["id"], statuses=("Running",))
    for _ in range(50):
        if subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    assert api.delete(f"/training/{run['id']}").status_code == 409  # refused while running
    assert api.post(f"/training/{run['id']}/halt").status_code == 200
    done = wait_for(api, run["id"], timeout=30)
    assert done["status"] == "Killed"
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    assert api.delete(f"/training/{run['id']}").status_code == 204


def test_queue_waits_for_quota(lab):
    api, admin = lab["api"], lab["admin"]
    admin.post("/admin/quotas", [{"tenantId": lab["tenant"]["id"], "cpu": 1}])
    first = submit(lab, "sleep 2")
    second = submit(lab, "true")
    wait_for(api, first["id"], statuses=("Running",))
    waiting = api.get(f"/training/{second['id']}").json()
    assert waiting["status"] == "Pending" and waiting["queuePosition"] >= 1
    assert wait_for(api, second["id"])["status"] == "Completed"
    assert api.post("/training/run", {**_body(lab), "cpu": 2}).status_code == 400  # above the quota


def test_memory_hog_ends_oomkilled(lab):
    run = submit(lab, "python3 -c \"b = bytearray(3 * 1024**3); print(len(b))\"", memory=1)
    assert wait_for(lab["api"], run["id"])["status"] == "OOMKilled"


def test_parent_output_is_mounted_read_only(lab):
    api = lab["api"]
    parent = submit(lab, "echo weights > /kqi/output/model.bin")
    wait_for(api, parent["id"])
    child = submit(lab, "cat /kqi/parent/model.bin && ! touch /kqi/parent/x && echo parent=$PARENT_ID",
                   parentIds=[parent["id"]])
    done = wait_for(api, child["id"])
    assert done["status"] == "Completed"
    log = api.get(f"/training/{child['id']}/log").text
    assert "weights" in log and f"parent={parent['id']}" in log


def _body(lab, **kw):
    return {"name": "ok", "dataSetId": lab["dataset"]["id"],
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
            "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0, **kw}


@pytest.mark.parametrize("change, status, message", [
    ({"name": "Bad_Name"}, 400, "name"),
    ({"name": "x" * 31}, 400, "name"),
    ({"cpu": 0}, 400, "cpu"),
    ({"memory": 0}, 400, "memory"),
    ({"gpu": -1}, 400, "gpu"),
    ({"cpu": 10_000}, 400, "No node could ever hold"),
    ({"partition": "nowhere"}, 400, "Unknown partition"),
    ({"dataSetId": 99999999}, 404, "Dataset"),
    ({"parentIds": [99999999]}, 404, "Parent"),
    ({"options": {"1BAD": "x"}}, 400, "not a valid environment variable"),
    ({"options": {"KQI_TOKEN": "x"}}, 400, "cannot be overridden"),
    ({"gitModel": {"gitId": 99999, "owner": "kqi", "repository": "model"}}, 404, "Git endpoint"),
    ({"gitModel": {"owner": "-oProxy", "repository": "model"}}, 400, "owner"),
    ({"entryPoint": ""}, 400, "entryPoint"),
])
def test_bad_submissions_queue_nothing(lab, change, status, message):
    api = lab["api"]
    before = len(api.get("/training").json())
    r = api.post("/training/run", _body(lab, **change))
    assert r.status_code == status, r.text
    assert message in r.json()["message"]
    assert len(api.get("/training").json()) == before


def test_another_tenants_training_is_404(platform, lab, new_tenant, new_user):
    run = submit(lab, "true")
    other = new_tenant()
    stranger = new_user([{"id": other["id"]}])
    api = platform.api().login(stranger["name"], stranger["password"])
    assert api.get(f"/training/{run['id']}").status_code == 404
    assert api.post(f"/training/{run['id']}/halt").status_code == 404
    r = api.post("/training/run", {**_body(lab), "dataSetId": lab["dataset"]["id"]})
    assert r.status_code == 404
    assert json.loads(r.text)["status"] == 404


def test_copy_run_with_overrides(lab):
    api = lab["api"]
    first = submit(lab, "echo first-$MY_OPTION", options={"MY_OPTION": "a"}, memo="original", tags=["t1"])
    wait_for(api, first["id"])
    r = api.post(f"/training/{first['id']}/copy-run", {"name": "copied", "options": {"MY_OPTION": "b"}})
    assert r.status_code == 201, r.text
    copy = wait_for(api, r.json()["id"])
    assert copy["name"] == "copied" and copy["memo"] == "original" and copy["tags"] == ["t1"]
    assert copy["dataSet"]["id"] == lab["dataset"]["id"] and copy["status"] == "Completed"
    assert "first-b" in api.get(f"/training/{copy['id']}/log").text
    assert api.post(f"/training/{first['id']}/copy-run", {"cpu": 0}).status_code == 400


def test_container_files_listing_stops_at_10000_and_says_so(lab):
    api = lab["api"]
    run = submit(lab, "mkdir /kqi/output/many && cd /kqi/output/many && seq -f 'f%05g' 1 10001 | xargs touch")
    assert wait_for(api, run["id"])["status"] == "Completed"
    listing = api.get(f"/training/{run['id']}/container-files", params={"path": "/many"}).json()
    assert listing["exceeded"] is True and len(listing["files"]) == 10000
    assert api.get(f"/training/{run['id']}/container-files", params={"path": "/../x"}).status_code == 400


def test_user_cancel_of_running_and_pending_runs(lab):
    api, admin = lab["api"], lab["admin"]
    admin.post("/admin/quotas", [{"tenantId": lab["tenant"]["id"], "cpu": 1}])
    running = submit(lab, "sleep 300")
    waiting = submit(lab, "true")
    wait_for(api, running["id"], statuses=("Running",))
    assert api.post(f"/training/{waiting['id']}/user-cancel").json()["status"] == "UserCanceled"
    api.post(f"/training/{running['id']}/user-cancel")
    done = wait_for(api, running["id"], timeout=30)
    assert done["status"] == "UserCanceled" and done["statusType"] == "Closed"
    assert api.post(f"/training/{running['id']}/halt").status_code == 409
