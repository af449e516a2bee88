"""Our ``kqi preprocessing`` against the real platform, run as a user runs it (a subprocess, KQI_SERVER/KQI_TOKEN).

What a user sees: a definition made from a JSON file, listed and shown
(``--json``, ``get -d``); ``run`` on several data at once printing
``started P.D`` each, all or none; each history's log followed live; the
data the histories produced, downloaded byte for byte; halt, delete of a
history (and of its data), the definition's edits; ``build-history`` of
results made elsewhere (upload bars on stderr); clear errors, non-zero exits.
"""

import json

import pytest
from conftest import unique, upload, wait_until
from test_kqi_cli import created, field, lab_kqi  # noqa: F401 (lab_kqi: the fixture)

from kqi_services.executor.local import image_notice

#: the first line of the log of a run that names an image: the sandbox says it does not use it
NOTICE = image_notice("python:3.11")

pytestmark = pytest.mark.platform

RESOURCES = ("-c", 1, "-mem", 1, "-g", 0)
COPY = ("mkdir -p /kqi/output/out/deep /kqi/output/second && cp /kqi/input/$DATA_ID/* /kqi/output/out/ && "
        "echo nested-$DATA_ID > /kqi/output/out/deep/n.txt && echo two > /kqi/output/second/b.txt && "
        "echo processing $DATA_NAME mode=$MODE")


@pytest.fixture
def kqi(lab_kqi):  # noqa: F811
    return lab_kqi


def define(kqi, tmp_path, command=COPY, **overrides) -> int:
    """``kqi preprocessing create -f`` of a runnable definition; its id."""
    lab = kqi.lab
    body = {"name": unique("crop"), "entryPoint": command, "containerImage": {"image": "python", "tag": "3.11"},
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
            "cpu": 1, "memory": 1, "gpu": 0, **overrides}
    path = tmp_path / f"{body['name']}.json"
    path.write_text(json.dumps(body))
    return created(kqi("preprocessing", "create", "-f", path))


def new_data(api, name, files: dict[str, bytes]) -> int:
    data = api.post("/data", {"name": name}).json()
    for file_name, payload in files.items():
        ticket = upload(api, file_name, payload)
        r = api.post(f"/data/{data['id']}/files", {"files": [{"fileName": file_name,
                                                              "storedPath": ticket["storedPath"]}]})
        assert r.status_code in (200, 201), r.text
    return data["id"]


def history(kqi, pre_id, data_id) -> dict:
    return next(h for h in kqi.json("preprocessing", "list-histories", pre_id) if h["dataId"] == data_id)


def downloaded(kqi, data_id, where) -> dict[str, bytes]:
    where.mkdir()
    kqi("data", "download-files", data_id, "-d", where)
    return {p.name: p.read_bytes() for p in where.iterdir()}


