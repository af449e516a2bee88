"""JupyterLab through the hub, in a real browser, as a platform user works.

Debian's chromium (through Playwright) logs in on the hub's own login page,
starts a notebook from /hub/home with our options form, follows the spawn
page into JupyterLab at /user/NAME/SERVER/lab, and uses what that JupyterLab
brings: the KQI panels (served by the notebook's own server extension with
the notebook's own token, in its tenant: no kqi login in the browser) and
the ``%kqi`` magics preloaded in its kernels. Each step is checked where
the user sees it and again through the API.
"""

from __future__ import annotations

import json
import re

import pytest
from browser import chromium, kqi_panel
from conftest import ENDED, unique, wait_notebook, wait_until

pytestmark = pytest.mark.platform

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

PASSWORD = "user-pass-123"  # new_user's default, which the lab fixture uses


@pytest.fixture
def user(lab):  # noqa: F811
    """The lab fixture's member, with what a person types on the login page."""
    return {"name": lab["api"].get("/account").json()["userName"], "password": PASSWORD}


@pytest.fixture
def browser_page():
    with playwright_sync.sync_playwright() as p:
        browser = chromium(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def halt_at_end(lab):  # noqa: F811
    """Halts every notebook of the lab fixture's (fresh) tenant after the test, whatever happened."""
    yield
    api = lab["api"]
    active = [n["id"] for n in api.get("/notebook", params={"perPage": 500}).json() if n["status"] in ("Pending", "Running")]
    for nb_id in active:
        api.post(f"/notebook/{nb_id}/halt")
    for nb_id in active:
        wait_notebook(api, nb_id, ENDED, timeout=60)


#: the spawn page follows the hub's progress with an EventSource; this hands each event to the test
RECORD_PROGRESS = """
(() => {
  const Original = window.EventSource;
  if (!Original) return;
  window.EventSource = function (url, init) {
    const source = new Original(url, init);
    source.addEventListener('message', e => window.kqiTestProgress(e.data));
    return source;
  };
  window.EventSource.prototype = Original.prototype;
})();
"""


def hub_login(page, platform, user) -> None:
    """The hub's login page, filled in as a person does; lands on /hub/home."""
    page.goto(platform.url + "/hub/login")
    page.locator("#username_input").fill(user["name"])
    page.locator("#password_input").fill(user["password"])
    page.locator("#login_submit").click()
    page.wait_for_url("**/hub/home")
    expect(page.locator("#login_widget")).to_contain_text(user["name"])


def find_notebook(api, name: str) -> dict:
    return wait_until(lambda: [n for n in api.get("/notebook", params={"Name": name}).json() if n["name"] == name],
                      30, f"the notebook record {name}")[0]


def start_from_home(page, platform, user, server: str, form: dict) -> list[str]:
    """Adds a named server on /hub/home, starts it with our options form, follows the spawn page to the lab.

    Returns the progress messages the spawn page received.
    """
    page.goto(platform.url + "/hub/home")
    page.locator(".new-server-name").fill(server)
    page.locator(".new-server-btn").click()
    row = page.locator(f'tr.home-server-row[data-server-name="{server}"]')
    row.locator(".start-server").click()
    page.wait_for_url(f"**/hub/spawn/{user['name']}/{server}")
    for field, value in form.items():
        box = page.locator(f"#kqi-{field}")
        if box.evaluate("e => e.tagName") == "SELECT":  # the pickers (dataset, git, registry, partition)
            box.select_option(str(value))
        else:
            box.fill(str(value))
    events: list[dict] = []
    page.expose_function("kqiTestProgress", lambda data: events.append(json.loads(data)))
    page.add_init_script(RECORD_PROGRESS)
    page.locator('form button[type="submit"]').click()
    page.wait_for_url(f"**/hub/spawn-pending/{user['name']}/{server}**")
    page.wait_for_url(f"**/user/{user['name']}/{server}/lab**", timeout=120_000)
    return [e.get("message", "") for e in events]


def test_notebook_from_hub_home_and_the_panels_in_it(platform, lab, user, browser_page, halt_at_end,  # noqa: F811
                                                     tmp_path):
    page, api = browser_page, lab["api"]
    hub_login(page, platform, user)
    server = unique("home")[:20]
    messages = start_from_home(page, platform, user, server,
                               {"cpu": 1, "memory": 1, "lifetime": 1, "memo": "from the hub's form",
                                "dataset": lab["dataset"]["id"]})
    assert any("starting" in m for m in messages), messages
    assert any("ready" in m.lower() for m in messages), messages
    first = find_notebook(api, server)
    # the hub said ready; the engine marks it Running at its next look at the hub (a second, more under load)
    first = wait_notebook(api, first["id"], ("Running",) + ENDED, timeout=30)
    assert first["status"] == "Running" and first["memo"] == "from the hub's form"
    assert (first["cpu"], first["memory"], first["expiresIn"]) == (1, 1, 3600)
    assert first["dataSet"]["id"] == lab["dataset"]["id"]
    # JupyterLab's root is /kqi/output, with the staged input
    expect(page.locator(".jp-DirListing-item", has_text="input")).to_be_visible(timeout=60_000)

    # Data: the tenant's data, through the notebook's own token (no login in the lab)
    data = kqi_panel(page, "Data")
    expect(data.locator(".kqi-tenant-select")).to_have_value(str(lab["tenant"]["id"]))
    expect(data.locator(".kqi-row", has_text=lab["data"]["name"])).to_be_visible()
    count = len(api.get("/data").json())
    expect(data.locator(".kqi-list-count")).to_have_text(f"{count} item" + ("s" if count != 1 else ""))

    # an upload from the panel goes to the service at the page's own origin (the hub's proxy), for real
    small = tmp_path / "notes.txt"
    small.write_text("uploaded through the hub\n")
    data.locator(".kqi-new").click()
    name = unique("hub-data")
    data.locator(".kqi-data-name").fill(name)
    data.locator(".kqi-file-input").set_input_files(str(small))
    expect(data.locator(".kqi-upload-done")).to_have_text("uploaded", timeout=60_000)
    data.locator(".kqi-create-data").click()
    expect(data.locator(".kqi-row", has_text=name)).to_be_visible()
    (made,) = [d for d in api.get("/data", params={"Name": name}).json() if d["name"] == name]
    assert [f["fileName"] for f in api.get(f"/data/{made['id']}/files").json()] == ["notes.txt"]

    # Notebooks: this one, marked, with its remaining lifetime (under the hour it was given)
    notebooks = kqi_panel(page, "Notebooks")
    this_row = notebooks.locator(".kqi-row", has_text=server)
    expect(this_row.locator(".kqi-status")).to_have_text("Running")
    expect(this_row.locator(".kqi-nb-this")).to_be_visible()
    expect(this_row.locator(".kqi-remaining")).to_have_text(re.compile(r"^0h [0-5]\dm [0-5]\ds$"))

    # run a second notebook from the panel
    second = unique("panel")[:20]
    notebooks.locator(".kqi-new").click()
    form = notebooks.locator(".kqi-new-notebook")
    form.locator(".kqi-nb-name").fill(second)
    # this tenant does not allow notebooks without a lifetime: no "0 = unlimited", and 0 h cannot be sent
    expect(form).not_to_contain_text("unlimited")
    form.locator(".kqi-nb-hours").fill("0")
    expect(form.locator(".kqi-nb-run")).to_be_disabled()
    form.locator(".kqi-nb-hours").fill("2")
    form.locator(".kqi-nb-memo").fill("from the panel")
    form.locator(".kqi-nb-run").click()
    details = notebooks.locator(".kqi-notebook-details")
    expect(details).to_contain_text(second)
    created = find_notebook(api, second)
    created = api.get(f"/notebook/{created['id']}").json()
    assert created["memo"] == "from the panel" and created["expiresIn"] == 7200
    expect(details.locator(".kqi-status")).to_have_text("Running", timeout=120_000)
    expect(details.locator(".kqi-remaining")).to_have_text(re.compile(r"^1h 5\dm [0-5]\ds$"))
    expect(details.locator(".kqi-nb-url")).to_have_text(f"/user/{user['name']}/{second}/lab")
    row = notebooks.locator(".kqi-row", has_text=second)
    expect(row.locator(".kqi-status")).to_have_text("Running")  # the list follows
    expect(row.locator(".kqi-remaining")).to_have_text(re.compile(r"^1h 5\dm [0-5]\ds$"))

    # open it: its own JupyterLab through the hub, in a new tab
    with page.context.expect_page() as popup:
        details.locator(".kqi-nb-open").click()
    opened = popup.value
    opened.wait_for_url(f"**/user/{user['name']}/{second}/lab**", timeout=60_000)
    expect(opened.locator('.lm-TabBar-tab[title="KQI Notebooks"]')).to_be_attached(timeout=60_000)
    opened.close()

    # halt it, then rerun it: the panel and the API agree
    details.locator(".kqi-nb-halt").click()
    expect(details.locator(".kqi-status")).to_have_text("Killed", timeout=60_000)
    assert api.get(f"/notebook/{created['id']}").json()["status"] == "Killed"
    expect(details.locator(".kqi-remaining")).to_have_text("")
    expect(details.locator(".kqi-nb-open")).to_be_disabled()
    # Rerun opens a form prefilled from the notebook; what it changes reaches the service
    details.locator(".kqi-nb-rerun").click()
    rerun_form = details.locator(".kqi-rerun-notebook")
    expect(rerun_form.locator(".kqi-rr-cpu")).to_have_value("1")
    expect(rerun_form.locator(".kqi-rr-memory")).to_have_value("1")
    expect(rerun_form.locator(".kqi-rr-hours")).to_have_value("2")
    rerun_form.locator(".kqi-rr-cpu").fill("2")  # on a small node it waits for the first notebook's core
    rerun_form.locator(".kqi-rr-run").click()
    expect(rerun_form).to_have_count(0)
    expect(details.locator(".kqi-status")).to_have_text(re.compile(r"^(Pending|Running)$"))
    rerun = api.get(f"/notebook/{created['id']}").json()
    assert (rerun["cpu"], rerun["memory"], rerun["expiresIn"]) == (2, 1, 7200), rerun
    assert rerun["status"] in ("Pending", "Running"), rerun
    details.locator(".kqi-nb-halt").click()
    wait_notebook(api, created["id"], ENDED)
    # and back to one core: it runs again, with the lifetime it was given
    details.locator(".kqi-nb-rerun").click()
    expect(rerun_form.locator(".kqi-rr-cpu")).to_have_value("2")
    rerun_form.locator(".kqi-rr-cpu").fill("1")
    rerun_form.locator(".kqi-rr-run").click()
    expect(details.locator(".kqi-status")).to_have_text("Running", timeout=120_000)
    rerun = api.get(f"/notebook/{created['id']}").json()
    assert rerun["status"] == "Running" and rerun["remainingSeconds"] > 7000 and rerun["cpu"] == 1
    expect(notebooks.locator(".kqi-row", has_text=second).locator(".kqi-status")).to_have_text("Running")
    expect(notebooks.locator(".kqi-error")).to_have_count(0)

    # an API error is shown as the service words it: this notebook's name is taken while it runs
    notebooks.locator(".kqi-new").click()
    form.locator(".kqi-nb-name").fill(server)
    form.locator(".kqi-nb-run").click()
    error = notebooks.locator(".kqi-error")
    expect(error).to_contain_text("is running")
    expect(error).to_contain_text("(409)")
    assert len([n for n in api.get("/notebook").json() if n["name"] == server]) == 1


def test_kqi_magics_preloaded_in_a_notebook_opened_from_the_api(platform, lab, user, browser_page,  # noqa: F811
                                                                 halt_at_end):
    page, api = browser_page, lab["api"]
    r = api.post("/notebook/run", {"name": unique("magic")[:20], "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 900})
    assert r.status_code == 201, r.text
    nb = r.json()
    wait_notebook(api, nb["id"], ("Running",) + ENDED)
    url = api.get(f"/notebook/{nb['id']}/endpoint").json()["url"]
    assert url == f"/user/{user['name']}/{nb['name']}/lab"
    hub_login(page, platform, user)
    page.goto(platform.url + url)
    page.wait_for_url(f"**{url}**", timeout=60_000)

    page.locator('.lm-TabBar-tab[title="KQI Data"]').wait_for(timeout=60_000)  # the lab has loaded
    launcher = page.locator('.jp-LauncherCard[data-category="Notebook"]').first
    try:
        launcher.wait_for(timeout=10_000)  # a fresh server opens on the launcher
    except playwright_sync.TimeoutError:
        page.locator(".lm-TabBar-addButton:not(.lm-mod-hidden)").first.click()
    launcher.click()
    expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle")).to_be_visible(timeout=60_000)
    cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
    cells.first.locator(".cm-content").click()
    page.keyboard.type("%kqi data list")
    expect(cells.first.locator(".cm-content")).to_have_text("%kqi data list")
    page.keyboard.press("Shift+Enter")
    output = cells.nth(0).locator(".jp-OutputArea-output")
    expect(output).to_contain_text(lab["data"]["name"], timeout=60_000)
    expect(output).to_contain_text(f"'id': {lab['data']['id']}")
    expect(cells.nth(0).locator(".jp-InputPrompt")).to_have_text("[1]:")

    page.keyboard.type("r = %kqi data list\nprint(type(r).__name__, len(r), [d['id'] for d in r])")
    page.keyboard.press("Shift+Enter")
    ids = [d["id"] for d in api.get("/data").json()]
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_have_text(f"list {len(ids)} {ids}", timeout=60_000)
