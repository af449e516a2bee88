"""Preprocessing on the real platform: definitions, histories on the one engine, results as data, the external flow.

What a user sees: a definition needs only its name but runs only when
complete; a run makes one history per data, which runs in the sandbox with
its data at /kqi/input/{dataId}/ and the original's variables; each
directory of /kqi/output becomes a data (hard-linked into the store, not
copied), nothing when the history fails; a second run on the same data is
a 409 until the history is deleted, which deletes its data.
"""

from __future__ import annotations

import os

import pytest
import requests
from conftest import unique, upload, wait_for

pytestmark = pytest.mark.platform

COPY = ("mkdir -p /kqi/output/out/deep /kqi/output/second && cp /kqi/input/$DATA_ID/* /kqi/output/out/ && "
        "echo nested-$DATA_ID > /kqi/output/out/deep/n.txt && echo two > /kqi/output/second/b.txt && "
        "echo top > /kqi/output/not-registered.txt && ln -s /etc/passwd /kqi/output/out/link && "
        "ln -s /etc /kqi/output/etc-link && ln -s /etc /kqi/output/out/etc && mkfifo /kqi/output/out/pipe && "
        "echo P=$PREPROCESSING_ID D=$DATA_ID N=$DATA_NAME T=\"$TAGS\" && ls /kqi/input/$DATA_ID && pwd && "
        "(touch /kqi/input/$DATA_ID/w 2>/dev/null && echo input-writable || echo input-read-only)")


def define(lab, command=COPY, **overrides):
    body = {"name": unique("crop"), "entryPoint": command,
            "containerImage": {"image": "python", "tag": "3.11"},
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
            "cpu": 1, "memory": 1, "gpu": 0, **overrides}
    r = lab["api"].post("/preprocessings", body)
    assert r.status_code == 201, r.text
    return r.json()


def new_data(api, name, files: dict[str, bytes], tags=()):
    data = api.post("/data", {"name": name, "tags": list(tags)}).json()
    for file_name, payload in files.items():
        ticket = upload(api, file_name, payload)
        r = api.post(f"/data/{data['id']}/files", {"files": [{"fileName": file_name,
                                                              "storedPath": ticket["storedPath"]}]})
        assert r.status_code in (200, 201), r.text
    return data


def wait_history(api, pre_id, data_id, timeout=90):
    history = api.get(f"/preprocessings/{pre_id}/histories/{data_id}").json()
    wait_for(api, history["runId"], timeout=timeout, routes="preprocessing")
    return api.get(f"/preprocessings/{pre_id}/histories/{data_id}").json()


def data_files(api, data_id):
    return {f["fileName"]: requests.get(f["url"], timeout=30).content
            for f in api.get(f"/data/{data_id}/files", params={"withUrl": "true"}).json()}


def store_binding(state_dir, stored_path):
    for root, dirs, _files in os.walk(state_dir):
        if "paths" in dirs and os.path.isdir(os.path.join(root, "objects")):
            return os.path.join(root, "paths", stored_path)
    raise AssertionError("no local store under the state dir")


def test_definition_needs_only_a_name_but_runs_only_when_complete(platform, lab):
    api = lab["api"]
    r = api.post("/preprocessings", {"name": "only a name: 任意の文字列"})
    assert r.status_code == 201, r.text
    pre = r.json()
    assert pre["name"] == "only a name: 任意の文字列" and pre["cpu"] is None
    details = api.get(f"/preprocessings/{pre['id']}").json()
    assert details["missingForRun"] == ["entryPoint", "containerImage", "gitModel", "cpu", "memory", "gpu"]
    assert details["isLocked"] is False and details["entryPoint"] is None
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": lab["data"]["id"], "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 400 and "lacks entryPoint, containerImage, gitModel" in r.json()["message"], r.text
    assert api.get(f"/preprocessings/{pre['id']}/histories").json() == []

    assert api.post("/preprocessings", {"memo": "no name"}).status_code == 400
    assert api.post("/preprocessings", {"name": "x", "cpu": 0}).status_code == 400
    r = api.post("/preprocessings", {"name": "x", "gitModel": {"gitId": 999999, "owner": "a", "repository": "b"}})
    assert r.status_code == 404

    full = {"name": "complete", "entryPoint": "true", "containerImage": {"image": "python", "tag": "3.11"},
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"}, "cpu": 1,
            "memory": 1, "gpu": 0}
    r = api.put(f"/preprocessings/{pre['id']}", full)
    assert r.status_code == 200, r.text
    assert api.get(f"/preprocessings/{pre['id']}").json()["missingForRun"] == []
    r = api.patch(f"/preprocessings/{pre['id']}", {"memo": "edited", "cpu": 2})
    assert r.status_code == 200 and r.json()["memo"] == "edited" and r.json()["cpu"] == 2
    assert r.json()["name"] == "complete"
    assert [p["id"] for p in api.get("/preprocessings", params={"Name": "complete"}).json()] == [pre["id"]]
    # resources left out (or null) are the definition's defaults
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": lab["data"]["id"], "cpu": None, "memory": None})
    assert r.status_code == 201 and (r.json()["cpu"], r.json()["memory"], r.json()["gpu"]) == (2, 1, 0), r.text
    assert wait_history(api, pre["id"], lab["data"]["id"])["status"] == "Completed"
    # a definition whose histories have ended can go; they stay as runs (with their data)
    assert api.delete(f"/preprocessings/{pre['id']}").status_code == 204
    assert api.get(f"/preprocessings/{pre['id']}").status_code == 404


