"""The upstream kamonohashi-cli 4.0.2, unchanged, against the platform: the ``kqi inference`` commands
that ``test_upstream_cli_training.py`` leaves out (update, upload-file, download-files, delete-file,
list-container-files, halt, complete).

A lab member (``lab``: a tenant with conftest's file:// git endpoint, a
dataset) logs in with the upstream ``kqi account login`` in a HOME of its own;
what is asserted is what the user sees — exit codes, printed lines, bytes on
disk — and the state the API then reports for the same token.
"""

import io
import re
import time
import zipfile

import pytest
from conftest import unique
from test_upstream_cli_training import Member, an_error, files_on_disk, files_table
from upstream import cli_login, field, require_upstream_cli

pytestmark = pytest.mark.upstream

#: what OUTPUT writes under /kqi/output
WANT = {"value.txt": b"0.87 recall\n", "sub dir/scores.csv": b"id,score\n1,0.87\n",
        "sub dir/deeper/raw #1.bin": bytes(range(256)) * 64}
OUTPUT = ("mkdir -p '/kqi/output/sub dir/deeper'; echo '0.87 recall' > /kqi/output/value.txt; "
          "printf 'id,score\\n1,0.87\\n' > '/kqi/output/sub dir/scores.csv'; "
          "python3 -c \"import sys; sys.stdout.buffer.write(bytes(range(256)) * 64)\" "
          "> '/kqi/output/sub dir/deeper/raw #1.bin'; echo inference $INFERENCE_ID done")


@pytest.fixture(scope="session", autouse=True)
def _upstream_installed():
    """Session scope: checked before the (session) platform starts, so a skip costs nothing."""
    require_upstream_cli()


@pytest.fixture
def member(platform, lab, tmp_path) -> Member:
    cli, api = cli_login(platform, tmp_path / "home", lab["tenant"], lab["user"])
    return Member(cli, api, lab["tenant"], lab["user"], lab["git"], lab["dataset"])


def create(member: Member, entry_point: str, *extra) -> int:
    """Upstream ``kqi inference create`` with its required options; the new id."""
    r = member("inference", "create", "-n", unique("up-inf")[:30], "-rim", "python", "-rt", "3.11",
               "-d", member.dataset["id"], "-e", entry_point, "-go", "kqi", "-gr", "model",
               "-c", 1, "-mem", 1, "-g", 0, *extra)
    m = re.fullmatch(r"created (\d+)", r.stdout.rstrip("\n").splitlines()[-1])
    assert m, r.stdout
    return int(m.group(1))


