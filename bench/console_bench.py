"""Console benchmark: first load of the KQI console, and its Trainings screen with 1,000 trainings.

Run: ``.venv/bin/python bench/console_bench.py [--trainings 1000]``

With a platform started as the tests start it, in Debian's chromium signed in
on the hub's login page:

* first load: from ``goto /services/kqi/trainings`` (the OAuth cookie already
  set, a cold browser cache) until the header and the trainings' count show,
  five times (a fresh browser context each, so nothing is cached), against
  the hub's own ``/hub/home`` loaded the same way — the page a user sees
  today after logging in;
* the Trainings screen with N pending trainings (the tenant's one core taken
  by a running ``sleep``): from clicking the menu's Trainings until the count
  and the first rows show; then a scroll to the end until the last rows show
  (each a page fetched from the service), as ``panels_bench.py`` measures the
  JupyterLab panel.

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from browser import chromium  # noqa: E402
from conftest import launch_platform  # noqa: E402
from panels_bench import PASSWORD, USER, prepare, submit_trainings  # noqa: E402
from test_lab_in_hub import hub_login  # noqa: E402


def timed_load(browser, platform, path: str, ready: str, runs: int = 5) -> list[float]:
    """Seconds from goto(path) until ``ready`` shows, each in a fresh context (cold cache) after a login."""
    times = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        hub_login(page, platform, {"name": USER, "password": PASSWORD})
        page.goto(platform.url + "/services/kqi/settings")  # the service's OAuth cookie, once
        page.locator(".kqi-console-brand").wait_for()
        page.goto("about:blank")
        context.clear_cookies(name="_xsrf")
        start = time.perf_counter()
        page.goto(platform.url + path)
        page.locator(ready).first.wait_for()
        times.append(time.perf_counter() - start)
        context.close()
    return times


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trainings", type=int, default=1000)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-console-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    platform = launch_platform(os.path.join(workdir, "state"))
    blocker = None
    try:
        api, git, dataset = prepare(platform, workdir)
        blocker = submit_trainings(api, git, dataset, args.trainings)
        with sync_playwright() as p:
            browser = chromium(p)
            console = timed_load(browser, platform, "/services/kqi/trainings", ".kqi-list-count")
            hub = timed_load(browser, platform, "/hub/home", "#start")
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            hub_login(page, platform, {"name": USER, "password": PASSWORD})
            page.goto(platform.url + "/services/kqi/data")
            page.locator(".kqi-list-count").wait_for()
            start = time.perf_counter()
            page.locator(".kqi-console-menu").get_by_role("link", name="Trainings", exact=True).click()
            page.locator(".kqi-list-count", has_text=f"{args.trainings + 1} items").wait_for()
            page.locator(".kqi-row", has_text=f"run-{args.trainings}").first.wait_for()
            opened = time.perf_counter() - start
            start = time.perf_counter()
            page.locator(".kqi-list").evaluate("el => el.scrollTop = el.scrollHeight")
            page.locator(".kqi-row", has_text="run-0").wait_for()
            scrolled = time.perf_counter() - start
            browser.close()
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        print(f"first console load (/services/kqi/trainings, cold cache, {args.trainings + 1} trainings): "
              f"median {med(console) * 1000:.0f} ms, max {max(console) * 1000:.0f} ms (goal < 1500 ms)")
        print(f"the hub's /hub/home loaded the same way: median {med(hub) * 1000:.0f} ms")
        print(f"Trainings screen, {args.trainings + 1} trainings: open + first rows {opened * 1000:.0f} ms "
              f"(goal < 1000 ms); scroll to the end + last rows {scrolled * 1000:.0f} ms")
    finally:
        if blocker is not None:
            api.post(f"/training/{blocker['id']}/halt")
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