def test_a_run_on_several_data_makes_a_history_each_and_their_results_data(platform, lab):
    api = lab["api"]
    pre = define(lab)
    first = new_data(api, "raw-a", {"img.bin": b"\x00\x01A" * 1000, "meta.txt": b"a"}, tags=["batch1"])
    second = new_data(api, "raw-b", {"img.bin": b"B" * 10})
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataIds": [first["id"], second["id"]], "cpu": 1,
                                                      "memory": 1, "gpu": 0, "options": {"MODE": "fast"}})
    assert r.status_code == 201, r.text
    histories = r.json()
    assert [h["dataId"] for h in histories] == [first["id"], second["id"]]
    assert all(h["status"] == "Pending" and h["preprocessName"] == pre["name"] for h in histories)

    done = wait_history(api, pre["id"], first["id"])
    assert done["status"] == "Completed", done
    assert len(done["outputDataIds"]) == 2
    log = api.get(f"/preprocessing/{done['runId']}/log").text
    assert f"P={pre['id']} D={first['id']} N=raw-a T=-t {pre['name']} -t batch1" in log, log
    assert "img.bin\nmeta.txt\n/kqi/git\ninput-read-only" in log, log

    outputs = {d["name"]: d for d in (api.get(f"/data/{i}").json() for i in done["outputDataIds"])}
    assert set(outputs) == {"out", "second"}
    out = outputs["out"]
    assert out["tags"] == sorted([pre["name"], "batch1"]) and out["parentDataId"] == first["id"]
    assert out["producedByRunId"] == done["runId"] and out["isRaw"] is False
    assert f"preprocessing {pre['id']}:{pre['name']} from data {first['id']}:raw-a" in out["memo"]
    # recursively, by base name; /kqi/output's own files are not registered, and nothing of the host is: links
    # (to a file, to a directory, as a top-level "data") are not followed and a FIFO is not read
    assert data_files(api, out["id"]) == {"img.bin": b"\x00\x01A" * 1000, "meta.txt": b"a",
                                         "n.txt": f"nested-{first['id']}\n".encode()}
    assert data_files(api, outputs["second"]["id"]) == {"b.txt": b"two\n"}
    assert "not regular files" in (done["conditionNote"] or ""), done

    # registered by hard link: the store's binding is the run's output file itself (bytes unique to this run)
    listed = api.get(f"/data/{out['id']}/files").json()
    stored = next(f for f in listed if f["fileName"] == "n.txt")["key"]
    runs_file = os.path.join(platform.state_dir, "runs", f"preprocessing-{done['runId']}", "output", "out", "deep",
                             "n.txt")
    binding = store_binding(platform.state_dir, stored)
    assert os.path.exists(runs_file), runs_file
    assert os.stat(binding).st_ino == os.stat(runs_file).st_ino

    # the log is attached as the original names it
    attached = api.get(f"/preprocessings/{pre['id']}/histories/{first['id']}/files", params={"withUrl": "true"}).json()
    assert attached["fileName"] == f"preproc_stdout_stderr_{pre['id']}_{first['id']}.log"
    assert f"D={first['id']}".encode() in requests.get(attached["url"], timeout=30).content

    other = wait_history(api, pre["id"], second["id"])
    assert other["status"] == "Completed", other
    listed = api.get(f"/preprocessings/{pre['id']}/histories").json()
    assert sorted(h["dataId"] for h in listed) == sorted([first["id"], second["id"]])
    assert api.get(f"/preprocessings/{pre['id']}").json()["isLocked"] is True

    # once run, its command cannot change (PUT), its meta can (PATCH); it cannot run twice on one data
    assert api.put(f"/preprocessings/{pre['id']}", {"name": "n", "entryPoint": "false"}).status_code == 409
    assert api.patch(f"/preprocessings/{pre['id']}", {"memo": "m"}).status_code == 200
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": first["id"], "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 409 and "already been processed" in r.json()["message"], r.text
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataIds": [lab["data"]["id"], first["id"]], "cpu": 1,
                                                      "memory": 1, "gpu": 0})
    assert r.status_code == 409
    assert api.get(f"/preprocessings/{pre['id']}/histories/{lab['data']['id']}").status_code == 404  # none made

    # deleting the history deletes the data it produced; then the data can be processed again
    r = api.delete(f"/preprocessings/{pre['id']}/histories/{first['id']}")
    assert r.status_code == 204 and r.headers["X-Deleted-Data"] == ",".join(map(str, done["outputDataIds"]))
    for data_id in done["outputDataIds"]:
        assert api.get(f"/data/{data_id}").status_code == 404
    assert not os.path.exists(binding)
    assert api.get(f"/data/{first['id']}").status_code == 200  # the input stays
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": first["id"], "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 201, r.text
    assert wait_history(api, pre["id"], first["id"])["status"] == "Completed"


