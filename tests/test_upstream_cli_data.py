"""The upstream kamonohashi-cli 4.0.2, unchanged, against the platform: data and dataset commands.

A fresh user in a fresh tenant logs in with `kqi account login` (a HOME of its
own); every command is run as that user would run it. What is asserted is what
the user sees — exit code, printed lines, bytes on disk — and the state the
API then reports for the same token.
"""

import hashlib
import json
import os
import re

import pytest
from conftest import unique
from upstream import Cli, cli_login, field, require_upstream_cli

pytestmark = pytest.mark.upstream

MiB = 1024 * 1024
PART = 16 * MiB  # the upstream client's part size


@pytest.fixture(scope="session", autouse=True)
def _upstream_installed():
    """Session scope: checked before the (session) platform starts, so a skip costs nothing."""
    require_upstream_cli()


class Member:
    """A logged-in upstream `kqi` of a new user in a new tenant, and the API with the same token."""

    def __init__(self, cli: Cli, api, tenant: dict, user: dict):
        self.cli, self.api, self.tenant, self.user = cli, api, tenant, user

    def __call__(self, *args, **kw):
        return self.cli(*args, **kw)

    def get(self, path):
        r = self.api.get(path)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def member(platform, tmp_path, new_tenant, new_user) -> Member:
    tenant = new_tenant(displayName="Data tenant")
    user = new_user([{"id": tenant["id"], "default": True}])
    cli, api = cli_login(platform, tmp_path / "home", tenant, user)
    return Member(cli, api, tenant, user)


def write(path, payload: bytes) -> str:
    with open(path, "wb") as f:
        f.write(payload)
    return str(path)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def last_line(out: str) -> str:
    lines = out.rstrip("\n").splitlines()
    assert lines, "nothing printed"
    return lines[-1]


