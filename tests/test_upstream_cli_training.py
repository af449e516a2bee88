"""The upstream kamonohashi-cli 4.0.2, unchanged, against the platform: training commands.

A fresh user in a fresh tenant with a file:// git endpoint logs in with
`kqi account login` (a HOME of its own) and drives trainings as a user would:
create with the real options, list, get, update, attached files, the
container's /kqi/output, halt, complete, tensorboard-halt and delete. What is
asserted is what the user sees — exit code, printed lines, bytes on disk — and
the state the API then reports for the same token.

The model repository is this module's own (``model_repo``): ``train.py``
writes deterministic outputs (a nested directory, names with spaces) that the
test computes too, on master (two commits) and on a ``feature`` branch.
"""

import hashlib
import io
import json
import os
import re
import subprocess
import time
import zipfile

import pytest
from conftest import unique, upload
from upstream import Cli, cli_login, field, require_upstream_cli

pytestmark = pytest.mark.upstream

FINISHED = ("Completed", "Failed", "Killed", "OOMKilled", "Error", "UserCanceled")

TRAIN_PY = '''\
"""A model for the upstream CLI tests: deterministic outputs, a log on both streams."""
import hashlib, json, os, sys

MODEL = "{model}"
run_id, seed = os.environ["TRAINING_ID"], os.environ.get("SEED", "0")
print(f"model {{MODEL}} run {{run_id}} seed {{seed}} commit {{os.environ['COMMIT_ID']}}", flush=True)
print(f"greeting={{os.environ.get('GREETING')}}", flush=True)
print(f"stderr line of run {{run_id}}", file=sys.stderr, flush=True)


def walk(root):
    return sorted(os.path.relpath(os.path.join(r, f), root) for r, _, fs in os.walk(root) for f in fs)


print("inputs", json.dumps(walk("/kqi/input")), flush=True)
print("parent", json.dumps(walk("/kqi/parent") if os.path.isdir("/kqi/parent") else None), flush=True)
out = "/kqi/output"
os.makedirs(os.path.join(out, "nested", "deeper dir"), exist_ok=True)
with open(os.path.join(out, "summary.txt"), "w") as f:
    f.write(f"model {{MODEL}} seed {{seed}}\\n")
with open(os.path.join(out, "nested", "metrics.json"), "w") as f:
    json.dump({{"model": MODEL, "seed": seed}}, f)
with open(os.path.join(out, "nested", "deeper dir", "weights file.bin"), "wb") as f:
    f.write(hashlib.sha256(f"{{run_id}}-{{seed}}".encode()).digest() * 8192)
'''


def expected_output(run_id: int, seed: str, model: str) -> dict[str, bytes]:
    """{path under /kqi/output: bytes} that TRAIN_PY writes."""
    return {
        "summary.txt": f"model {model} seed {seed}\n".encode(),
        "nested/metrics.json": json.dumps({"model": model, "seed": seed}).encode(),
        "nested/deeper dir/weights file.bin": hashlib.sha256(f"{run_id}-{seed}".encode()).digest() * 8192,
    }


@pytest.fixture(scope="session", autouse=True)
def _upstream_installed():
    """Session scope: checked before the (session) platform starts, so a skip costs nothing."""
    require_upstream_cli()


def _git(*args, cwd):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, env=env, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def model_repo(admin, tmp_path_factory):
    """A file:// git endpoint with kqi/model.git: master v1 → v2, and a branch ``feature``."""
    root = tmp_path_factory.mktemp("cli-git")
    work = root / "work"
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    commits = {}
    for model in ("v1", "v2"):
        (work / "train.py").write_text(TRAIN_PY.format(model=model))
        _git("add", ".", cwd=work)
        _git("commit", "-q", "-m", model, cwd=work)
        commits[model] = _git("rev-parse", "HEAD", cwd=work)
    _git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "train.py").write_text(TRAIN_PY.format(model="feature"))
    _git("commit", "-q", "-am", "feature", cwd=work)
    commits["feature"] = _git("rev-parse", "HEAD", cwd=work)
    bare = root / "repos" / "kqi" / "model.git"
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    r = admin.post("/admin/git/endpoints", {"name": unique("cli-git"), "serviceType": 0,
                                            "repositoryUrl": f"file://{root / 'repos'}",
                                            "apiUrl": f"file://{root}"})
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"], "commits": commits}