def test_define_run_on_several_data_follow_the_logs_and_get_the_results(kqi, tmp_path):
    api = kqi.lab["api"]
    pre_id = define(kqi, tmp_path, memo="first memo")
    name = kqi.json("preprocessing", "get", pre_id)["name"]
    lines = kqi("preprocessing", "list").stdout.splitlines()
    assert lines[0].split() == ["id", "name", "created_at", "memo"]
    assert lines[1].split()[:2] == [str(pre_id), name] and lines[1].split()[-2:] == ["first", "memo"]
    assert [p["id"] for p in kqi.json("preprocessing", "list", "--name", name)] == [pre_id]
    details = kqi.json("preprocessing", "get", pre_id)
    assert details["missingForRun"] == [] and details["isLocked"] is False
    assert field(kqi("preprocessing", "get", pre_id).stdout, "entry_point") == COPY
    saved = tmp_path / "saved.json"
    assert kqi("preprocessing", "get", pre_id, "-d", saved).stdout.strip() == f"save {pre_id} as {saved}"
    assert json.loads(saved.read_text())["id"] == pre_id

    first = new_data(api, "raw-a", {"img.bin": b"\x00\x01A" * 1000})
    second = new_data(api, "raw-b", {"img.bin": b"B" * 10})
    r = kqi("preprocessing", "run", pre_id, "-did", first, "-did", second, *RESOURCES, "-o", "MODE", "fast")
    assert r.stdout.splitlines() == [f"started {pre_id}.{first}", f"started {pre_id}.{second}"]
    for data_id, data_name in ((first, "raw-a"), (second, "raw-b")):
        r = kqi("preprocessing", "log", pre_id, "-did", data_id, "-f")
        assert r.stdout == NOTICE + f"processing {data_name} mode=fast\n"
        assert r.stderr.strip().splitlines()[-1] == "status: Completed"
    assert kqi("preprocessing", "log", pre_id, "-did", first).stdout == NOTICE + "processing raw-a mode=fast\n"

    lines = kqi("preprocessing", "list-histories", pre_id).stdout.splitlines()
    assert lines[0].split() == ["data_id", "data_name", "created_at", "status"]
    assert sorted((row.split()[0], row.split()[1], row.split()[-1]) for row in lines[1:]) == \
        sorted([(str(first), "raw-a", "Completed"), (str(second), "raw-b", "Completed")])
    made = history(kqi, pre_id, first)["outputDataIds"]
    outputs = {kqi.json("data", "get", i)["name"]: i for i in made}
    assert set(outputs) == {"out", "second"}
    assert downloaded(kqi, outputs["out"], tmp_path / "out") == {"img.bin": b"\x00\x01A" * 1000,
                                                                  "n.txt": f"nested-{first}\n".encode()}
    assert downloaded(kqi, outputs["second"], tmp_path / "second") == {"b.txt": b"two\n"}

    # all or none: a run naming processed data makes no history, not even for the new data
    third = new_data(api, "raw-c", {"img.bin": b"C"})
    r = kqi("preprocessing", "run", pre_id, "-did", third, "-did", first, *RESOURCES, ok=False)
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr and r.stdout == ""
    assert third not in [h["dataId"] for h in kqi.json("preprocessing", "list-histories", pre_id)]
    started = kqi.json("preprocessing", "run", pre_id, "-did", third, *RESOURCES)
    assert [(h["dataId"], h["status"]) for h in started] == [(third, "Pending")]
    kqi("preprocessing", "log", pre_id, "-did", third, "-f")

    # the definition: locked once it has histories, but its meta information may change
    r = kqi("preprocessing", "update", pre_id, "-f", saved, ok=False)
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr
    r = kqi("preprocessing", "update-meta-info", pre_id, "-n", "renamed", "-m", "second memo", "-c", 2)
    assert r.stdout.strip() == f"meta-info updated {pre_id}"
    edited = kqi.json("preprocessing", "get", pre_id)
    assert (edited["name"], edited["memo"], edited["cpu"], edited["isLocked"]) == ("renamed", "second memo", 2, True)

    # delete-history deletes the data it made; then the definition goes
    made = ", ".join(str(i) for i in sorted(outputs.values()))
    assert kqi("preprocessing", "delete-history", pre_id, "-did", first).stdout.strip() == \
        f"deleted {pre_id}.{first} and the data it made: {made}"
    r = kqi("data", "get", outputs["out"], ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr
    assert first not in [h["dataId"] for h in kqi.json("preprocessing", "list-histories", pre_id)]
    assert kqi("preprocessing", "delete", pre_id).stdout.strip() == f"deleted {pre_id}"
    r = kqi("preprocessing", "get", pre_id, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr


def test_halt_a_history_and_build_histories_made_elsewhere(kqi, tmp_path):
    api, data_id = kqi.lab["api"], kqi.lab["data"]["id"]
    slow = define(kqi, tmp_path, command="echo started; sleep 300")
    kqi("preprocessing", "run", slow, "-did", data_id, *RESOURCES)
    wait_until(lambda: "started" in kqi("preprocessing", "log", slow, "-did", data_id).stdout, 60, "the log")
    assert kqi("preprocessing", "halt-history", slow, "-did", data_id).stdout.strip() == f"halted {slow}.{data_id}"
    r = kqi("preprocessing", "log", slow, "-did", data_id, "-f")
    assert r.stdout == NOTICE + "started\n" and r.stderr.strip().splitlines()[-1] == "status: Killed"
    assert history(kqi, slow, data_id)["outputDataIds"] == []

    # build-history: each directory of the source becomes a data (files found recursively); loose files do not
    source = tmp_path / "results"
    (source / "crops" / "nested").mkdir(parents=True)
    (source / "labels").mkdir()
    (source / "crops" / "a.bin").write_bytes(b"\x07" * 70_000)
    (source / "crops" / "nested" / "b.txt").write_text("bee")
    (source / "labels" / "l.csv").write_text("id,label\n")
    (source / "loose.txt").write_text("not a data")
    external = created(kqi("preprocessing", "create", "-f", _body(tmp_path, {"name": "made elsewhere 外部"})))
    r = kqi("preprocessing", "build-history", external, "-did", data_id, "-s", source, "-m", "by hand", "-t", "manual")
    assert r.stdout.strip() == f"built {external}.{data_id}"
    assert "a.bin" in r.stderr and "%" in r.stderr  # upload bars
    built = history(kqi, external, data_id)
    assert built["status"] == "Completed"
    outputs = {(d := kqi.json("data", "get", i))["name"]: d for i in built["outputDataIds"]}
    assert set(outputs) == {"crops", "labels"}
    assert outputs["crops"]["memo"] == "by hand" and "manual" in outputs["crops"]["tags"]
    assert downloaded(kqi, outputs["crops"]["id"], tmp_path / "crops") == {"a.bin": b"\x07" * 70_000,
                                                                           "b.txt": b"bee"}

    # build-history-files: into a history already opened (the upstream external flow's second half)
    other = new_data(api, "raw-other", {"x.bin": b"x"})
    assert api.post(f"/preprocessings/{external}/histories/{other}").status_code == 201
    assert history(kqi, external, other)["status"] == "Opened"
    kqi("preprocessing", "build-history-files", external, "-did", other, "-s", source)
    done = history(kqi, external, other)
    assert done["status"] == "Completed" and len(done["outputDataIds"]) == 2
    r = kqi("preprocessing", "build-history", external, "-did", other, "-s", source, ok=False)
    assert r.returncode == 1 and "[ERROR] 409" in r.stderr


def _body(tmp_path, body: dict):
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body, ensure_ascii=False))
    return path


