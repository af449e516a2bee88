"""Notebooks on the real platform: JupyterHub named servers from our spawner, admitted by the job scheduler.

A notebook runs the hub's single-user JupyterLab in the job sandbox with the
real /kqi paths; these tests reach it through the hub's proxy as a user's
browser would (with the user's token), and check what a user sees: status,
url, files kept in /kqi/output across halt and rerun, resources held
against trainings, lifetimes, failures, and refusals.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import time

import pytest
import requests
from conftest import (
    ENDED,
    _process_tree,
    alive,
    lab_get,
    make_lab,
    run_notebook,
    service_pid,
    submit,
    unique,
    wait_answering,
    wait_for,
    wait_notebook,
    wait_until,
)

pytestmark = pytest.mark.platform

def test_notebook_runs_jupyterlab_in_kqi_output_and_keeps_it_across_rerun(platform, lab):
    api = lab["api"]
    nb = run_notebook(lab)
    assert nb["status"] == "Pending" and nb["expiresIn"] == 3600
    nb = wait_notebook(api, nb["id"], ("Running",) + ENDED)
    assert nb["status"] == "Running", nb
    wait_answering(platform, api, nb)
    endpoint = api.get(f"/notebook/{nb['id']}/endpoint").json()
    assert endpoint["url"].endswith(f"/{nb['name']}/lab") and 3500 < endpoint["remainingSeconds"] <= 3600

    # JupyterLab's root is /kqi/output, with the guide's links to the fresh directories
    listing = lab_get(platform, api, nb, "api/contents/").json()
    assert {"input", "git", "parent"} <= {c["name"] for c in listing["content"]}
    staged = lab_get(platform, api, nb, "api/contents/input/training").json()
    assert [c["name"] for c in staged["content"]] == [str(lab["data"]["id"])]
    headers = {"Authorization": f"token {api.token}"}
    base = platform.url + endpoint["url"].removesuffix("lab")
    r = requests.put(base + "api/contents/keep.txt", headers=headers, timeout=30,
                     json={"type": "file", "format": "text", "content": "kept"})
    assert r.status_code == 201, r.text

    r = api.post(f"/notebook/{nb['id']}/halt")
    assert r.status_code == 200, r.text
    nb = wait_notebook(api, nb["id"], ENDED)
    assert nb["status"] == "Killed"
    wait_until(lambda: lab_get(platform, api, nb, "api/status").status_code != 200, 30, "the server to stop")


    def hub_sees_it_stopped() -> bool:  # the hub is told after the server died (the engine's tell_hub_stopped)
        servers = requests.get(f"{platform.url}/hub/api/users/{nb['createdBy']}", timeout=30,
                               headers={"Authorization": f"token {api.token}"}).json()["servers"]
        return nb["name"] not in servers or not servers[nb["name"]].get("ready")

    wait_until(hub_sees_it_stopped, 30, "the hub to see the server stopped")

    # rerun: the same notebook, /kqi/output kept, a changed resource
    r = api.post(f"/notebook/{nb['id']}/rerun", {"cpu": 2, "expiresIn": 7200})
    assert r.status_code == 201, r.text
    nb = wait_notebook(api, nb["id"], ("Running",) + ENDED)
    assert nb["status"] == "Running" and nb["cpu"] == 2 and nb["expiresIn"] == 7200
    wait_answering(platform, api, nb)
    assert lab_get(platform, api, nb, "api/contents/keep.txt").json()["content"] == "kept"
    api.post(f"/notebook/{nb['id']}/halt")
    wait_notebook(api, nb["id"], ENDED)


def test_a_notebook_is_running_only_once_its_jupyterlab_answers_through_the_hub(platform, lab):
    """The API says Running only when the hub routes to the server: an "open" at that moment works."""
    api = lab["api"]
    nb = run_notebook(lab)
    seen = []
    while True:
        details = api.get(f"/notebook/{nb['id']}").json()
        if not seen or seen[-1] != (details["status"], details["phase"]):
            seen.append((details["status"], details["phase"]))
        if details["status"] != "Pending":
            break
        time.sleep(0.05)
    assert details["status"] == "Running", (details, seen)
    r = lab_get(platform, api, details, "api/status")  # at once: no retry
    assert r.status_code == 200, (r.status_code, r.text[:200], seen)
    assert api.get(f"/notebook/{nb['id']}/endpoint").json()["phase"] == "running"
    # every state seen before Running was a Pending phase, in order
    pending = [phase for status, phase in seen if status == "Pending"]
    order = ["queued", "preparing", "starting"]
    assert pending == sorted(pending, key=order.index) and set(pending) <= set(order), seen
    assert seen[-1] == ("Running", "running")
    api.post(f"/notebook/{nb['id']}/halt")
    ended = wait_notebook(api, nb["id"], ENDED)
    assert (ended["status"], ended["phase"]) == ("Killed", "ended")


def test_notebook_holds_its_cores_against_trainings(platform, lab, admin):
    api = lab["api"]
    cores = sum(n["cpu"] for n in admin.get("/admin/nodes").json())
    nb = run_notebook(lab, cpu=cores)
    wait_notebook(api, nb["id"], ("Running",))
    run = submit(lab, "true")
    time.sleep(2)
    waiting = api.get(f"/training/{run['id']}").json()
    assert waiting["status"] == "Pending" and waiting["queuePosition"] >= 1
    api.post(f"/notebook/{nb['id']}/halt")
    assert wait_for(api, run["id"])["status"] == "Completed"


def test_notebook_stops_at_the_end_of_its_lifetime(platform, lab):
    api = lab["api"]
    nb = run_notebook(lab, expiresIn=8)
    nb = wait_notebook(api, nb["id"], ("Running",))
    assert nb["expiresAt"] and nb["remainingSeconds"] <= 8
    nb = wait_notebook(api, nb["id"], ENDED, timeout=60)
    assert nb["status"] == "Completed" and "lifetime" in nb["conditionNote"]
    user = requests.get(f"{platform.url}/hub/api/user", headers={"Authorization": f"token {api.token}"},
                        timeout=30).json()
    wait_until(lambda: nb["name"] not in requests.get(
        f"{platform.url}/hub/api/users/{user['name']}", headers={"Authorization": f"token {api.token}"},
        timeout=30).json()["servers"], 30, "the hub to drop the server")


def test_a_notebook_whose_server_dies_is_failed_with_the_reason(platform, lab):
    api = lab["api"]
    nb = run_notebook(lab, entryPoint="echo about to fail; exit 7")
    nb = wait_notebook(api, nb["id"], ENDED + ("Running",))
    nb = wait_notebook(api, nb["id"], ENDED)
    assert nb["status"] == "Failed"
    assert "exited with code 7" in nb["conditionNote"] and "about to fail" in nb["conditionNote"]


@pytest.mark.parametrize("change, status, message", [
    ({"name": None}, 400, "name"),
    ({"cpu": 100000}, 400, "node"),
    ({"expiresIn": 0}, 400, "without a lifetime"),
    ({"expiresIn": None}, 400, "expiresIn"),
    ({"dataSetId": 999999}, 404, "Dataset"),
    ({"parentIds": [999999]}, 404, "Parent"),
    ({"options": {"KQI_TOKEN": "x"}}, 400, "cannot be overridden"),
])
def test_bad_notebook_requests_queue_nothing(lab, change, status, message):
    api = lab["api"]
    before = api.get("/notebook").headers.get("X-Total-Count")
    body = {"name": unique("bad")[:30], "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 60, **change}
    r = api.post("/notebook/run", {k: v for k, v in body.items() if v is not None})
    assert r.status_code == status and message.lower() in r.json()["message"].lower(), r.text
    assert api.get("/notebook").headers.get("X-Total-Count") == before


def test_a_running_name_is_a_conflict_and_unlimited_needs_the_tenant(platform, lab, admin):
    api = lab["api"]
    nb = run_notebook(lab)
    r = api.post("/notebook/run", {"name": nb["name"], "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 60})
    assert r.status_code == 409 and "running" in r.json()["message"]
    assert api.get("/notebook/available-infinite-time").json() is False
    tenant = lab["tenant"]
    admin.put(f"/admin/tenants/{tenant['id']}", {**admin.get(f"/admin/tenants/{tenant['id']}").json(),
                                                 "availableInfiniteTimeNotebook": True})
    assert api.get("/notebook/available-infinite-time").json() is True
    api.post(f"/notebook/{nb['id']}/halt")
    wait_notebook(api, nb["id"], ENDED)


def test_a_server_started_from_the_hub_gets_the_same_options_and_queue(platform, lab):
    """The hub's own spawn path (as /hub/home and its form do): user options without a notebook id."""
    api = lab["api"]
    user = requests.get(f"{platform.url}/hub/api/user", headers={"Authorization": f"token {api.token}"},
                        timeout=30).json()["name"]
    server = unique("hubnb")[:20]
    options = {"cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 600, "memo": "from the hub",
               "tenantId": lab["tenant"]["id"]}
    r = requests.post(f"{platform.url}/hub/api/users/{user}/servers/{server}", json=options,
                      headers={"Authorization": f"token {api.token}"}, timeout=60)
    assert r.status_code in (201, 202), r.text
    nb = wait_until(lambda: [n for n in api.get("/notebook").json() if n["name"] == server], 30,
                    "the notebook record")[0]
    nb = wait_notebook(api, nb["id"], ("Running",))
    assert nb["memo"] == "from the hub"
    wait_answering(platform, api, nb)
    r = requests.delete(f"{platform.url}/hub/api/users/{user}/servers/{server}",
                        headers={"Authorization": f"token {api.token}"}, timeout=60)
    assert r.status_code in (202, 204), r.text
    assert wait_notebook(api, nb["id"], ENDED)["status"] == "Killed"