def test_a_failed_or_unregistrable_history_registers_no_data(platform, lab):
    api = lab["api"]
    before = {d["id"] for d in api.get("/data").json()}
    failing = define(lab, "mkdir -p /kqi/output/partial && echo x > /kqi/output/partial/a && exit 3")
    r = api.post(f"/preprocessings/{failing['id']}/run", {"dataId": lab["data"]["id"], "cpu": 1, "memory": 1,
                                                          "gpu": 0})
    assert r.status_code == 201, r.text
    done = wait_history(api, failing["id"], lab["data"]["id"])
    assert done["status"] == "Failed" and done["outputDataIds"] == []

    clash = define(lab, "mkdir -p /kqi/output/out/a /kqi/output/out/b /kqi/output/fine && touch /kqi/output/out/a/x "
                        "/kqi/output/out/b/x /kqi/output/fine/y")
    api.post(f"/preprocessings/{clash['id']}/run", {"dataId": lab["data"]["id"], "cpu": 1, "memory": 1, "gpu": 0})
    done = wait_history(api, clash["id"], lab["data"]["id"])
    assert done["status"] == "Failed" and done["outputDataIds"] == []
    assert "two files named 'x'" in done["conditionNote"] and "no data was made" in done["conditionNote"], done
    assert {d["id"] for d in api.get("/data").json()} == before


