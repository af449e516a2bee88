"""The KQI console at /services/kqi/, in a real browser, as people use it: no notebook anywhere.

Debian's chromium (through Playwright) logs in on the hub's login page and
opens the console. A system admin creates a tenant and a user on the Admin
screens; that user logs in, sees no admin menu (and the admin URLs and API
refuse them), sets a git token on Settings, opens a training's details by
its URL, follows its log and output, and halts a running one after the
confirmation. Each step is checked where the user sees it and again through
the API. Screenshots of the main screens go to ``build/screenshots/console``
(build artifacts, not committed).
"""

from __future__ import annotations

import os
import re

import pytest
import requests
from browser import chromium
from conftest import REPO, submit, unique, wait_for

pytestmark = pytest.mark.platform

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

PASSWORD = "user-pass-123"
SHOTS = os.path.join(REPO, "build", "screenshots", "console")


@pytest.fixture
def browser():
    with playwright_sync.sync_playwright() as p:
        b = chromium(p)
        yield b
        b.close()


def new_page(browser, width=1280, height=800):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def login(page, platform, name, password):
    page.goto(platform.url + "/hub/login")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(password)
    page.locator("#login_submit").click()
    page.wait_for_url("**/hub/home")


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def test_admin_makes_a_tenant_and_a_user_who_then_works_in_the_console(platform, admin, git_endpoint, browser,
                                                                       tmp_path):
    page = new_page(browser)
    login(page, platform, "admin", platform.admin_password)
    page.goto(platform.url + "/services/kqi/")
    expect(page.locator(".kqi-console-brand")).to_have_text("KQI Hub")
    expect(page.locator(".kqi-console-menu")).to_contain_text("Admin")

    # Admin → Tenants → New: a tenant with the file:// git endpoint and the local storage
    page.locator(".kqi-console-menu a", has_text="Admin").click()
    page.wait_for_url("**/services/kqi/admin/tenants")
    tenant_name = unique("ct")
    page.locator(".kqi-new").click()
    form = page.locator(".kqi-entity-form")
    form.locator("#kqi-f-tenantName").fill(tenant_name)
    form.locator("#kqi-f-displayName").fill("Console tenant")
    form.locator(f'#kqi-f-gitIds input[value="{git_endpoint["id"]}"]').check()
    form.locator("#kqi-f-defaultGitId").select_option(str(git_endpoint["id"]))
    form.locator("#kqi-f-storageId").select_option("1")
    form.locator(".kqi-submit").click()
    expect(page.locator(".kqi-saved")).to_contain_text("Created")
    expect(page.locator(".kqi-admin-row", has_text=tenant_name)).to_be_visible()
    (tenant,) = [t for t in admin.get("/admin/tenants").json() if t["name"] == tenant_name]
    details = admin.get(f"/admin/tenants/{tenant['id']}").json()
    assert (details["displayName"], details["gitIds"], details["defaultGitId"], details["storageId"]) == (
        "Console tenant", [git_endpoint["id"]], git_endpoint["id"], 1)
    shot(page, "admin-tenants")

    # Admin → Users → New: a member of that tenant
    page.locator(".kqi-console-submenu a", has_text="Users").click()
    page.wait_for_url("**/services/kqi/admin/users")
    user_name = unique("cu")
    page.locator(".kqi-new").click()
    form = page.locator(".kqi-entity-form")
    form.locator("#kqi-f-name").fill(user_name)
    form.locator("#kqi-f-password").fill(PASSWORD)
    form.locator(f'#kqi-f-tenants tr[data-id="{tenant["id"]}"] .kqi-member').check()
    form.locator(".kqi-submit").click()
    expect(page.locator(".kqi-admin-row", has_text=user_name)).to_contain_text(tenant_name)
    (made,) = [u for u in admin.get("/admin/users").json() if u["name"] == user_name]
    assert made["systemRoles"] == [] and [(t["id"], t["default"]) for t in made["tenants"]] == [(tenant["id"], True)]
    shot(page, "admin-users")
    assert page.errors == []

    # that user logs in and works in the console: no admin menu, admin URLs refused
    member = platform.api().login(user_name, PASSWORD)
    page = new_page(browser)
    login(page, platform, user_name, PASSWORD)
    page.goto(platform.url + "/services/kqi/")
    page.wait_for_url("**/services/kqi/")
    expect(page.locator(".kqi-console-header .kqi-tenant-select")).to_have_value(str(tenant["id"]))
    expect(page.locator(".kqi-console-menu")).not_to_contain_text("Admin")
    page.goto(platform.url + "/services/kqi/admin/users")
    expect(page.locator(".kqi-console-main")).to_contain_text("Only system admins")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = requests.get(platform.api_base + "/admin/users", cookies=cookies, timeout=30)
    assert refused.status_code == 403 and refused.json()["status"] == 403

    # Settings: a git token for the tenant's endpoint (never shown back on the page)
    page.locator(".kqi-console-menu a", has_text="Settings").click()
    row = page.locator(".kqi-settings-gits .kqi-secret-row").first  # the tenant has one git endpoint
    expect(row.locator(".kqi-secret-state")).to_have_text("not set")
    row.locator(".kqi-secret-token").fill("console-git-token")
    row.locator("button", has_text="Save").click()
    expect(row.locator(".kqi-secret-state")).to_have_text("set")
    assert "console-git-token" not in page.content()
    gits = member.get("/account/gits").json()["gits"]
    assert [g["token"] for g in gits if g["id"] == git_endpoint["id"]] == ["console-git-token"]
    expect(page.locator(".kqi-cli-login")).to_have_text(
        f"kqi account login -s {platform.url}/services/kqi -u {user_name}")
    shot(page, "settings")
    assert page.errors == []