def test_bad_input_is_refused_with_a_clear_message(kqi, tmp_path):
    data_id = kqi.lab["data"]["id"]
    (tmp_path / "bad.json").write_text("{")
    r = kqi("preprocessing", "create", "-f", tmp_path / "bad.json", ok=False)
    assert r.returncode == 2 and "is not JSON" in r.stderr
    r = kqi("preprocessing", "create", ok=False)
    assert r.returncode == 2 and "Missing option '-f' / '--file'" in r.stderr
    incomplete = created(kqi("preprocessing", "create", "-f", _body(tmp_path, {"name": "only a name"})))
    assert kqi.json("preprocessing", "get", incomplete)["missingForRun"][:2] == ["entryPoint", "containerImage"]
    r = kqi("preprocessing", "run", incomplete, "-did", data_id, *RESOURCES, ok=False)
    assert r.returncode == 1 and "[ERROR] 400" in r.stderr and "lacks entryPoint" in r.stderr
    r = kqi("preprocessing", "run", incomplete, *RESOURCES, ok=False)
    assert r.returncode == 2 and "Missing option '-did' / '--data-id'" in r.stderr
    runnable = define(kqi, tmp_path, command="true")
    r = kqi("preprocessing", "run", runnable, "-did", 987654321, *RESOURCES, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr
    r = kqi("preprocessing", "log", runnable, "-did", data_id, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr and "no history" in r.stderr
    r = kqi("preprocessing", "get", 987654321, ok=False)
    assert r.returncode == 1 and "[ERROR] 404" in r.stderr and "987654321" in r.stderr
    r = kqi("preprocessing", "build-history", runnable, "-did", data_id, "-s", tmp_path / "missing", ok=False)
    assert r.returncode == 2 and "does not exist" in r.stderr
