"""The JupyterLab panels in a real browser against the real platform.

A JupyterLab with our server and lab extensions runs as a subprocess with
``KQI_SERVER``/``KQI_TOKEN`` of a logged-in member of a fresh tenant (as a
platform notebook gets them); Debian's chromium, driven by Playwright, uses
the panels as a user would. Assertions are about what the user sees.
"""

from __future__ import annotations

import os
import re

import pytest
from browser import chromium, kqi_panel, same_origin_service, start_jupyterlab
from conftest import submit, unique, wait_for

pytestmark = pytest.mark.platform

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture
def jupyterlab(platform, lab, tmp_path):  # noqa: F811
    server = start_jupyterlab(str(tmp_path / "jupyterlab"), platform.url + "/services/kqi", lab["api"].token)
    yield server
    server.stop()


@pytest.fixture
def page(jupyterlab):
    with playwright_sync.sync_playwright() as p:
        browser = chromium(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()


#: the controls of a panel that stick out of it (its right or left edge), as "class right>edge"
CLIPPED = """panel => { const edge = panel.getBoundingClientRect(); const out = [];
  for (const e of panel.querySelectorAll('button, input, select, textarea')) {
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > edge.right + 1 || r.left < edge.left - 1)) {
      out.push(`${e.className || e.tagName} ${Math.round(r.right)}>${Math.round(edge.right)}`); } }
  return out; }"""


def open_panel(page, jupyterlab, label: str):
    """Opens the lab (first time) and the sidebar panel ``label``; the panel's locator."""
    if not page.url.startswith(jupyterlab.url):
        page.goto(jupyterlab.lab_url)
    return kqi_panel(page, label)


def test_panels_upload_with_progress_and_dataset_by_drag_and_drop(platform, lab, jupyterlab, page, tmp_path):  # noqa: F811
    cut = same_origin_service(page, jupyterlab, platform.url, fail_parts=1)
    for label in ("Datasets", "Trainings", "Notebooks"):
        panel = open_panel(page, jupyterlab, label)
        expect(panel.locator(".kqi-tenant-select")).to_have_value(str(lab["tenant"]["id"]))
        # at JupyterLab's default side panel width nothing is cut off: every control is inside the panel
        assert panel.evaluate(CLIPPED) == [], label
    # the lab fixture's own data and dataset are listed
    data_panel = open_panel(page, jupyterlab, "Data")
    expect(data_panel.locator(".kqi-row", has_text=lab["data"]["name"])).to_be_visible()

    payload = os.urandom(40 * 1024 * 1024 + 5)  # three 16 MiB parts
    big = tmp_path / "weights.bin"
    big.write_bytes(payload)
    data_panel.locator(".kqi-new").click()
    name = unique("browser-data")
    data_panel.locator(".kqi-data-name").fill(name)
    data_panel.locator(".kqi-file-input").set_input_files(str(big))
    bar = data_panel.locator('[role="progressbar"][aria-label="weights.bin"]')
    expect(bar).to_be_visible()
    expect(data_panel.locator(".kqi-upload-done")).to_have_text("uploaded", timeout=60_000)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    assert len(cut) == 1  # one part was cut off, and retried
    data_panel.locator(".kqi-create-data").click()
    expect(data_panel.locator(".kqi-row", has_text=name)).to_be_visible()
    expect(data_panel.locator(".kqi-files a", has_text="weights.bin")).to_be_visible()
    expect(data_panel.locator(".kqi-error")).to_have_count(0)

    # the bytes arrived whole, registered as the user's data
    api = lab["api"]
    (created,) = [d for d in api.get("/data", params={"Name": name}).json() if d["name"] == name]
    (stored,) = api.get(f"/data/{created['id']}/files").json()
    assert stored["fileName"] == "weights.bin" and stored["fileSize"] == len(payload)

    datasets = open_panel(page, jupyterlab, "Datasets")
    datasets.locator(".kqi-new").click()
    ds_name = unique("dragged")
    datasets.locator(".kqi-dataset-name").fill(ds_name)
    source = datasets.locator(".kqi-builder-all .kqi-row", has_text=name)
    source.drag_to(datasets.locator(".kqi-drop-training"))
    datasets.locator(".kqi-builder-all .kqi-row", has_text=lab["data"]["name"]).drag_to(
        datasets.locator(".kqi-drop-validation"))
    expect(datasets.locator(".kqi-drop-training .kqi-chip")).to_contain_text(name)
    expect(datasets.locator(".kqi-drop-validation .kqi-chip")).to_contain_text(lab["data"]["name"])
    datasets.locator(".kqi-create-dataset").click()
    expect(datasets.locator(".kqi-row", has_text=ds_name)).to_be_visible()
    details = datasets.locator(".kqi-dataset-details")
    expect(details).to_contain_text(f"{created['id']}:{name}")
    (ds,) = [d for d in api.get("/datasets", params={"Name": ds_name}).json() if d["name"] == ds_name]
    entries = api.get(f"/datasets/{ds['id']}").json()["entries"]
    assert [d["id"] for d in entries["training"]] == [created["id"]]
    assert [d["id"] for d in entries["validation"]] == [lab["data"]["id"]]


def test_training_submit_live_log_outputs_and_halt(platform, lab, jupyterlab, page):  # noqa: F811
    same_origin_service(page, jupyterlab, platform.url)
    template = submit(lab, "python3 train.py")
    wait_for(lab["api"], template["id"])
    trainings = open_panel(page, jupyterlab, "Trainings")
    trainings.locator(".kqi-new").click()
    form = trainings.locator(".kqi-new-training")
    form.locator(".kqi-copy-id").fill(str(template["id"]))
    form.locator(".kqi-copy").click()
    expect(form.locator(".kqi-field-repository")).to_have_value("model")
    name = unique("ui")[:30]
    form.locator(".kqi-field-name").fill(name)
    form.locator(".kqi-field-entryPoint").fill(
        "echo first-line; sleep 4; python3 train.py; echo last-line")
    form.locator(".kqi-submit").click()

    details = trainings.locator(".kqi-training-details")
    expect(details).to_contain_text(name)
    log = details.locator(".kqi-log-text")
    expect(log).to_contain_text("first-line", timeout=60_000)
    # live: the first line shows while the run still runs
    assert "last-line" not in log.inner_text()
    expect(details.locator(".kqi-status")).to_have_text("Running")
    expect(log).to_contain_text("hello from the model", timeout=60_000)
    expect(log).to_contain_text("last-line")
    expect(details.locator(".kqi-status")).to_have_text("Completed", timeout=30_000)
    details.locator(".kqi-dir", has_text="sub dir").click()
    output = details.locator(".kqi-output-file", has_text="result #1.json")
    expect(output).to_be_visible()
    with page.expect_download() as download:
        output.click()
    with open(download.value.path()) as f:
        assert '"cwd": "/kqi/git"' in f.read()

    # halt a long one from its details
    long_run = submit(lab, "sleep 300")
    wait_for(lab["api"], long_run["id"], statuses=("Running",))
    trainings.locator(".kqi-filter").first.fill(long_run["name"])
    trainings.locator(".kqi-row", has_text=long_run["name"]).click()
    expect(details.locator(".kqi-status")).to_have_text("Running")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    details.locator(".kqi-halt").click()
    expect(details.locator(".kqi-status")).to_have_text("Killed", timeout=30_000)
    assert asked == [f"Halt training {long_run['id']} ({long_run['name']})? Its command is stopped."], asked
    assert lab["api"].get(f"/training/{long_run['id']}").json()["status"] == "Killed"


def test_api_errors_are_shown(platform, lab, jupyterlab, page):  # noqa: F811
    same_origin_service(page, jupyterlab, platform.url)
    trainings = open_panel(page, jupyterlab, "Trainings")
    trainings.locator(".kqi-new").click()
    form = trainings.locator(".kqi-new-training")
    form.locator(".kqi-field-name").fill("Not A Valid Name!")
    form.locator(".kqi-submit").click()
    error = trainings.locator(".kqi-error")
    expect(error).to_be_visible()
    assert re.search(r"name.*\(400\)", error.inner_text(), re.S), error.inner_text()
    trainings.locator(".kqi-copy-id").fill("999999")
    trainings.locator(".kqi-copy").click()
    expect(error).to_contain_text("(404)")



def test_inference_from_a_training_shows_its_log_files_and_value(platform, lab, jupyterlab, page):  # noqa: F811
    same_origin_service(page, jupyterlab, platform.url)
    api = lab["api"]
    training = wait_for(api, submit(lab, "echo weights > /kqi/output/model.txt")["id"])
    assert training["status"] == "Completed", training
    trainings = open_panel(page, jupyterlab, "Trainings")
    trainings.locator(".kqi-filter").first.fill(training["name"])
    trainings.locator(".kqi-row", has_text=training["name"]).click()
    trainings.locator(".kqi-training-details .kqi-run-inference").click()

    # the Inference panel comes forward with the form: the training as parent, its settings as defaults
    inference = kqi_panel(page, "Inference")
    form = inference.locator(".kqi-new-inference")
    expect(form.locator(".kqi-field-parentIds")).to_have_values([str(training["id"])])
    expect(form.locator(".kqi-field-repository")).to_have_value("model")
    expect(form.locator(".kqi-field-image")).to_have_value("python")
    expect(form.locator(".kqi-field-dataSetId")).to_have_value(str(lab["dataset"]["id"]))
    name = unique("ui-inf")[:30]
    form.locator(".kqi-field-name").fill(name)
    form.locator(".kqi-field-entryPoint").fill(
        "cat /kqi/parent/model.txt; echo $INFERENCE_ID; echo '0.93 accuracy' > /kqi/output/value.txt")
    form.locator(".kqi-submit").click()

    details = inference.locator(".kqi-inference-details")
    expect(details).to_contain_text(name)
    expect(details.locator(".kqi-status")).to_have_text("Completed", timeout=60_000)
    # log and output files through kqi/inference/{id}/…, which the lab server relays to /inferences/{id}/…
    expect(details.locator(".kqi-log-text")).to_contain_text("weights")
    expect(details.locator(".kqi-output-value")).to_have_text("0.93 accuracy")
    expect(details).to_contain_text(f"{training['id']}:{training['name']}")  # its parent training
    expect(details.locator(".kqi-lineage-upstream")).to_contain_text(
        f"parent training {training['id']}:{training['name']} (Completed)")
    output = details.locator(".kqi-output-file", has_text="value.txt")
    with page.expect_download() as download:
        output.click()
    with open(download.value.path()) as f:
        assert f.read() == "0.93 accuracy\n"
    # the list's value column
    expect(inference.locator(".kqi-row", has_text=name).locator(".kqi-output-value")).to_have_text("0.93 accuracy")
    (made,) = [r for r in api.get("/inferences", params={"Name": name}).json() if r["name"] == name]
    assert made["outputValue"] == "0.93 accuracy"
    assert [p["id"] for p in api.get(f"/inferences/{made['id']}").json()["parents"]] == [training["id"]]


def test_preprocessing_from_the_data_panel_history_log_output_data_and_delete(platform, lab, jupyterlab, page):  # noqa: F811
    same_origin_service(page, jupyterlab, platform.url)
    api = lab["api"]
    r = api.post("/preprocessings", {
        "name": unique("pp"), "containerImage": {"image": "python", "tag": "3.11"},
        "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"}, "cpu": 1, "memory": 1, "gpu": 0,
        "entryPoint": "mkdir -p /kqi/output/small && echo made-$DATA_ID > /kqi/output/small/a.txt; echo pp-log-line"})
    assert r.status_code == 201, r.text
    pre = r.json()
    source = lab["data"]
    data_panel = open_panel(page, jupyterlab, "Data")
    data_panel.locator(".kqi-row", has_text=source["name"]).click()
    data_panel.locator(".kqi-run-preprocessing-marked").click()

    # the Preprocessing panel comes forward with its run form, the selected data chosen
    panel = kqi_panel(page, "Preprocessing")
    form = panel.locator(".kqi-run-preprocessing")
    expect(form.locator(f'.kqi-choose-data[value="{source["id"]}"]')).to_be_checked()
    form.locator(".kqi-pp-definition").select_option(str(pre["id"]))
    form.locator(".kqi-pp-run").click()
    details = panel.locator(".kqi-preprocessing-details")
    expect(details).to_contain_text(pre["name"])
    history = details.locator(".kqi-history", has_text=source["name"])
    expect(history.locator(".kqi-status")).to_have_text("Completed", timeout=60_000)
    history.click()
    shown = details.locator(".kqi-history-details")
    # the live log through kqi/preprocessing/{runId}/log
    expect(shown.locator(".kqi-log-text")).to_contain_text("pp-log-line")
    (made,) = api.get(f"/preprocessings/{pre['id']}/histories/{source['id']}").json()["outputDataIds"]
    expect(shown.locator(".kqi-lineage-upstream")).to_contain_text(f"input data {source['id']}:{source['name']}")
    expect(shown.locator(".kqi-lineage-downstream")).to_contain_text(f"output data {made}:small")
    output = shown.locator(".kqi-output-data", has_text=f"data {made}")
    output.click()
    data_details = open_panel(page, jupyterlab, "Data").locator(".kqi-detail-pane")
    expect(data_details).to_contain_text("small")
    expect(data_details.locator(".kqi-files a", has_text="a.txt")).to_be_visible()
    expect(data_details.locator(".kqi-lineage-upstream")).to_contain_text(f"input data {source['id']}:{source['name']}")

    # deleting the history says it deletes the data it made, and does
    panel = kqi_panel(page, "Preprocessing")
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    shown.locator(".kqi-delete-history").click()
    expect(details.locator(".kqi-history")).to_have_count(0)
    assert f"also deletes the data it produced: data {made}" in messages[0], messages
    assert api.get(f"/data/{made}").status_code == 404
    expect(panel.locator(".kqi-error")).to_have_count(0)