def test_a_training_opens_by_its_url_with_its_log_and_halts_after_a_confirmation(platform, lab, browser):
    api = lab["api"]
    done = submit(lab, "echo from-the-console; echo out > /kqi/output/result.txt")
    assert wait_for(api, done["id"])["status"] == "Completed"
    page = new_page(browser)
    login(page, platform, api.get("/account").json()["userName"], PASSWORD)

    # a bookmarked detail URL opens that training, its log and its output
    page.goto(f"{platform.url}/services/kqi/trainings/{done['id']}")
    details = page.locator(".kqi-training-details")
    expect(details.locator(".kqi-status")).to_have_text("Completed")
    expect(details).to_contain_text(done["name"])
    expect(details.locator(".kqi-log")).to_contain_text("from-the-console")
    link = details.locator("a", has_text="result.txt")
    with page.expect_download() as download:
        link.click()
    assert open(download.value.path()).read() == "out\n"
    # the log the platform kept, attached as the original names it
    expect(details.locator(".kqi-attached")).to_contain_text(f"training_stdout_stderr_{done['id']}.log")
    shot(page, "training-details")

    # copy-run: the New form starts from this training's settings
    details.locator(".kqi-copy-run").click()
    form = page.locator(".kqi-new-training")
    expect(form.locator(".kqi-field-entryPoint")).to_have_value(
        "echo from-the-console; echo out > /kqi/output/result.txt")
    copy_name = unique("copied")[:30]
    form.locator(".kqi-field-name").fill(copy_name)
    form.locator(".kqi-submit").click()
    expect(details).to_contain_text(copy_name)
    (copied,) = [t for t in api.get("/training", params={"Name": copy_name}).json() if t["name"] == copy_name]
    assert wait_for(api, copied["id"])["status"] == "Completed"
    assert api.get(f"/training/{copied['id']}").json()["entryPoint"] == done["entryPoint"]

    # selecting another row puts it in the URL; back returns to the first
    running = submit(lab, "sleep 300")
    wait_for(api, running["id"], statuses=("Running",))
    page.locator(".kqi-panel button", has_text="Reload").click()
    page.locator(".kqi-row", has_text=running["name"]).click()
    page.wait_for_url(f"**/services/kqi/trainings/{running['id']}")
    expect(details.locator(".kqi-status")).to_have_text("Running")

    # halt asks first: dismissed, nothing happens; accepted, the training is Killed
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    details.locator(".kqi-halt").click()
    assert api.get(f"/training/{running['id']}").json()["status"] == "Running"
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    details.locator(".kqi-halt").click()
    expect(details.locator(".kqi-status")).to_have_text("Killed", timeout=30_000)
    assert api.get(f"/training/{running['id']}").json()["status"] == "Killed"
    assert asked == [f"Halt training {running['id']} ({running['name']})? Its command is stopped."] * 2

    # the menu's screens, at 1280×800 and in a narrow window
    for section in ("data", "datasets", "preprocessing", "inference", "notebooks"):
        page.locator(".kqi-console-menu").get_by_role("link", name=section.capitalize(), exact=True).click()
        page.wait_for_url(f"**/services/kqi/{section}")
        expect(page.locator(".kqi-console-main h2").first).to_be_visible()
        shot(page, section)
    narrow = new_page(browser, width=600, height=900)
    login(narrow, platform, api.get("/account").json()["userName"], PASSWORD)
    narrow.goto(f"{platform.url}/services/kqi/trainings/{done['id']}")
    expect(narrow.locator(".kqi-training-details .kqi-status")).to_have_text("Completed")
    assert narrow.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # nothing clipped off
    shot(narrow, "training-narrow")
    assert page.errors == [] and narrow.errors == []


