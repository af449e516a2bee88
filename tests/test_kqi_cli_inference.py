"""Our ``kqi inference`` against the real platform, run as a user runs it (a subprocess, KQI_SERVER/KQI_TOKEN).

The group shares its command bodies with ``kqi training`` (``cli/runs.py``);
what is asserted here is what an inference adds or a user of it sees: the
``value`` column and ``outputValue``, parent trainings (``-pid``) and
inferences (``-iid``), a JSON body (``-f``) under the options, the live log,
attached and output files byte for byte, halt and complete, and clear errors
with non-zero exits.
"""

import json

import pytest
from conftest import submit, unique, wait_for, wait_until
from test_kqi_cli import created, field, lab_kqi  # noqa: F401 (lab_kqi: the fixture)

from kqi_services.executor.local import image_notice

#: the first line of the log of a run that names an image: the sandbox says it does not use it
NOTICE = image_notice("python:3.11")

pytestmark = pytest.mark.platform

RUN = ("-rim", "python", "-rt", "3.11", "-go", "kqi", "-gr", "model", "-c", 1, "-mem", 1, "-g", 0)


@pytest.fixture
def kqi(lab_kqi):  # noqa: F811
    return lab_kqi


def wait_log(kqi, run_id, text, timeout=60):
    """Poll ``kqi inference log`` (no -f) until ``text`` shows."""
    return wait_until(lambda: text in kqi("inference", "log", run_id).stdout, timeout, f"{text!r} in the log")