def created_id(out: str) -> int:
    """The id of `created N`, the last line printed (progress labels come before it)."""
    m = re.fullmatch(r"created (\d+)", last_line(out))
    assert m, out
    return int(m.group(1))


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """A pp_table's header and rows, each split on blanks (cells here hold no blanks)."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no table printed"
    return lines[0].split(), [line.split() for line in lines[1:]]


def files_on_disk(root) -> dict[str, str]:
    """{relative path: sha256} of every file under root."""
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root)] = sha256(full)
    return found


def data_row(d: dict) -> list[str]:
    """The cells `kqi data list` prints for an API data model."""
    return [str(d["id"]), d["name"], *str(d["createdAt"]).split(), d["createdBy"], *(d["memo"] or "").split(),
            *([",".join(d["tags"])] if d["tags"] else [])]


def test_data_create_list_get_update_files_and_delete(member, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    big = write(src / "big.bin", os.urandom(20 * MiB + 123))  # two 16 MiB parts
    empty = write(src / "empty.txt", b"")  # no part at all
    japanese = write(src / "データ.txt", "日本語のデータ\n".encode())
    sums = {os.path.basename(p): sha256(p) for p in (big, empty, japanese)}
    name = unique("cli-data")

    # create: three uploads, then one registration
    r = member("data", "create", "-n", name, "-f", big, "-f", empty, "-f", japanese,
               "-m", "first-memo", "-t", "cats", "-t", "v1", timeout=300)
    data_id = created_id(r.stdout)
    d = member.get(f"/data/{data_id}")
    assert (d["name"], d["memo"], d["tags"]) == (name, "first-memo", ["cats", "v1"])
    assert sorted(d["fileNames"]) == sorted(sums)
    files = {f["fileName"]: f for f in member.get(f"/data/{data_id}/files")}
    assert {n: f["fileSize"] for n, f in files.items()} == {"big.bin": 20 * MiB + 123, "empty.txt": 0,
                                                             "データ.txt": len("日本語のデータ\n".encode())}

    # list, and list filtered by name (a substring)
    other = created_id(member("data", "create", "-n", unique("other"), "-f", empty).stdout)
    header, rows = table(member("data", "list").stdout)
    assert header == ["id", "name", "created_at", "created_by", "memo", "tags"]
    assert rows == [data_row(member.get(f"/data/{i}")) for i in (other, data_id)]  # newest first
    header, rows = table(member("data", "list", "--name", name[len("cli-"):]).stdout)
    assert header[0] == "id" and [row[0] for row in rows] == [str(data_id)]
    header, rows = table(member("data", "list", "--name", "no-such-data-name").stdout)
    assert rows == []
    # two --tag filters reach the server as tag=cats,v1: data carrying both
    header, rows = table(member("data", "list", "--tag", "cats", "--tag", "v1").stdout)
    assert [row[0] for row in rows] == [str(data_id)]

    # get: pp_dict of the details
    out = member("data", "get", data_id).stdout
    assert field(out, "id") == str(data_id)
    assert field(out, "name") == name
    assert field(out, "memo") == "first-memo"
    assert field(out, "created_by") == member.user["name"]
    assert field(out, "is_raw") == "true"
    assert re.search(r"^tags:\n  - cats\n  - v1$", out, re.M), out
    m = re.search(r"^file_names:\n((?:  - .*\n)+)", out, re.M)
    assert m, out
    assert sorted(line[4:] for line in m.group(1).splitlines()) == sorted(sums)

    # update: name, memo and tags replaced
    new_name = unique("renamed")
    r = member("data", "update", data_id, "-n", new_name, "-m", "second-memo", "-t", "dogs")
    assert r.stdout == f"updated {data_id}\n"
    d = member.get(f"/data/{data_id}")
    assert (d["name"], d["memo"], d["tags"]) == (new_name, "second-memo", ["dogs"])
    assert sorted(d["fileNames"]) == sorted(sums)

    # upload-files: one more file
    extra = write(src / "extra.csv", b"a,b\n1,2\n")
    sums["extra.csv"] = sha256(extra)
    member("data", "upload-files", data_id, "-f", extra)
    files = {f["fileName"]: f for f in member.get(f"/data/{data_id}/files")}
    assert set(files) == set(sums) and files["extra.csv"]["fileSize"] == 8

    # list-files: the ids and names the API has
    header, rows = table(member("data", "list-files", data_id).stdout)
    assert header == ["file_id", "file_name"]
    assert sorted(rows) == sorted([str(f["fileId"]), n] for n, f in files.items())

    # download-files: every file, byte for byte
    dest = tmp_path / "download"
    dest.mkdir()
    member("data", "download-files", data_id, "-d", dest, timeout=300)
    assert files_on_disk(dest) == sums

    # delete-file: gone from the data, the others stay
    big_id = files["big.bin"]["fileId"]
    r = member("data", "delete-file", data_id, "-f", big_id)
    assert r.stdout == f"deleted {big_id}\n"
    left = {f["fileName"] for f in member.get(f"/data/{data_id}/files")}
    assert left == set(sums) - {"big.bin"}
    header, rows = table(member("data", "list-files", data_id).stdout)
    assert sorted(row[1] for row in rows) == sorted(left)

    # delete: the data is gone
    r = member("data", "delete", data_id)
    assert r.stdout == f"deleted {data_id}\n"
    assert member.api.get(f"/data/{data_id}").status_code == 404
    assert [x["id"] for x in member.get("/data")] == [other]
    _, rows = table(member("data", "list").stdout)
    assert [row[0] for row in rows] == [str(other)]


def dataset_entries(out: str) -> dict[str, list[int]]:
    """{type: [data ids]} from the `entries:` block of `kqi dataset get`."""
    m = re.search(r"^entries:\n((?:  .*\n)*)", out, re.M)
    assert m, out
    entries: dict[str, list[int]] = {}
    current = None
    for line in m.group(1).splitlines():
        t = re.fullmatch(r"  (\w+):", line)
        if t:
            current = entries.setdefault(t.group(1), [])
            continue
        i = re.fullmatch(r"    (?:- |  )id: (\d+)", line)
        if i:
            current.append(int(i.group(1)))
    return entries


def test_dataset_types_create_list_get_update_download_pathpairs_and_delete(member, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ids, sums = {}, {}
    for kind in ("train", "valid", "test"):
        a = write(src / f"{kind}.bin", os.urandom(1000 + len(kind)))
        b = write(src / f"{kind}-ラベル.txt", f"{kind} labels\n".encode())
        ids[kind] = created_id(member("data", "create", "-n", unique(kind), "-f", a, "-f", b).stdout)
        sums[ids[kind]] = {os.path.basename(a): sha256(a), os.path.basename(b): sha256(b)}

    # the data types, as the API lists them
    r = member("dataset", "list-data-types")
    types = [t["name"] for t in member.get("/datatypes")]
    assert r.stdout.splitlines() == types
    assert set(types) >= {"training", "validation", "testing"}

    # create from a JSON file
    name = unique("cli-dataset")
    spec = tmp_path / "dataset.json"
    spec.write_text(json.dumps({"name": name, "memo": "made by kqi", "entries": {
        "training": [{"id": ids["train"]}], "validation": [{"id": ids["valid"]}],
        "testing": [{"id": ids["test"]}]}}), encoding="utf-8")
    dataset_id = created_id(member("dataset", "create", "-f", spec).stdout)
    ds = member.get(f"/datasets/{dataset_id}")
    assert (ds["name"], ds["memo"], ds["isFlat"]) == (name, "made by kqi", False)
    assert {t: [x["id"] for x in xs] for t, xs in ds["entries"].items()} == {
        "training": [ids["train"]], "validation": [ids["valid"]], "testing": [ids["test"]]}

    # list
    header, rows = table(member("dataset", "list").stdout)
    assert header == ["id", "name", "created_at", "memo"]
    assert rows == [[str(dataset_id), name, *str(ds["createdAt"]).split(), "made", "by", "kqi"]]

    # get
    out = member("dataset", "get", dataset_id).stdout
    assert field(out, "id") == str(dataset_id)
    assert field(out, "name") == name
    assert field(out, "memo") == "made by kqi"
    assert field(out, "is_flat") == "false"
    assert field(out, "created_by") == member.user["name"]
    assert dataset_entries(out) == {"training": [ids["train"]], "validation": [ids["valid"]],
                                    "testing": [ids["test"]]}

    # update from a JSON file: entries replaced (two training data, no testing)
    spec2 = tmp_path / "dataset2.json"
    spec2.write_text(json.dumps({"name": name, "memo": "made by kqi", "entries": {
        "training": [{"id": ids["train"]}, {"id": ids["test"]}], "validation": [{"id": ids["valid"]}]}}),
        encoding="utf-8")
    r = member("dataset", "update", dataset_id, "-f", spec2)
    assert r.stdout == f"updated {dataset_id}\n"
    expected = {"training": [ids["train"], ids["test"]], "validation": [ids["valid"]]}
    ds = member.get(f"/datasets/{dataset_id}")
    assert {t: [x["id"] for x in xs] for t, xs in ds["entries"].items() if xs} == expected
    assert {t: ids_ for t, ids_ in dataset_entries(member("dataset", "get", dataset_id).stdout).items()
            if ids_} == expected

    # update-meta-info: name and memo only
    new_name = unique("renamed-dataset")
    r = member("dataset", "update-meta-info", dataset_id, "-n", new_name, "-m", "new memo")
    assert r.stdout == f"meta-info updated {dataset_id}\n"
    ds = member.get(f"/datasets/{dataset_id}")
    assert (ds["name"], ds["memo"]) == (new_name, "new memo")
    assert {t: [x["id"] for x in xs] for t, xs in ds["entries"].items() if xs} == expected

    # download-files: {type}/{dataId}/{file}, byte for byte
    want = {os.path.join(t, str(d), n): s for t, ds_ in expected.items() for d in ds_ for n, s in sums[d].items()}
    dest = tmp_path / "download"
    dest.mkdir()
    member("dataset", "download-files", dataset_id, "-d", dest)
    assert files_on_disk(dest) == want
    only = tmp_path / "only-validation"
    only.mkdir()
    member("dataset", "download-files", dataset_id, "-d", only, "-t", "validation")
    assert files_on_disk(only) == {k: s for k, s in want.items() if k.startswith("validation" + os.sep)}

    # list-path-pairs: data path, then stored path, per file
    lines = member("dataset", "list-path-pairs", dataset_id).stdout.splitlines()
    pairs = member.get(f"/datasets/{dataset_id}/pathpairs")
    assert lines == [x for p in pairs for x in (p["dataPath"], p["storedPath"])]
    assert sorted(lines[0::2]) == sorted(k.replace(os.sep, "/") for k in want)

    # delete: the dataset is gone, its data stay
    r = member("dataset", "delete", dataset_id)
    assert r.stdout == f"deleted {dataset_id}\n"
    assert member.api.get(f"/datasets/{dataset_id}").status_code == 404
    _, rows = table(member("dataset", "list").stdout)
    assert rows == []
    assert sorted(x["id"] for x in member.get("/data")) == sorted(ids.values())


def test_deleting_data_used_by_a_dataset_fails_and_keeps_it(member, tmp_path):
    payload = write(tmp_path / "used.bin", os.urandom(4096))
    data_id = created_id(member("data", "create", "-n", unique("used"), "-f", payload).stdout)
    spec = tmp_path / "dataset.json"
    spec.write_text(json.dumps({"name": unique("ds"), "entries": {"training": [{"id": data_id}]}}))
    dataset_id = created_id(member("dataset", "create", "-f", spec).stdout)
    before = member.get(f"/data/{data_id}/files")

    r = member("data", "delete", data_id, ok=False)
    assert r.returncode != 0
    assert r.stdout.splitlines()[0].startswith("[ERROR] 409"), r.stdout
    assert f"deleted {data_id}" not in r.stdout
    assert member.get(f"/data/{data_id}")["id"] == data_id
    assert member.get(f"/data/{data_id}/files") == before
    _, rows = table(member("data", "list").stdout)
    assert [row[0] for row in rows] == [str(data_id)]
    dest = tmp_path / "download"
    dest.mkdir()
    member("data", "download-files", data_id, "-d", dest)
    assert files_on_disk(dest) == {"used.bin": sha256(payload)}

    # once the dataset is gone, the data can go
    member("dataset", "delete", dataset_id)
    assert member("data", "delete", data_id).stdout == f"deleted {data_id}\n"
    assert member.api.get(f"/data/{data_id}").status_code == 404