def test_the_landing_answers_json_to_api_clients_and_the_page_to_browsers(platform, lab):
    from conftest import hub_login

    s = hub_login(platform, lab["api"].get("/account").json()["userName"], PASSWORD)
    data = s.get(platform.url + "/services/kqi/", timeout=30)
    assert data.status_code == 200 and data.json()["console"] == "/services/kqi/"
    page = s.get(platform.url + "/services/kqi/trainings/7", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and 'id="kqi-console"' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = page.text.split('<script src="')[1].split('"')[0]
    bundle = requests.get(platform.url + script, timeout=30)
    assert bundle.status_code == 200 and "javascript" in bundle.headers["Content-Type"]
    assert requests.get(platform.url + "/services/kqi/static/console/../../../etc/passwd", timeout=30).status_code \
        in (403, 404)


def test_the_hubs_pages_lead_to_the_console(platform, lab):
    """The hub's nav bar and home lead to the console; its admin page sends user and tenant management there."""
    from conftest import hub_login

    s = hub_login(platform, lab["api"].get("/account").json()["userName"], PASSWORD)
    home = s.get(platform.url + "/hub/home", timeout=30)
    assert home.status_code == 200
    assert 'id="kqi-console-link" href="/services/kqi/"' in home.text and 'id="kqi-console-banner"' in home.text
    admin = hub_login(platform, "admin", platform.admin_password)
    page = admin.get(platform.url + "/hub/admin", timeout=30)
    assert page.status_code == 200 and 'id="kqi-admin-notice"' in page.text
    assert 'href="/services/kqi/admin/users"' in page.text and 'id="react-admin-hook"' in page.text



def test_a_tenant_manager_manages_the_tenants_members_and_a_plain_member_cannot(platform, new_tenant, new_user,
                                                                                browser):
    tenant, other = new_tenant(), new_tenant()
    manager = new_user([{"id": tenant["id"], "default": True, "roles": [2, 3]}])
    member = new_user([{"id": tenant["id"], "default": True, "roles": [2]}, {"id": other["id"]}])
    outsider = new_user([{"id": other["id"], "default": True, "roles": [2, 3]}])
    page = new_page(browser)
    login(page, platform, manager["name"], PASSWORD)
    page.goto(platform.url + "/services/kqi/")
    page.locator(".kqi-console-menu").get_by_role("link", name="Members", exact=True).click()
    page.wait_for_url("**/services/kqi/members")
    rows = page.locator(".kqi-member-row")
    expect(rows).to_have_count(2)  # this tenant's members only
    expect(page.locator(".kqi-members")).not_to_contain_text(outsider["name"])
    rows.filter(has_text=member["name"]).locator(".kqi-toggle-manager").click()
    expect(page.locator(".kqi-saved")).to_contain_text(f"{member['name']} now manages")
    api = platform.api().login(manager["name"], PASSWORD)
    (listed,) = [u for u in api.get("/tenant/users").json() if u["name"] == member["name"]]
    assert sorted(r["id"] for r in listed["roles"]) == [2, 3]
    shot(page, "members")

    # a plain member of the other tenant: no Members menu there, and the API refuses the change
    plain = new_user([{"id": other["id"], "default": True, "roles": [2]}])
    page = new_page(browser)
    login(page, platform, plain["name"], PASSWORD)
    page.goto(platform.url + "/services/kqi/members")
    expect(page.locator(".kqi-console-main")).to_contain_text("Only the tenant's managers")
    expect(page.locator(".kqi-console-menu")).not_to_contain_text("Members")
    plain_api = platform.api().login(plain["name"], PASSWORD)
    r = plain_api.put(f"/tenant/users/{outsider['id']}/roles", [2])
    assert r.status_code == 403 and r.json()["status"] == 403
    assert page.errors == []


def test_a_training_picked_entirely_from_the_forms_pickers(platform, lab, browser):
    """New training: the dataset by name, the git endpoint preselected, owner, repository, branch and commit offered
    by the endpoint's listings, the partition and the quota shown; the run is what was picked. (The image is typed:
    the tenant's registry is Docker Hub's, which no test here can reach; image and tag listings of a real registry
    are tested in test_docker_executor.py.)"""
    api = lab["api"]
    page = new_page(browser)
    login(page, platform, api.get("/account").json()["userName"], PASSWORD)
    page.goto(f"{platform.url}/services/kqi/trainings")
    page.locator(".kqi-panel .kqi-new").click()
    form = page.locator(".kqi-new-training")
    name = unique("picked")[:30]
    form.locator(".kqi-field-name").fill(name)
    form.locator(".kqi-field-dataSetId").select_option(str(lab["dataset"]["id"]))
    expect(form.locator(".kqi-field-gitId")).to_have_value(str(lab["git"]["id"]))

    def offered(field: str) -> list[str]:
        box = form.locator(f".kqi-field-{field}")
        return box.evaluate("e => Array.from(e.list ? e.list.options : []).map(o => o.value)")

    def pick(field: str, value: str) -> None:
        page.wait_for_function(
            "([f, v]) => { const e = document.querySelector('.kqi-new-training .kqi-field-' + f);"
            " return !!e && !!e.list && Array.from(e.list.options).some(o => o.value === v); }", arg=[field, value])
        form.locator(f".kqi-field-{field}").fill(value)

    pick("owner", "kqi")
    pick("repository", "model")
    pick("branch", "master")
    commit = lab["git"]["commit"]
    pick("commitId", commit)
    assert offered("commitId")[0] == commit  # newest first
    expect(form.locator(".kqi-quota-note")).to_contain_text("Tenant quota")
    # the image: the tenant's registry is Docker Hub's, which cannot be listed here (no network): typed
    form.locator(".kqi-field-image").fill("python")
    form.locator(".kqi-field-tag").fill("3.11")
    form.locator(".kqi-field-entryPoint").fill("echo picked; git -C /kqi/git rev-parse HEAD")
    form.locator(".kqi-submit").click()
    details = page.locator(".kqi-training-details")
    page.wait_for_timeout(3000)
    assert page.locator(".kqi-error").count() == 0, page.locator(".kqi-error").all_inner_texts()
    expect(details).to_contain_text(name)
    (made,) = [t for t in api.get("/training", params={"Name": name}).json() if t["name"] == name]
    done = wait_for(api, made["id"])
    assert done["status"] == "Completed", done
    assert done["dataSet"]["id"] == lab["dataset"]["id"]
    assert (done["gitModel"]["gitId"], done["gitModel"]["owner"], done["gitModel"]["repository"],
            done["gitModel"]["commitId"]) == (lab["git"]["id"], "kqi", "model", commit)
    expect(details.locator(".kqi-log")).to_contain_text(commit)
    shot(page, "training-form")
    assert page.errors == []


def test_the_resource_screens_show_what_runs_where_and_stop_it(platform, lab, browser):
    """A running training is on Resources for its tenant and for the admin (with its node and log); the admin stops
    it there after the confirmation."""
    api = lab["api"]
    run = submit(lab, "echo resource-log; sleep 300")
    wait_for(api, run["id"], statuses=("Running",))
    page = new_page(browser)
    login(page, platform, api.get("/account").json()["userName"], PASSWORD)
    page.goto(platform.url + "/services/kqi/resources")
    row = page.locator(".kqi-container-row", has_text=run["name"])
    expect(row).to_contain_text("Running")
    row.locator(".kqi-container-log").click()
    expect(page.locator(".kqi-resources .kqi-log-text")).to_contain_text("resource-log")
    shot(page, "resources")

    admin_page = new_page(browser)
    login(admin_page, platform, "admin", platform.admin_password)
    admin_page.goto(platform.url + "/services/kqi/admin/resources")
    row = admin_page.locator(".kqi-container-row", has_text=run["name"])
    expect(row).to_contain_text(lab["tenant"]["name"])
    expect(admin_page.locator(".kqi-resource-nodes")).to_be_visible()
    admin_page.once("dialog", lambda dialog: dialog.accept())
    row.locator(".kqi-container-stop").click()
    expect(row).to_have_count(0, timeout=30_000)
    assert wait_for(api, run["id"])["status"] == "Killed"
    shot(admin_page, "admin-resources")
    assert page.errors == [] and admin_page.errors == []


def test_a_running_trainings_shell_is_a_real_terminal_in_the_console(platform, lab, browser):
    api = lab["api"]
    run = submit(lab, "sleep 300")
    wait_for(api, run["id"], statuses=("Running",))
    page = new_page(browser)
    login(page, platform, api.get("/account").json()["userName"], PASSWORD)
    page.goto(f"{platform.url}/services/kqi/trainings/{run['id']}")
    details = page.locator(".kqi-training-details")
    expect(details.locator(".kqi-status")).to_have_text("Running")
    details.get_by_role("button", name="Shell", exact=True).click()
    terminal = page.locator(".kqi-console-overlay .kqi-terminal")
    expect(terminal.locator(".kqi-shell-state")).to_contain_text("connected")
    page.locator(".kqi-console-overlay .xterm-helper-textarea").focus()
    page.keyboard.type("echo TRAINING=$TRAINING_ID; pwd; stty size\n")
    expect(terminal.locator(".xterm-rows")).to_contain_text(f"TRAINING={run['id']}", timeout=20_000)
    expect(terminal.locator(".xterm-rows")).to_contain_text("/kqi/git")
    screen = terminal.locator(".xterm-rows > div").all_inner_texts()
    sizes = [line.split() for line in screen if re.fullmatch(r"\s*\d+ \d+\s*", line.replace("\xa0", " "))]
    assert sizes and int(sizes[0][0]) > 10 and int(sizes[0][1]) > 40, screen  # the terminal's own size (stty)
    shot(page, "shell")
    page.locator(".kqi-console-close").click()
    api.post(f"/training/{run['id']}/halt")
    assert wait_for(api, run["id"])["status"] == "Killed"
    assert page.errors == []


def test_data_is_edited_and_its_files_added_and_removed_and_a_dataset_copied(platform, lab, browser, tmp_path):
    api = lab["api"]
    page = new_page(browser)
    login(page, platform, api.get("/account").json()["userName"], PASSWORD)
    data = lab["data"]
    page.goto(f"{platform.url}/services/kqi/data/{data['id']}")
    pane = page.locator(".kqi-detail-pane")
    expect(pane.locator(".kqi-files")).to_contain_text("x.csv")

    # edit its name, memo and tags
    pane.locator(".kqi-edit-data-open").click()
    new_name = unique("edited")
    pane.locator(".kqi-edit-name").fill(new_name)
    pane.locator(".kqi-edit-memo").fill("edited in the console")
    pane.locator(".kqi-edit-tags").fill("a, b")
    pane.locator(".kqi-save-data").click()
    expect(pane.locator(".kqi-details")).to_contain_text(new_name)
    got = api.get(f"/data/{data['id']}").json()
    assert (got["name"], got["memo"], sorted(got["tags"])) == (new_name, "edited in the console", ["a", "b"])

    # add a file (uploaded with progress), then remove the old one after the confirmation
    added = tmp_path / "added.txt"
    added.write_text("added from the console\n")
    pane.locator(".kqi-add-files").set_input_files(str(added))
    expect(pane.locator(".kqi-files")).to_contain_text("added.txt", timeout=30_000)
    page.once("dialog", lambda dialog: dialog.accept())
    pane.locator(".kqi-files li", has_text="x.csv").locator(".kqi-remove-file").click()
    expect(pane.locator(".kqi-files")).not_to_contain_text("x.csv")
    assert [f["fileName"] for f in api.get(f"/data/{data['id']}/files").json()] == ["added.txt"]

    # copy a dataset: the New form starts from its name and entries
    page.goto(f"{platform.url}/services/kqi/datasets/{lab['dataset']['id']}")
    page.locator(".kqi-dataset-details .kqi-copy-dataset").click()
    form = page.locator(".kqi-new-dataset")
    expect(form.locator(".kqi-drop-training")).to_contain_text(f"{data['id']}:")
    form.locator(".kqi-create-dataset").click()
    expect(page.locator(".kqi-dataset-details")).to_contain_text(f"{lab['dataset']['name']}-copy")
    copies = [d for d in api.get("/datasets").json() if d["name"] == f"{lab['dataset']['name']}-copy"]
    assert len(copies) == 1
    entries = api.get(f"/datasets/{copies[0]['id']}").json()["entries"]
    assert [d["id"] for d in entries["training"]] == [data["id"]]
    assert page.errors == []


def test_the_hub_makes_no_user_the_platform_does_not_know(platform, admin):
    """The hub's own user creation (its admin page's Add Users, POST /hub/api/users) is refused with the way to
    make users; a user made by the platform's admin API exists on both sides."""
    hub_token = requests.post(f"{platform.url}/hub/api/users/admin/tokens", timeout=30,
                              json={"auth": {"username": "admin", "password": platform.admin_password},
                                    "expires_in": 600}).json()["token"]
    headers = {"Authorization": f"token {hub_token}"}
    stray = unique("stray")
    r = requests.post(f"{platform.url}/hub/api/users/{stray}", headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    r = requests.post(f"{platform.url}/hub/api/users", json={"usernames": [stray]}, headers=headers, timeout=30)
    assert r.status_code == 400 and "KQI console" in r.json()["message"], r.text
    assert requests.get(f"{platform.url}/hub/api/users/{stray}", headers=headers, timeout=30).status_code == 404
    # a login with a name no account has: 401, and still no hub user of that name
    r = platform.api().post("/account/login", {"userName": stray, "password": "whatever-123"})
    assert r.status_code == 401 and r.json()["status"] == 401, r.text
    assert requests.get(f"{platform.url}/hub/api/users/{stray}", headers=headers, timeout=30).status_code == 404
    made = unique("made")
    r = admin.post("/admin/users", {"name": made, "password": PASSWORD, "systemRoles": [], "tenants": [{"id": 1}]})
    assert r.status_code == 201, r.text
    assert requests.get(f"{platform.url}/hub/api/users/{made}", headers=headers, timeout=30).status_code == 200


def test_the_hubs_admin_page_offers_no_user_or_group_changes(platform, browser):
    page = new_page(browser)
    login(page, platform, "admin", platform.admin_password)
    page.goto(platform.url + "/hub/admin")
    expect(page.locator("#kqi-admin-notice")).to_contain_text("managed in the KQI console")
    expect(page.get_by_text("Start All")).to_be_visible()  # the hub's own server management stays
    expect(page.get_by_text("Edit User", exact=True).first).to_be_attached()  # the user rows have rendered
    for hidden in ("Add Users", "Edit User", "Manage Groups"):
        found = page.get_by_text(hidden, exact=True)
        for i in range(found.count()):
            expect(found.nth(i)).to_be_hidden()
    shot(page, "hub-admin")
