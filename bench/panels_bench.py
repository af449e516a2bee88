"""Lab panels benchmark: the Trainings panel with 1,000 trainings, and a browser upload vs the client's.

Run: ``.venv/bin/python bench/panels_bench.py [--trainings 1000 | --trainings 0] [--size-mib 1024]``

With a platform started as the tests start it and a JupyterLab with our
extensions (``tests/browser.py``), in Debian's chromium:

* 1,000 pending trainings (a tenant whose CPU quota is taken by one running
  ``sleep``, so the rest queue); the time from clicking the Trainings tab
  until the list shows its count and first rows, and until a scroll to the
  end shows the last rows (each a page fetched from the service);
* a file of ``--size-mib`` MiB uploaded from the Data panel (parameter
  through the server extension, 16 MiB parts PUT by the browser, 8 at once),
  until the panel says "uploaded": once with the parts PUT straight to the
  service (a second lab with ``forward_host`` off, and chromium with
  ``--disable-web-security`` standing in for the hub proxy's same origin),
  once through the tests' Playwright interception (a harness cost, not the
  product's);
* the same file through ``kqi_services.client`` (what the ``kqi`` CLI does);
* through the hub, the product's path: a platform notebook (``POST
  /notebook/run``, cpu 1, memory 2, expiresIn 3600), chromium logged in on
  the hub's login page and on the notebook's JupyterLab at
  ``/user/NAME/SERVER/lab``; the file uploaded from its Data panel (the
  part URLs are on the page's origin: the hub's proxy), then, right after,
  through ``kqi_services.client`` at ``platform.url + "/services/kqi"``
  (the same proxy). The notebook is halted at the end.

The hub measurement comes first: the trainings part then takes the bench
tenant's one core (``--trainings 0`` skips that part). Prints the figures
and the machine's load; asserts nothing. Checks for leftover processes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from browser import chromium, kqi_panel, same_origin_service, start_jupyterlab  # noqa: E402
from conftest import ENDED, _process_tree, alive, end_runs, launch_platform, upload, wait_answering, wait_notebook  # noqa: E402
from jobs_bench import make_repo  # noqa: E402
from test_lab_in_hub import hub_login  # noqa: E402
from upload_bench import make_file  # noqa: E402

from kqi_services.client import KqiClient  # noqa: E402

USER, PASSWORD = "bencher", "bench-pass-123"


def prepare(platform, workdir: str) -> tuple:
    """A tenant (one core of quota) with a git endpoint, a member logged in, and a dataset."""
    admin = platform.api().login("admin", platform.admin_password)
    repos, _ = make_repo(os.path.join(workdir, "git"))
    git = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0, "repositoryUrl": f"file://{repos}",
                                              "apiUrl": f"file://{repos}"}).json()
    tenant = admin.post("/admin/tenants", {"tenantName": "bench", "displayName": "Bench", "gitIds": [1, git["id"]],
                                           "defaultGitId": git["id"], "registryIds": [1], "storageId": 1}).json()
    admin.post("/admin/users", {"name": USER, "password": PASSWORD, "systemRoles": [],
                                "tenants": [{"id": tenant["id"]}]})
    admin.post("/admin/quotas", [{"tenantId": tenant["id"], "cpu": 1}])
    api = platform.api().login(USER, PASSWORD)
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    dataset = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    return api, git, dataset


def submit_trainings(api, git, dataset, trainings: int) -> dict:
    """One running blocker (the tenant's one core) and ``trainings`` pending runs behind it."""

    def submit(i: int, command: str = "true"):
        r = api.post("/training/run", {
            "name": f"run-{i}", "containerImage": {"image": "python", "tag": "3.11"}, "dataSetId": dataset["id"],
            "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"}, "entryPoint": command,
            "cpu": 1, "memory": 1, "gpu": 0})
        r.raise_for_status()
        return r.json()

    blocker = submit(0, "sleep 3600")
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, range(1, trainings + 1)))
    print(f"submitted {trainings} pending trainings in {time.perf_counter() - start:.1f} s")
    return blocker


def time_list_calls(api, lab) -> None:
    """One page of 50 trainings, straight from the service and through the server extension (median of 5)."""
    import requests

    def median(call):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            call().raise_for_status()
            times.append(time.perf_counter() - start)
        return sorted(times)[2] * 1000

    query = {"page": 1, "perPage": 50}
    direct = median(lambda: api.get("/training", params=query))
    relayed = median(lambda: requests.get(f"{lab.url}/kqi/api/training", params={**query, "token": lab.token},
                                          timeout=60))
    print(f"GET /training (50 of them): service {direct:.0f} ms, through the server extension {relayed:.0f} ms")


def time_trainings_panel(page, lab, trainings: int) -> None:
    page.goto(lab.lab_url)
    tab = page.locator('.lm-TabBar-tab[title="KQI Trainings"]')
    tab.wait_for()
    panel = page.locator("#kqi-trainings")
    start = time.perf_counter()
    tab.click()
    panel.locator(".kqi-list-count", has_text=f"{trainings + 1} items").wait_for()
    panel.locator(".kqi-row", has_text="run-0").or_(panel.locator(".kqi-row", has_text=f"run-{trainings}")).first.wait_for()
    opened = time.perf_counter() - start
    start = time.perf_counter()
    panel.locator(".kqi-list").evaluate("el => el.scrollTop = el.scrollHeight")
    panel.locator(".kqi-row", has_text="run-0").wait_for()
    scrolled = time.perf_counter() - start
    shown = panel.locator(".kqi-row").count()
    print(f"Trainings panel, {trainings + 1} trainings: open + first page shown {opened * 1000:.0f} ms; "
          f"scroll to the end + last page shown {scrolled * 1000:.0f} ms ({shown} rows in the DOM)")