def test_refusals_across_tenants_and_while_running(platform, lab, new_tenant, new_user, git_endpoint):
    from conftest import new_lab

    api = lab["api"]
    other = new_lab(platform, new_tenant, new_user, git_endpoint)
    pre = define(lab, "sleep 30")
    # someone else's data, someone else's preprocessing: 404 (ids are not probed)
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": other["data"]["id"], "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 404, r.text
    assert other["api"].get(f"/preprocessings/{pre['id']}").status_code == 404
    assert other["api"].post(f"/preprocessings/{pre['id']}/run", {"dataId": other["data"]["id"], "cpu": 1,
                                                                   "memory": 1, "gpu": 0}).status_code == 404
    assert pre["id"] not in [p["id"] for p in other["api"].get("/preprocessings").json()]
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataIds": [lab["data"]["id"], lab["data"]["id"]], "cpu": 1,
                                                      "memory": 1, "gpu": 0})
    assert r.status_code == 400
    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": lab["data"]["id"], "cpu": 1, "memory": 1, "gpu": 0,
                                                      "options": {"DATA_ID": "9"}})
    assert r.status_code == 400 and "set by the platform" in r.json()["message"]

    r = api.post(f"/preprocessings/{pre['id']}/run", {"dataId": lab["data"]["id"], "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 201
    history = r.json()
    wait_for(api, history["runId"], statuses=("Running",), routes="preprocessing")
    assert other["api"].get(f"/preprocessing/{history['runId']}/log").status_code == 404
    assert api.delete(f"/preprocessings/{pre['id']}").status_code == 409
    assert api.delete(f"/preprocessings/{pre['id']}/histories/{lab['data']['id']}").status_code == 409
    r = api.post(f"/preprocessings/{pre['id']}/histories/{lab['data']['id']}/halt")
    assert r.status_code == 200, r.text
    done = wait_history(api, pre["id"], lab["data"]["id"])
    assert done["status"] == "Killed" and done["outputDataIds"] == []
    assert api.delete(f"/preprocessings/{pre['id']}/histories/{lab['data']['id']}").status_code == 204
    assert api.delete(f"/preprocessings/{pre['id']}").status_code == 204


def test_the_external_flow_opens_adds_results_and_completes(platform, lab):
    api = lab["api"]
    pre = api.post("/preprocessings", {"name": "made on my laptop"}).json()
    data_id = lab["data"]["id"]
    r = api.post(f"/preprocessings/{pre['id']}/histories/{data_id}")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "Opened" and r.json()["statusType"] == "None"
    assert api.post(f"/preprocessings/{pre['id']}/histories/{data_id}").status_code == 409

    ticket = upload(api, "result.csv", b"processed\n")
    for bad in ("../escape", "a/b", ".."):
        r = api.post(f"/preprocessings/{pre['id']}/histories/{data_id}/data",
                     {"name": bad, "files": [{"fileName": "result.csv", "storedPath": ticket["storedPath"]}]})
        assert r.status_code == 400, (bad, r.text)
    r = api.post(f"/preprocessings/{pre['id']}/histories/{data_id}/data",
                 {"files": [{"fileName": "result.csv", "storedPath": ticket["storedPath"]}]})
    assert r.status_code == 200, r.text
    r = api.post(f"/preprocessings/{pre['id']}/histories/{data_id}/complete")
    assert r.status_code == 200 and r.json()["status"] == "Completed", r.text
    history = api.get(f"/preprocessings/{pre['id']}/histories/{data_id}").json()
    [made] = history["outputDataIds"]
    data = api.get(f"/data/{made}").json()
    assert data["name"] == f"inputs_{pre['name']}" and data["tags"] == [pre["name"]]
    assert data_files(api, made) == {"result.csv": b"processed\n"}
    # closed: no more results, no second complete
    r = api.post(f"/preprocessings/{pre['id']}/histories/{data_id}/data",
                 {"files": [{"fileName": "result.csv", "storedPath": ticket["storedPath"]}]})
    assert r.status_code == 400 and "not opened" in r.json()["message"]
    assert api.post(f"/preprocessings/{pre['id']}/histories/{data_id}/complete").status_code == 400


def test_lineage_shows_what_made_what_both_ways(platform, lab, new_tenant, new_user, git_endpoint):
    from conftest import new_lab, submit

    api = lab["api"]
    raw = new_data(api, "raw-l", {"a.txt": b"lineage"})
    pre = define(lab, "mkdir -p /kqi/output/clean && cp /kqi/input/$DATA_ID/* /kqi/output/clean/")
    assert api.post(f"/preprocessings/{pre['id']}/run", {"dataId": raw["id"], "cpu": 1, "memory": 1,
                                                         "gpu": 0}).status_code == 201
    history = wait_history(api, pre["id"], raw["id"])
    [clean] = history["outputDataIds"]
    dataset = api.post("/datasets", {"name": "from-clean", "entries": {"training": [{"id": clean}]}}).json()
    training = wait_for(api, submit(lab, "echo w > /kqi/output/m", dataSetId=dataset["id"])["id"])
    r = api.post("/inferences/run", {"name": "infer-l", "dataSetId": dataset["id"], "entryPoint": "true",
                                     "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
                                     "cpu": 1, "memory": 1, "gpu": 0, "parentIds": [training["id"]]})
    inference = r.json()

    g = api.get("/lineage", params={"type": "data", "id": clean, "depth": 3}).json()
    assert g["root"] == f"data:{clean}" and g["truncated"] is False
    keys = {n["key"] for n in g["nodes"]}
    assert {f"data:{raw['id']}", f"preprocessing:{history['runId']}", f"dataset:{dataset['id']}",
            f"training:{training['id']}", f"inference:{inference['id']}"} <= keys, keys
    edges = {(e["from"], e["to"], e["relation"]) for e in g["edges"]}
    assert (f"data:{raw['id']}", f"preprocessing:{history['runId']}", "input") in edges
    assert (f"preprocessing:{history['runId']}", f"data:{clean}", "output") in edges
    assert (f"data:{clean}", f"dataset:{dataset['id']}", "member") in edges
    assert (f"dataset:{dataset['id']}", f"training:{training['id']}", "dataset") in edges
    assert (f"training:{training['id']}", f"inference:{inference['id']}", "parent") in edges
    node = next(n for n in g["nodes"] if n["key"] == f"preprocessing:{history['runId']}")
    assert node["name"] == pre["name"] and node["preprocessId"] == pre["id"] and node["status"] == "Completed"
    assert next(e for e in g["edges"] if e["relation"] == "member")["dataType"] == "training"

    # from the inference, one step: its dataset and its parent only
    g = api.get("/lineage", params={"type": "inference", "id": inference["id"], "depth": 1}).json()
    assert {n["key"] for n in g["nodes"]} == {f"inference:{inference['id']}", f"dataset:{dataset['id']}",
                                               f"training:{training['id']}"}
    # another tenant sees none of it; bad input is a 400
    other = new_lab(platform, new_tenant, new_user, git_endpoint)
    assert other["api"].get("/lineage", params={"type": "data", "id": clean}).status_code == 404
    assert api.get("/lineage", params={"type": "training", "id": clean}).status_code == 404  # a data, not a training
    assert api.get("/lineage", params={"type": "volume", "id": clean}).status_code == 400
    assert api.get("/lineage", params={"type": "data", "id": clean, "depth": 9}).status_code == 400
    assert api.get("/lineage", params={"type": "data", "id": "x"}).status_code == 400
