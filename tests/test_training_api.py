"""Trainings on the real platform: queue, sandbox, the /kqi runtime contract, logs, outputs, halt."""

import io
import json
import subprocess
import time
import zipfile

import pytest
import requests
from conftest import submit, unique, wait_for

pytestmark = pytest.mark.platform

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


def test_lists_sort_by_name_status_and_time_and_refuse_an_unknown_order(platform, lab):
    """Sort (added): runs, data and datasets in the order asked, the id breaking ties; a bad order is a 400."""
    api = lab["api"]
    made = [submit(lab, "true", name=name) for name in ("sort-b", "sort-a", "sort-c")]
    for run in made:
        wait_for(api, run["id"])
    mine = {r["id"] for r in made}

    def names(sort):
        return [r["name"] for r in api.get("/training", params={"Sort": sort, "perPage": 1000}).json() if r["id"] in mine]

    assert names("name") == ["sort-a", "sort-b", "sort-c"]
    assert names("-name") == ["sort-c", "sort-b", "sort-a"]
    assert names("id") == ["sort-b", "sort-a", "sort-c"] and names("-createdAt") == ["sort-c", "sort-a", "sort-b"]
    for path in ("/training", "/data", "/datasets"):
        r = api.get(path, params={"Sort": "password"})
        assert r.status_code == 400 and "Sort must be one of" in r.json()["message"], r.text
    assert api.get("/data", params={"Sort": "-name"}).status_code == 200