def test_the_hubs_spawn_form_offers_pickers_and_a_stopped_server_reruns_without_it(platform, lab):
    """/hub/spawn/NAME/SERVER: a new server gets the form with the tenant's datasets and git endpoints by name (the
    default one chosen); "start" of a server whose notebook stopped offers to run it again, which reruns that
    notebook with its own settings."""
    from conftest import hub_login

    api = lab["api"]
    user = api.get("/account").json()["userName"]
    s = hub_login(platform, user, "user-pass-123")
    form = s.get(f"{platform.url}/hub/spawn/{user}/{unique('fresh')[:20]}", timeout=60)
    assert form.status_code == 200, form.text
    dataset = lab["dataset"]
    assert f'<option value="{dataset["id"]}">{dataset["id"]}: {dataset["name"]}</option>' in form.text
    git = lab["git"]["id"]  # the tenant's default git endpoint
    assert f'<option value="{git}" selected>' in form.text and 'id="kqi-git" name="gitId"' in form.text
    assert 'name="dataSetId" inputmode' not in form.text  # no raw ids

    nb = run_notebook(lab, memo="first settings", cpu=1)
    wait_notebook(api, nb["id"], ("Running",))
    api.post(f"/notebook/{nb['id']}/halt")
    assert wait_notebook(api, nb["id"], ENDED)["status"] == "Killed"
    wait_until(lambda: not (requests.get(f"{platform.url}/hub/api/users/{user}", timeout=30,
                                         headers={"Authorization": f"token {api.token}"}).json()["servers"]
                            .get(nb["name"], {}).get("active")), 30, "the hub to see the server stopped")
    page = s.get(f"{platform.url}/hub/spawn/{user}/{nb['name']}", timeout=60)
    assert page.status_code == 200 and 'id="kqi-rerun"' in page.text and "last settings" in page.text, page.text
    action = html.unescape(re.search(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', page.text, re.S).group(1))
    start = s.post(platform.url + action, files={"rerun": (None, "1")}, timeout=60, allow_redirects=False)
    assert start.status_code == 302 and "spawn-pending" in start.headers["Location"], (
        start.status_code, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", start.text))[-600:])
    again = wait_notebook(api, nb["id"], ("Running",))
    assert (again["memo"], again["cpu"], again["dataSet"]["id"]) == ("first settings", 1, dataset["id"])
    api.post(f"/notebook/{nb['id']}/halt")
    wait_notebook(api, nb["id"], ENDED)


def test_a_waiting_spawn_shows_its_queue_position_in_the_hubs_progress(platform, lab, admin):
    api = lab["api"]
    cores = sum(n["cpu"] for n in admin.get("/admin/nodes").json())
    first = run_notebook(lab, cpu=cores)
    wait_notebook(api, first["id"], ("Running",))
    second = run_notebook(lab)
    user = second["createdBy"]
    headers = {"Authorization": f"token {api.token}"}
    url = f"{platform.url}/hub/api/users/{user}/servers/{second['name']}/progress"
    # the service asks the hub to spawn in the background: the progress stream is there once it did
    progress = wait_until(lambda: (r := requests.get(url, headers=headers, stream=True, timeout=30)).ok and r,
                          30, "the spawn's progress stream")
    message = None
    for line in progress.iter_lines(decode_unicode=True):
        if line.startswith("data:") and "position" in line:
            message = json.loads(line[5:])["message"]
            break
    progress.close()
    assert message == f"Notebook {second['id']} is waiting for resources (position 1 in the queue)"
    assert api.get(f"/notebook/{second['id']}").json()["status"] == "Pending"
    api.post(f"/notebook/{first['id']}/halt")
    wait_notebook(api, second["id"], ("Running",))
    api.post(f"/notebook/{second['id']}/halt")
    wait_notebook(api, second["id"], ENDED)


def test_a_notebook_outlives_a_restart_of_the_kqi_service(start_platform, tmp_path):
    platform = start_platform()
    lab = make_lab(platform, tmp_path / "git")
    api = lab["api"]
    nb = run_notebook(lab)
    wait_notebook(api, nb["id"], ("Running",))
    wait_answering(platform, api, nb)
    old = service_pid(platform)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not alive(old), 5, "the service to die")
    assert lab_get(platform, api, nb, "api/status").status_code == 200  # the notebook goes on meanwhile
    wait_until(lambda: _answers(api, nb["id"]), 45, "the restarted service to answer")
    platform.children = _process_tree(platform.process.pid)
    assert api.get(f"/notebook/{nb['id']}").json()["status"] == "Running"
    assert lab_get(platform, api, nb, "api/status").status_code == 200
    api.post(f"/notebook/{nb['id']}/halt")
    assert wait_notebook(api, nb["id"], ENDED)["status"] == "Killed"
    wait_until(lambda: lab_get(platform, api, nb, "api/status").status_code != 200, 30, "the server to stop")


def _answers(api, nb_id) -> bool:
    try:
        return api.get(f"/notebook/{nb_id}").status_code == 200
    except requests.RequestException:
        return False


def test_a_notebook_outlives_a_platform_stop_and_is_served_again_after_the_start(start_platform, tmp_path):
    state = str(tmp_path / "state")
    first = start_platform(state)
    lab = make_lab(first, tmp_path / "git")
    api = lab["api"]
    nb = run_notebook(lab)
    nb = wait_notebook(api, nb["id"], ("Running",))
    wait_answering(first, api, nb)
    assert [n["remainingSeconds"] for n in api.get("/notebook").json() if n["id"] == nb["id"]][0] > 3500

    first.stop()
    with pytest.raises(requests.ConnectionError):
        lab_get(first, api, nb, "api/status")  # the proxy is gone with the platform, the notebook is not
    second = start_platform(state, port=int(first.url.rsplit(":", 1)[1]))
    wait_answering(second, api, nb, timeout=60)  # the hub found its server again
    assert api.get(f"/notebook/{nb['id']}").json()["status"] == "Running"
    api.post(f"/notebook/{nb['id']}/halt")
    assert wait_notebook(api, nb["id"], ENDED)["status"] == "Killed"


def test_a_hub_spawn_that_can_never_fit_is_refused_at_once(platform, lab):
    api = lab["api"]
    headers = {"Authorization": f"token {api.token}"}
    user = requests.get(f"{platform.url}/hub/api/user", headers=headers, timeout=30).json()["name"]
    server = unique("huge")[:20]
    started = time.monotonic()
    r = requests.post(f"{platform.url}/hub/api/users/{user}/servers/{server}", headers=headers, timeout=60,
                      json={"cpu": 100000, "memory": 1, "gpu": 0, "expiresIn": 60})
    assert r.status_code == 400, r.text  # the hub answers with the service's reason
    assert r.json()["message"].startswith("No node could ever hold cpu 100000, memory 1 GB, gpu 0"), r.text
    # the hub records the failed spawn: not pending, not ready, and no notebook was queued
    wait_until(lambda: not (s := requests.get(f"{platform.url}/hub/api/users/{user}", headers=headers,
                                              timeout=30).json()["servers"].get(server)) or
               (not s.get("pending") and not s.get("ready")), 30, "the spawn to fail")
    assert time.monotonic() - started < 15
    assert server not in [n["name"] for n in api.get("/notebook").json()]