def wait_for_log(member: Member, run_id: int, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in member.api.get(f"/inferences/{run_id}/log").text:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in the log of inference {run_id}")


def test_update_attached_files_and_container_files(member, tmp_path):
    run_id = create(member, OUTPUT, "-m", "first memo", "-zip")
    done = member.wait(run_id, routes="inferences")
    assert done["status"] == "Completed" and done["outputValue"] == "0.87 recall", done

    # update: name, memo, favorite; un-favorite leaves name and memo alone
    new_name = unique("renamed")[:30]
    assert member("inference", "update", run_id, "-n", new_name, "-m", "second memo", "-fav").stdout == \
        f"updated {run_id}\n"
    d = member.get(f"/inferences/{run_id}")
    assert (d["name"], d["memo"], d["favorite"]) == (new_name, "second memo", True)
    assert member("inference", "update", run_id, "-unfav").stdout == f"updated {run_id}\n"
    d = member.get(f"/inferences/{run_id}")
    assert (d["name"], d["memo"], d["favorite"]) == (new_name, "second memo", False)
    assert field(member("inference", "get", run_id).stdout, "name") == new_name

    # upload-file: attached beside the log and output.zip the platform kept
    upload = tmp_path / "label map.json"
    upload.write_bytes(b'{"0": "cat", "1": "dog"}\n')
    member("inference", "upload-file", run_id, "-f", upload)
    files = files_table(member("inference", "list-files", run_id).stdout)
    log_name = f"inference_stdout_stderr_{run_id}.log"
    assert set(files) == {log_name, "output.zip", "label map.json"}
    assert files == {f["fileName"]: f["fileId"] for f in member.get(f"/inferences/{run_id}/files")}

    # download-files: every file, then only the one asked for
    every = tmp_path / "every"
    every.mkdir()
    member("inference", "download-files", run_id, "-d", every)
    got = files_on_disk(every)
    assert set(got) == set(files)
    assert f"inference {run_id} done" in got[log_name].decode()
    archive = zipfile.ZipFile(io.BytesIO(got["output.zip"]))
    assert {n: archive.read(n) for n in archive.namelist()} == WANT
    assert got["label map.json"] == upload.read_bytes()
    only = tmp_path / "only"
    only.mkdir()
    member("inference", "download-files", run_id, "-d", only, "-f", files["label map.json"])
    assert files_on_disk(only) == {"label map.json": upload.read_bytes()}

    # delete-file: the upload goes; the platform's log stays (locked)
    r = member("inference", "delete-file", run_id, "-f", files["label map.json"])
    assert r.stdout == f"deleted {files['label map.json']}\n"
    an_error(member("inference", "delete-file", run_id, "-f", files[log_name], ok=False), 409)
    assert set(files_table(member("inference", "list-files", run_id).stdout)) == {log_name, "output.zip"}

    # list-container-files: every file of /kqi/output, files before directories; from a sub directory
    lines = member("inference", "list-container-files", run_id).stdout.splitlines()
    assert lines == ["/value.txt", "/sub dir/scores.csv", "/sub dir/deeper/raw #1.bin"]
    lines = member("inference", "list-container-files", run_id, "-s", "sub dir/deeper").stdout.splitlines()
    assert lines == ["/sub dir/deeper/raw #1.bin"]
    assert member("inference", "list-container-files", run_id, "-s", "/nowhere", ok=False).returncode != 0


def test_halt_a_running_inference_ends_killed(member):
    run_id = create(member, "echo started; sleep 300", "-unzip")
    member.wait(run_id, ("Running",), routes="inferences")
    wait_for_log(member, run_id, "started")
    an_error(member("inference", "delete", run_id, ok=False), 409)  # not while it runs
    assert member("inference", "halt", run_id).stdout == f"halted {run_id}\n"
    done = member.wait(run_id, timeout=30, routes="inferences")
    assert (done["status"], done["statusType"]) == ("Killed", "Failed"), done
    assert field(member("inference", "get", run_id).stdout, "status") == "Killed"
    an_error(member("inference", "halt", run_id, ok=False), 409)  # already over
    assert set(files_table(member("inference", "list-files", run_id).stdout)) == \
        {f"inference_stdout_stderr_{run_id}.log"}
    assert member("inference", "delete", run_id).stdout == f"deleted {run_id}\n"


def test_complete_a_running_inference_keeps_its_value_and_output(member, tmp_path):
    run_id = create(member, "echo '0.5 f1' > /kqi/output/value.txt; echo written; sleep 300")
    member.wait(run_id, ("Running",), routes="inferences")
    wait_for_log(member, run_id, "written")
    assert member("inference", "complete", run_id).stdout == f"completed {run_id}\n"
    done = member.wait(run_id, timeout=30, routes="inferences")
    assert (done["status"], done["statusType"], done["outputValue"]) == ("Completed", "Closed", "0.5 f1"), done
    assert "0.5 f1" in member("inference", "list", "--status", "Completed").stdout
    out = tmp_path / "out"
    out.mkdir()
    member("inference", "download-container-files", run_id, "-d", out)
    assert files_on_disk(out) == {"value.txt": b"0.5 f1\n"}
    an_error(member("inference", "complete", run_id, ok=False), 409)
    an_error(member("inference", "halt", 99999999, ok=False), 404)
