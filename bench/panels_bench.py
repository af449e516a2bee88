"""Lab panels benchmark: the Trainings panel with 1,000 trainings, and a browser upload vs the client's.

Run: ``.venv/bin/python bench/panels_bench.py [--trainings 1000] [--size-mib 1024]``

With a platform started as the tests start it and a JupyterLab with our
extensions (``tests/browser.py``), in Debian's chromium:

* 1,000 pending trainings (a tenant whose CPU quota is taken by one running
  ``sleep``, so the rest queue); the time from clicking the Trainings tab
  until the list shows its count and first rows, and until a scroll to the
  end shows the last rows (each a page fetched from the service);
* a file of ``--size-mib`` MiB uploaded from the Data panel (parameter
  through the server extension, 16 MiB parts PUT by the browser, 4 at once),
  until the panel says "uploaded": once with the parts PUT straight to the
  service (a second lab with ``forward_host`` off, and chromium with
  ``--disable-web-security`` standing in for the hub proxy's same origin),
  once through the tests' Playwright interception (a harness cost, not the
  product's);
* the same file through ``kqi_services.client`` (what the ``kqi`` CLI does).

Prints the figures; asserts nothing.
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

from browser import chromium, same_origin_service, start_jupyterlab  # noqa: E402
from conftest import launch_platform  # noqa: E402
from jobs_bench import make_repo  # noqa: E402
from test_data_api import upload  # noqa: E402
from upload_bench import make_file  # noqa: E402

from kqi_services.client import KqiClient  # noqa: E402


def prepare(platform, workdir: str, trainings: int) -> tuple:
    """A tenant with a git endpoint and a dataset, one running blocker and ``trainings`` pending runs."""
    admin = platform.api().login("admin", platform.admin_password)
    repos, _ = make_repo(os.path.join(workdir, "git"))
    git = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0, "repositoryUrl": f"file://{repos}",
                                              "apiUrl": f"file://{repos}"}).json()
    tenant = admin.post("/admin/tenants", {"tenantName": "bench", "displayName": "Bench", "gitIds": [1, git["id"]],
                                           "defaultGitId": git["id"], "registryIds": [1], "storageId": 1}).json()
    admin.post("/admin/users", {"name": "bencher", "password": "bench-pass-123", "systemRoles": [],
                                "tenants": [{"id": tenant["id"]}]})
    admin.post("/admin/quotas", [{"tenantId": tenant["id"], "cpu": 1}])
    api = platform.api().login("bencher", "bench-pass-123")
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    dataset = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()

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
    return api, blocker


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


def time_browser_upload(page, lab, path: str) -> float:
    panel = page.locator("#kqi-data")
    page.locator('.lm-TabBar-tab[title="KQI Data"]').click()
    panel.locator(".kqi-new").click()
    panel.locator(".kqi-data-name").fill("big")
    start = time.perf_counter()
    panel.locator(".kqi-file-input").set_input_files(path)
    panel.locator(".kqi-upload-done").wait_for(timeout=1_800_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trainings", type=int, default=1000)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = tempfile.mkdtemp(prefix="kqi-panels-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    platform = launch_platform(os.path.join(workdir, "state"), timeout=120)
    lab = direct_lab = api = blocker = None
    try:
        api, blocker = prepare(platform, workdir, args.trainings)
        lab = start_jupyterlab(os.path.join(workdir, "lab"), platform.url + "/services/kqi", api.token)
        time_list_calls(api, lab)
        big = os.path.join(workdir, "big.bin")
        make_file(big, args.size_mib * 1024 * 1024)
        size = os.path.getsize(big)
        with sync_playwright() as p:
            browser = chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            same_origin_service(page, lab, platform.url)
            time_trainings_panel(page, lab, args.trainings)
            routed_s = time_browser_upload(page, lab, big)
            browser.close()
            direct_lab = start_jupyterlab(os.path.join(workdir, "lab2"), platform.url + "/services/kqi", api.token,
                                          extra_config="c.KqiLabApp.forward_host = False\n")
            browser = chromium(p, ["--disable-web-security"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(direct_lab.lab_url)
            browser_s = time_browser_upload(page, direct_lab, big)
            browser.close()
        client = KqiClient(platform.url + "/services/kqi", api.token, timeout=300)
        start = time.perf_counter()
        client.upload(big, "Data")
        client_s = time.perf_counter() - start
        mib = size / 2**20
        print(f"upload of {mib:.0f} MiB: browser (Data panel) {browser_s:.1f} s = {mib / browser_s:.0f} MiB/s; "
              f"kqi_services.client {client_s:.1f} s = {mib / client_s:.0f} MiB/s; "
              f"browser/client time ratio {browser_s / client_s:.2f}; "
              f"browser through Playwright's interception {routed_s:.1f} s = {mib / routed_s:.0f} MiB/s")
    finally:
        for server in (lab, direct_lab):
            if server is not None:
                server.stop()
        if api is not None:  # runs outlive the service: end the blocker and what it held back
            for run in api.get("/training", params={"Status": "Running"}).json() + ([blocker] if blocker else []):
                api.post(f"/training/{run['id']}/halt")
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