class Member:
    """A logged-in upstream `kqi` of a new user in a new tenant, the API with the same token, a dataset."""

    def __init__(self, cli: Cli, api, tenant: dict, user: dict, git: dict, dataset: dict):
        self.cli, self.api, self.tenant, self.user, self.git, self.dataset = cli, api, tenant, user, git, dataset

    def __call__(self, *args, **kw):
        return self.cli(*args, **kw)

    def get(self, path, **kw):
        r = self.api.get(path, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def create(self, name, entry_point, *extra, git=("-go", "kqi", "-gr", "model")) -> int:
        """`kqi training create` with the required options and ``extra``; the new id."""
        r = self("training", "create", "-n", name, "-rim", "python", "-rt", "3.11", "-d", self.dataset["id"],
                 "-e", entry_point, *git, "-c", 1, "-mem", 1, "-g", 0, *extra)
        m = re.fullmatch(r"created (\d+)", r.stdout.rstrip("\n").splitlines()[-1])
        assert m, r.stdout
        return int(m.group(1))

    def wait(self, run_id, statuses=FINISHED, timeout=90, routes="training") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/{routes}/{run_id}")
            if run["status"] in statuses:
                return run
            time.sleep(0.3)
        raise AssertionError(f"{routes} {run_id} still {run['status']}: {run}")

    def wait_for_log(self, run_id, text, timeout=30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.api.get(f"/training/{run_id}/log").text:
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared in the log of {run_id}")


@pytest.fixture
def member(platform, tmp_path, new_tenant, new_user, model_repo) -> Member:
    tenant = new_tenant(displayName="Training tenant", gitIds=[1, model_repo["id"]], defaultGitId=model_repo["id"])
    user = new_user([{"id": tenant["id"], "default": True}])
    cli, api = cli_login(platform, tmp_path / "home", tenant, user)
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    r = api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    assert r.status_code in (200, 201), r.text
    dataset = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    member = Member(cli, api, tenant, user, model_repo, dataset)
    member.data = data
    return member


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """A pp_table's header and rows, each split on blanks."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no table printed"
    return lines[0].split(), [line.split() for line in lines[1:]]


def files_table(out: str) -> dict[str, int]:
    """{file_name: file_id} of `kqi training list-files` (names may hold blanks)."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split() == ["file_id", "file_name"], out
    return {rest.strip(): int(i) for i, rest in (line.split(None, 1) for line in lines[1:])}


def files_on_disk(root) -> dict[str, bytes]:
    """{relative posix path: bytes} of every file under root."""
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                found[os.path.relpath(full, root).replace(os.sep, "/")] = f.read()
    return found


def run_row(run: dict) -> list[str]:
    """The cells `kqi training list` prints for an API index model, split on blanks."""
    return [str(run["id"]), run["name"], run["createdAt"], run["createdBy"], run["dataSet"]["name"],
            *(run["memo"] or "").split(), *([",".join(run["tags"])] if run["tags"] else []), run["status"]]


def an_error(r, status: int) -> None:
    """The CLI failed with the API's error: `[ERROR] N …` then the JSON body."""
    assert r.returncode != 0, r.stdout
    assert r.stdout.splitlines()[0].startswith(f"[ERROR] {status}"), r.stdout
    assert json.loads(r.stdout.splitlines()[1])["status"] == status, r.stdout


def test_create_with_every_option_list_get_update_files_output_and_delete(member, tmp_path):
    commits = member.git["commits"]
    (partition, *_) = member.get("/tenant/partitions")
    name = unique("cli-run")[:30]

    # create: one run with every option, one on a branch with a parent, one at an older commit
    first = member.create(name, "python3 train.py", "-rid", 1, "-gid", member.git["id"], "-p", partition,
                          "-m", "first memo", "-t", "alpha", "-t", "beta", "-zip",
                          "-o", "SEED", "42", "-o", "GREETING", "two words")
    child = member.create(unique("child")[:30], "python3 train.py", "-gb", "feature", "-unzip", "-ld",
                          "-pid", first, "-o", "SEED", "7")
    old = member.create(unique("old")[:30], "python3 train.py", "-gc", commits["v1"][:12])
    runs = {i: member.wait(i) for i in (first, child, old)}
    assert [runs[i]["status"] for i in (first, child, old)] == ["Completed"] * 3, runs

    d = runs[first]
    assert (d["name"], d["memo"], d["tags"], d["partition"]) == (name, "first memo", ["alpha", "beta"], partition)
    assert (d["cpu"], d["memory"], d["gpu"], d["zip"], d["localDataSet"]) == (1, 1, 0, True, False)
    assert d["containerImage"]["image"] == "python" and d["containerImage"]["tag"] == "3.11"
    assert d["containerImage"]["registryId"] == 1
    assert d["gitModel"]["gitId"] == member.git["id"] and d["gitModel"]["commitId"] == commits["v2"]
    assert d["options"] == [{"key": "GREETING", "value": "two words"}, {"key": "SEED", "value": "42"}]
    assert d["dataSet"]["id"] == member.dataset["id"] and d["statusType"] == "Closed"
    c = runs[child]
    assert c["gitModel"]["branch"] == "feature" and c["gitModel"]["commitId"] == commits["feature"]
    assert c["gitModel"]["gitId"] == member.git["id"]  # the tenant's default endpoint
    assert (c["zip"], c["localDataSet"]) == (False, True)
    assert [p["id"] for p in c["parents"]] == [first] and c["parentFullNameList"] == [f"{first}:{name}"]
    assert runs[old]["gitModel"]["commitId"] == commits["v1"]

    # list: newest first, with the cells of each run; filters
    header, rows = table(member("training", "list").stdout)
    assert header == ["id", "name", "started_at", "started_by", "dataset", "memo", "tags", "status"]
    assert rows == [run_row(runs[i]) for i in (old, child, first)]
    listed = lambda *args: [int(row[0]) for row in table(member("training", "list", *args).stdout)[1]]  # noqa: E731
    assert listed("--name", name) == [first]
    assert listed("--id", first) == [first]
    assert listed("--memo", "first") == [first]
    assert listed("--tag", "alpha") == [first]
    assert listed("--tag", "alpha", "--tag", "beta") == [first]
    assert listed("--tag", "nowhere") == []
    assert listed("--status", "Completed") == [old, child, first]
    assert listed("--started-by", member.user["name"]) == [old, child, first]
    assert listed("--data-set", "ds") == [old, child, first]
    assert listed("--entry-point", "train.py") == [old, child, first]
    assert listed("--count", 2) == [old, child]

    # get: pp_dict of the details
    out = member("training", "get", first).stdout
    assert field(out, "id") == str(first) and field(out, "name") == name
    assert field(out, "status") == "Completed" and field(out, "status_type") == "Closed"
    assert field(out, "memo") == "first memo" and field(out, "entry_point") == "python3 train.py"
    assert field(out, "zip") == "true" and field(out, "partition") == partition
    assert field(out, "created_by") == member.user["name"]
    assert re.search(rf"^git_model:\n(?:  .*\n)*  commit_id: {commits['v2']}$", out, re.M), out
    assert re.search(r"^options:\n  - key: GREETING\n    value: two words\n  - key: SEED\n    value: 42$", out, re.M)
    assert re.search(r"^tags:\n  - alpha\n  - beta$", out, re.M), out
    out = member("training", "get", child).stdout
    assert re.search(rf"^parent_full_name_list:\n  - {first}:{name}$", out, re.M), out
    assert field(out, "local_data_set") == "true" and field(out, "zip") == "false"

    # update: name, memo, favorite and tags; then un-favorite leaves name and memo alone
    new_name = unique("renamed")[:30]
    r = member("training", "update", first, "-n", new_name, "-m", "second memo", "-fav", "-t", "gamma")
    assert r.stdout == f"updated {first}\n"
    d = member.get(f"/training/{first}")
    assert (d["name"], d["memo"], d["favorite"], d["tags"]) == (new_name, "second memo", True, ["gamma"])
    assert member("training", "update", first, "-unfav").stdout == f"updated {first}\n"
    d = member.get(f"/training/{first}")
    assert (d["name"], d["memo"], d["favorite"]) == (new_name, "second memo", False)

    # upload-file: attached beside the log and output.zip the platform kept
    notes = tmp_path / "hyper params.yaml"
    notes.write_bytes(b"lr: 0.01\nepochs: 3\n")
    member("training", "upload-file", first, "-f", notes)
    files = files_table(member("training", "list-files", first).stdout)
    log_name = f"training_stdout_stderr_{first}.log"
    assert set(files) == {log_name, "output.zip", "hyper params.yaml"}
    assert files == {f["fileName"]: f["fileId"] for f in member.get(f"/training/{first}/files")}
    assert set(files_table(member("training", "list-files", child).stdout)) == {f"training_stdout_stderr_{child}.log"}

    # download-files: the log with the run's output, output.zip with /kqi/output, the upload
    want = expected_output(first, "42", "v2")
    dest = tmp_path / "files"
    dest.mkdir()
    member("training", "download-files", first, "-d", dest)
    got = files_on_disk(dest)
    assert set(got) == set(files)
    log = got[log_name].decode()
    assert f"model v2 run {first} seed 42 commit {commits['v2']}" in log
    assert "greeting=two words" in log and f"stderr line of run {first}" in log
    assert f'inputs ["training/{member.data["id"]}/x.csv"]' in log
    archive = zipfile.ZipFile(io.BytesIO(got["output.zip"]))
    assert {n: archive.read(n) for n in archive.namelist()} == want
    assert got["hyper params.yaml"] == notes.read_bytes()
    only = tmp_path / "only-log"
    only.mkdir()
    member("training", "download-files", first, "-d", only, "-f", files[log_name])
    assert list(files_on_disk(only)) == [log_name]
    child_dest = tmp_path / "child-files"
    child_dest.mkdir()
    member("training", "download-files", child, "-d", child_dest)
    child_log = files_on_disk(child_dest)[f"training_stdout_stderr_{child}.log"].decode()
    assert f"model feature run {child} seed 7" in child_log
    assert 'parent ["nested/deeper dir/weights file.bin", "nested/metrics.json", "summary.txt"]' in child_log

    # list-container-files: every file of /kqi/output, recursively; from a sub directory
    lines = member("training", "list-container-files", first).stdout.splitlines()
    assert lines == ["/summary.txt", "/nested/metrics.json", "/nested/deeper dir/weights file.bin"]
    lines = member("training", "list-container-files", first, "-s", "nested/deeper dir").stdout.splitlines()
    assert lines == ["/nested/deeper dir/weights file.bin"]

    # download-container-files: the bytes the run wrote, the tree kept
    out_dir = tmp_path / "output"
    out_dir.mkdir()
    member("training", "download-container-files", first, "-d", out_dir)
    assert files_on_disk(out_dir) == want
    nested = tmp_path / "nested"
    nested.mkdir()
    member("training", "download-container-files", first, "-d", nested, "-s", "/nested")
    assert files_on_disk(nested) == {k: b for k, b in want.items() if k.startswith("nested/")}
    single = tmp_path / "single"
    single.mkdir()
    member("training", "download-container-files", first, "-d", single, "-f", "/nested/deeper dir/weights file.bin")
    assert files_on_disk(single) == {"nested/deeper dir/weights file.bin": want["nested/deeper dir/weights file.bin"]}
    old_dir = tmp_path / "old-output"
    old_dir.mkdir()
    member("training", "download-container-files", old, "-d", old_dir)
    assert files_on_disk(old_dir) == expected_output(old, "0", "v1")

    # delete-file: the upload goes; the platform's log stays (locked)
    r = member("training", "delete-file", first, "-f", files["hyper params.yaml"])
    assert r.stdout == f"deleted {files['hyper params.yaml']}\n"
    an_error(member("training", "delete-file", first, "-f", files[log_name], ok=False), 409)
    assert set(files_table(member("training", "list-files", first).stdout)) == {log_name, "output.zip"}

    # delete: a parent goes only after its child
    an_error(member("training", "delete", first, ok=False), 409)
    assert member("training", "delete", child).stdout == f"deleted {child}\n"
    assert member("training", "delete", first).stdout == f"deleted {first}\n"
    assert member.api.get(f"/training/{first}").status_code == 404
    an_error(member("training", "get", first, ok=False), 404)
    assert [int(row[0]) for row in table(member("training", "list").stdout)[1]] == [old]


def test_halt_a_running_training_ends_killed(member):
    run_id = member.create(unique("halt")[:30], "echo started; sleep 300", "-unzip")
    member.wait(run_id, ("Running",))
    member.wait_for_log(run_id, "started")
    an_error(member("training", "delete", run_id, ok=False), 409)  # not while it runs
    assert member("training", "halt", run_id).stdout == f"halted {run_id}\n"
    done = member.wait(run_id, timeout=30)
    assert (done["status"], done["statusType"]) == ("Killed", "Failed"), done
    assert field(member("training", "get", run_id).stdout, "status") == "Killed"
    an_error(member("training", "halt", run_id, ok=False), 409)  # already over
    files = files_table(member("training", "list-files", run_id).stdout)
    assert set(files) == {f"training_stdout_stderr_{run_id}.log"}
    assert member("training", "delete", run_id).stdout == f"deleted {run_id}\n"
    assert member.api.get(f"/training/{run_id}").status_code == 404


def test_complete_a_running_training_ends_completed_with_its_results(member, tmp_path):
    run_id = member.create(unique("complete")[:30], "echo started; mkdir -p /kqi/output/a && "
                           "echo kept > '/kqi/output/a/b c.txt'; echo written; sleep 300", "-zip")
    member.wait(run_id, ("Running",))
    member.wait_for_log(run_id, "written")
    assert member("training", "complete", run_id).stdout == f"completed {run_id}\n"
    done = member.wait(run_id, timeout=30)
    assert (done["status"], done["statusType"]) == ("Completed", "Closed"), done
    _, rows = table(member("training", "list", "--status", "Completed").stdout)
    assert [int(row[0]) for row in rows] == [run_id]
    dest = tmp_path / "files"
    dest.mkdir()
    member("training", "download-files", run_id, "-d", dest)
    got = files_on_disk(dest)
    assert set(got) == {f"training_stdout_stderr_{run_id}.log", "output.zip"}
    assert "started" in got[f"training_stdout_stderr_{run_id}.log"].decode()
    archive = zipfile.ZipFile(io.BytesIO(got["output.zip"]))
    assert {n: archive.read(n) for n in archive.namelist()} == {"a/b c.txt": b"kept\n"}
    out_dir = tmp_path / "output"
    out_dir.mkdir()
    member("training", "download-container-files", run_id, "-d", out_dir)
    assert files_on_disk(out_dir) == {"a/b c.txt": b"kept\n"}
    an_error(member("training", "complete", run_id, ok=False), 409)


def test_tensorboard_halt(member):
    run_id = member.create(unique("board")[:30], "mkdir -p /kqi/output/logs && echo event > /kqi/output/logs/e")
    member.wait(run_id)
    started = member.api.put(f"/training/{run_id}/tensorboard", json={})  # the CLI has no command to start one
    assert started.status_code == 200, started.text
    assert member.get(f"/training/{run_id}/tensorboard")["status"] == "Running"

    r = member("training", "tensorboard-halt", run_id)
    assert r.stdout == f"halted {run_id}\n"
    board = member.get(f"/training/{run_id}/tensorboard")
    assert (board["status"], board["name"]) == ("None", None), board
    assert member.get(f"/training/{run_id}")["status"] == "Completed"  # the training is untouched
    an_error(member("training", "tensorboard-halt", 99999999, ok=False), 404)


def test_upstream_inference_create_list_get_files_and_delete(member, tmp_path):
    """`kqi inference …` of the upstream CLI against the Inference group (same handlers as trainings)."""
    parent = member.create(unique("parent")[:30], "echo w > /kqi/output/model.txt")
    assert member.wait(parent)["status"] == "Completed"
    r = member("inference", "create", "-n", "cli-inf", "-rim", "python", "-rt", "3.11", "-d", member.dataset["id"],
               "-e", "cat /kqi/parent/model.txt > /kqi/output/value.txt", "-go", "kqi", "-gr", "model",
               "-c", 1, "-mem", 1, "-g", 0, "-pid", parent)
    m = re.search(r"created (\d+)", r.stdout)
    assert m, r.stdout
    inference = int(m.group(1))
    d = member.wait(inference, routes="inferences")
    assert d["status"] == "Completed" and d["outputValue"] == "w", d
    assert [p["id"] for p in d["parents"]] == [parent]
    listed = member("inference", "list").stdout
    assert str(inference) in listed and "cli-inf" in listed, listed
    got = member("inference", "get", inference).stdout
    assert "cli-inf" in got and "Completed" in got, got
    files = member("inference", "list-files", inference).stdout
    assert f"inference_stdout_stderr_{inference}.log" in files, files
    out = tmp_path / "out"
    out.mkdir()
    member("inference", "download-container-files", inference, "-d", out)
    found = {p.name: p.read_text() for p in out.rglob("value.txt")}
    assert found == {"value.txt": "w\n"}, list(out.rglob("*"))
    member("inference", "delete", inference)
    assert member.api.get(f"/inferences/{inference}").status_code == 404