def time_browser_upload(page, path: str) -> float:
    panel = kqi_panel(page, "Data")
    panel.locator(".kqi-new").click()
    panel.locator(".kqi-data-name").fill("big")
    start = time.perf_counter()
    panel.locator(".kqi-file-input").set_input_files(path)
    panel.locator(".kqi-upload-done").wait_for(timeout=1_800_000)
    return time.perf_counter() - start


def time_client_upload(url: str, token: str, path: str) -> float:
    client = KqiClient(url, token, timeout=300)
    start = time.perf_counter()
    client.upload(path, "Data")
    return time.perf_counter() - start


def time_hub_uploads(playwright, platform, api, path: str) -> tuple[float, float]:
    """(browser, client) seconds for ``path`` through the hub: a platform notebook's Data panel, then the client."""
    r = api.post("/notebook/run", {"name": "bench-upload", "cpu": 1, "memory": 2, "gpu": 0, "expiresIn": 3600})
    r.raise_for_status()
    nb = r.json()
    try:
        start = time.perf_counter()
        nb = wait_notebook(api, nb["id"], ("Running",) + ENDED, timeout=180)
        if nb["status"] != "Running":
            raise RuntimeError(f"the notebook did not run: {nb['status']} {nb.get('conditionNote')}")
        wait_answering(platform, api, nb)
        url = api.get(f"/notebook/{nb['id']}/endpoint").json()["url"]
        print(f"notebook {url} running and answering through the hub in {time.perf_counter() - start:.1f} s")
        browser = chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(60_000)
            hub_login(page, platform, {"name": USER, "password": PASSWORD})
            page.goto(platform.url + url)
            page.wait_for_url(f"**{url}**", timeout=60_000)
            load_before = os.getloadavg()[0]
            browser_s = time_browser_upload(page, path)
            print(f"  through the hub, Data panel: 1-min load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
            context.close()
        finally:
            browser.close()
        load_before = os.getloadavg()[0]
        client_s = time_client_upload(platform.url + "/services/kqi", api.token, path)
        print(f"  through the hub, kqi_services.client: 1-min load {load_before:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after")
        return browser_s, client_s
    finally:
        api.post(f"/notebook/{nb['id']}/halt")
        ended = wait_notebook(api, nb["id"], ENDED, timeout=120)
        print(f"notebook halted: {ended['status']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trainings", type=int, default=1000,
                        help="pending trainings for the Trainings panel; 0 skips that part")
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = tempfile.mkdtemp(prefix="kqi-panels-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    state = os.path.join(workdir, "state")
    platform = launch_platform(state, timeout=120)
    lab = direct_lab = api = blocker = None
    print(f"{os.cpu_count()} cores; load at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        api, git, dataset = prepare(platform, workdir)
        big = os.path.join(workdir, "big.bin")
        make_file(big, args.size_mib * 1024 * 1024)
        size = os.path.getsize(big)
        mib = size / 2**20
        with sync_playwright() as p:
            # first, while the tenant's one core is free for the notebook
            hub_browser_s, hub_client_s = time_hub_uploads(p, platform, api, big)
            if args.trainings > 0:
                blocker = submit_trainings(api, git, dataset, args.trainings)
            lab = start_jupyterlab(os.path.join(workdir, "lab"), platform.url + "/services/kqi", api.token)
            time_list_calls(api, lab)
            browser = chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            same_origin_service(page, lab, platform.url)
            if args.trainings > 0:
                time_trainings_panel(page, lab, args.trainings)
            else:
                page.goto(lab.lab_url)
            routed_s = time_browser_upload(page, big)
            browser.close()
            direct_lab = start_jupyterlab(os.path.join(workdir, "lab2"), platform.url + "/services/kqi", api.token,
                                          extra_config="c.KqiLabApp.forward_host = False\n")
            browser = chromium(p, ["--disable-web-security"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(direct_lab.lab_url)
            browser_s = time_browser_upload(page, big)
            browser.close()
        client_s = time_client_upload(platform.url + "/services/kqi", api.token, big)
        print(f"upload of {mib:.0f} MiB: browser (Data panel) {browser_s:.1f} s = {mib / browser_s:.0f} MiB/s; "
              f"kqi_services.client {client_s:.1f} s = {mib / client_s:.0f} MiB/s; "
              f"browser/client time ratio {browser_s / client_s:.2f}; "
              f"browser through Playwright's interception {routed_s:.1f} s = {mib / routed_s:.0f} MiB/s")
        print(f"upload of {mib:.0f} MiB through the hub (notebook's Data panel, same origin): "
              f"browser {hub_browser_s:.1f} s = {mib / hub_browser_s:.0f} MiB/s; "
              f"kqi_services.client {hub_client_s:.1f} s = {mib / hub_client_s:.0f} MiB/s; "
              f"browser/client speed {hub_client_s / hub_browser_s:.0%} (goal >= 50%)")
    finally:
        for server in (lab, direct_lab):
            if server is not None:
                server.stop()
        if api is not None and blocker is not None:  # runs outlive the service: end the blocker and what it held back
            for run in api.get("/training", params={"Status": "Running"}).json() + [blocker]:
                api.post(f"/training/{run['id']}/halt")
        children = _process_tree(platform.process.pid)
        platform.stop()
        end_runs(state)
        time.sleep(1)
        left = [pid for pid in children if alive(pid)]
        print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{'no leftover processes' if not left else f'LEFT RUNNING: {left}'}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