def test_create_with_a_parent_follow_the_log_value_and_files(kqi, tmp_path):
    lab = kqi.lab
    parent = wait_for(lab["api"], submit(lab, "echo weights > /kqi/output/model.txt")["id"])
    assert parent["status"] == "Completed", parent
    name = unique("inf")[:30]
    r = kqi("inference", "create", "-n", name, *RUN, "-d", lab["dataset"]["id"], "-gid", lab["git"]["id"],
            "-pid", parent["id"], "-t", "cli", "-o", "MY_OPTION", "7",
            "-e", "cat /kqi/parent/model.txt; echo $INFERENCE_ID $MY_OPTION; mkdir -p '/kqi/output/sub dir'; "
                  "echo '0.93 accuracy' > /kqi/output/value.txt; echo r > '/kqi/output/sub dir/r #1.txt'; echo end")
    run_id = created(r)

    r = kqi("inference", "log", "-f", run_id)
    assert r.stdout == NOTICE + f"weights\n{run_id} 7\nend\n"
    assert r.stderr.strip().splitlines()[-1] == "status: Completed"
    assert kqi("inference", "logs", run_id).stdout == r.stdout  # the training group's spelling works too

    lines = kqi("inference", "list").stdout.splitlines()
    assert lines[0].split() == ["id", "name", "started_at", "started_by", "dataset", "memo", "value", "status"]
    assert lines[1].split()[:2] == [str(run_id), name] and lines[1].split()[-3:] == ["0.93", "accuracy", "Completed"]
    assert [x["id"] for x in kqi.json("inference", "list", "--tag", "cli")] == [run_id]
    assert kqi.json("inference", "list", "--name", "nothing-like-it") == []
    details = kqi.json("inference", "get", run_id)
    assert details["outputValue"] == "0.93 accuracy" and details["tags"] == ["cli"]
    assert [p["id"] for p in details["parents"]] == [parent["id"]]
    assert details["options"] == [{"key": "MY_OPTION", "value": "7"}]
    out = kqi("inference", "get", run_id).stdout
    assert field(out, "output_value") == "0.93 accuracy" and field(out, "status") == "Completed"

    # /kqi/output: listed (text and JSON) and downloaded, whole and one file
    assert kqi("inference", "list-container-files", run_id).stdout.splitlines() == ["/value.txt", "/sub dir/r #1.txt"]
    assert [f["path"] for f in kqi.json("inference", "list-container-files", run_id, "-s", "sub dir")] == \
        ["/sub dir/r #1.txt"]
    whole, one = tmp_path / "whole", tmp_path / "one"
    whole.mkdir()
    one.mkdir()
    kqi("inference", "download-container-files", run_id, "-d", whole)
    assert (whole / "value.txt").read_text() == "0.93 accuracy\n" and (whole / "sub dir" / "r #1.txt").read_text() == "r\n"
    kqi("inference", "download-container-files", run_id, "-d", one, "-f", "/sub dir/r #1.txt")
    assert [p.name for p in one.rglob("*") if p.is_file()] == ["r #1.txt"]

    # attached files: the log, an upload (with its bar), one downloaded by id, one deleted
    notes = tmp_path / "notes #1.txt"
    notes.write_bytes(b"threshold: 0.5\n" * 1000)
    r = kqi("inference", "upload-file", run_id, "-f", notes)
    assert "notes #1.txt" in r.stderr and "%" in r.stderr
    files = {f["fileName"]: f["fileId"] for f in kqi.json("inference", "list-files", run_id)}
    log_name = f"inference_stdout_stderr_{run_id}.log"
    assert set(files) == {log_name, "notes #1.txt", "output.zip"}
    assert kqi("inference", "list-files", run_id).stdout.splitlines()[0].split() == ["file_id", "file_name"]
    got = tmp_path / "got"
    got.mkdir()
    kqi("inference", "download-files", run_id, "-d", got, "-f", files["notes #1.txt"])
    assert [p.name for p in got.iterdir()] == ["notes #1.txt"] and (got / "notes #1.txt").read_bytes() == \
        notes.read_bytes()
    kqi("inference", "download-files", run_id, "-d", got)
    assert "weights" in (got / log_name).read_text()
    r = kqi("inference", "delete-file", run_id, "-f", files["notes #1.txt"])
    assert r.stdout.strip() == f"deleted {files['notes #1.txt']}"
    assert "notes #1.txt" not in {f["fileName"] for f in kqi.json("inference", "list-files", run_id)}

    # update, refusals, delete
    assert kqi("inference", "update", run_id, "-m", "edited", "-fav").stdout.strip() == f"updated {run_id}"
    edited = kqi.json("inference", "get", run_id)
    assert (edited["memo"], edited["favorite"], edited["name"], edited["tags"]) == ("edited", True, name, ["cli"])
    r = kqi("inference", "halt", run_id, ok=False)
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr and "already Completed" in r.stderr
    r = kqi("training", "get", run_id, ok=False)  # kinds stay apart
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr
    assert kqi("inference", "delete", run_id).stdout.strip() == f"deleted {run_id}"
    r = kqi("inference", "get", run_id, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr


def test_a_json_body_under_the_options_parent_inferences_halt_and_complete(kqi, tmp_path):
    lab = kqi.lab
    body = {"name": unique("from-file")[:30], "containerImage": {"image": "python", "tag": "3.11"},
            "dataSetId": lab["dataset"]["id"], "cpu": 1, "memory": 1, "gpu": 0, "zip": False, "memo": "file memo",
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
            "entryPoint": "echo started; echo 'from the file' > /kqi/output/value.txt; sleep 300"}
    (tmp_path / "body.json").write_text(json.dumps(body))

    # -f alone: the body as it is; the options given override it (and only those)
    run = kqi.json("inference", "create", "-f", tmp_path / "body.json", "-m", "flag memo")
    completed = run["id"]
    details = kqi.json("inference", "get", completed)
    assert (details["name"], details["memo"], details["zip"]) == (body["name"], "flag memo", False)
    wait_log(kqi, completed, "started")
    assert kqi("inference", "complete", completed).stdout.strip() == f"completed {completed}"
    r = kqi("inference", "log", "-f", completed)
    assert r.stdout == NOTICE + "started\n" and r.stderr.strip().splitlines()[-1] == "status: Completed"
    assert kqi.json("inference", "get", completed)["outputValue"] == "from the file"

    halted = created(kqi("inference", "create", "-f", tmp_path / "body.json", "-n", unique("halt")[:30],
                         "-iid", completed))
    details = kqi.json("inference", "get", halted)
    assert [p["id"] for p in details["parentInferences"]] == [completed]
    assert details["memo"] == "file memo" and details["zip"] is False
    wait_log(kqi, halted, "started")
    assert kqi("inference", "halt", halted).stdout.strip() == f"halted {halted}"
    r = kqi("inference", "log", "-f", halted)
    assert r.stderr.strip().splitlines()[-1] == "status: Killed"
    r = kqi("inference", "delete", completed, ok=False)  # a parent goes after its child
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr
    kqi("inference", "delete", halted)
    kqi("inference", "delete", completed)


def test_bad_input_is_refused_with_a_clear_message(kqi, tmp_path):
    lab = kqi.lab
    r = kqi("inference", "create", "-n", "x", "-rt", "3.11", "-d", lab["dataset"]["id"], "-go", "kqi", "-gr", "model",
            "-c", 1, "-mem", 1, "-g", 0, ok=False)
    assert r.returncode == 2 and "Missing option '-rim' / '--registry-image'" in r.stderr
    (tmp_path / "bad.json").write_text("{not json")
    r = kqi("inference", "create", "-f", tmp_path / "bad.json", ok=False)
    assert r.returncode == 2 and "is not JSON" in r.stderr
    (tmp_path / "list.json").write_text("[1, 2]")
    r = kqi("inference", "create", "-f", tmp_path / "list.json", ok=False)
    assert r.returncode == 2 and "holds no JSON object" in r.stderr
    r = kqi("inference", "create", "-n", "x", *RUN, "-d", lab["dataset"]["id"], "-pid", "abc", ok=False)
    assert r.returncode == 2 and "'abc' is not a valid integer" in r.stderr
    r = kqi("inference", "create", "-n", "x", *RUN, "-d", 987654321, "-e", "true", ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr
    (tmp_path / "partial.json").write_text(json.dumps({"name": "no-entry-point"}))
    r = kqi("inference", "create", "-f", tmp_path / "partial.json", ok=False)  # the service names what is missing
    assert r.returncode == 1 and "[ERROR] 400 Missing field" in r.stderr
    r = kqi("inference", "upload-file", 1, "-f", tmp_path / "missing.txt", ok=False)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = kqi("inference", "get", 987654321, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr and "987654321" in r.stderr
    r = kqi("inference", "tensorboard-halt", 1, ok=False)
    assert r.returncode == 2 and "No such command" in r.stderr
