"""Inference on the real platform: the v2 Inference group on the one engine, as a user sees it.

An inference is a training's twin (``jobs/kinds.py``): its routes live under
``/api/v2/inferences``, it gets ``INFERENCE_ID``, mounts parent trainings
(``parentIds``) and inferences (``inferenceIds``) read-only at /kqi/parent,
and shows the first line of its /kqi/output/value.txt as ``outputValue``.
"""

from __future__ import annotations

import pytest
from conftest import submit, unique, wait_for

pytestmark = pytest.mark.platform

def infer(lab, command, **overrides):
    body = {"name": unique("inf")[:30], "dataSetId": lab["dataset"]["id"],
            "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
            "entryPoint": command, "cpu": 1, "memory": 1, "gpu": 0, **overrides}
    r = lab["api"].post("/inferences/run", body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_inference(api, run_id):
    return wait_for(api, run_id, routes="inferences")


def test_an_inference_runs_with_its_parent_training_and_shows_its_value(platform, lab):
    api = lab["api"]
    training = wait_for(api, submit(lab, "echo weights > /kqi/output/model.txt")["id"])
    assert training["status"] == "Completed", training
    inference = infer(lab, "cat /kqi/parent/model.txt; echo $INFERENCE_ID [${TRAINING_ID-unset}] $PARENT_ID; "
                           "echo '0.93 accuracy' > /kqi/output/value.txt; echo more >> /kqi/output/value.txt; "
                           "touch /kqi/parent/x 2>/dev/null && echo parent-writable || echo parent-read-only",
                      parentIds=[training["id"]])
    assert inference["status"] == "Pending"
    done = wait_inference(api, inference["id"])
    assert done["status"] == "Completed", done
    assert done["outputValue"] == "0.93 accuracy"
    assert done["key"] == f"inference-{inference['id']}"
    assert [p["id"] for p in done["parents"]] == [training["id"]] and done["parentInferences"] == []
    assert done["parentFullNameList"] == [f"{training['id']}:{training['name']}"]
    log = api.get(f"/inferences/{inference['id']}/log").text
    assert f"weights\n{inference['id']} [unset] {training['id']}\nparent-read-only" in log, log
    files = {f["fileName"] for f in api.get(f"/inferences/{inference['id']}/files").json()}
    assert f"inference_stdout_stderr_{inference['id']}.log" in files
    listed = api.get("/inferences").json()
    assert [r["outputValue"] for r in listed if r["id"] == inference["id"]] == ["0.93 accuracy"]
    assert inference["id"] not in [r["id"] for r in api.get("/training").json()]  # kinds stay apart
    assert api.get(f"/training/{inference['id']}").status_code == 404

    # another inference mounts the first one (inferenceIds) and the training
    second = wait_inference(api, infer(lab, "ls /kqi/parent", parentIds=[training["id"]],
                                       inferenceIds=[inference["id"]])["id"])
    assert second["status"] == "Completed", second
    assert [p["id"] for p in second["parentInferences"]] == [inference["id"]]
    assert second["parentInferenceFullNameList"] == [f"{inference['id']}:{inference['name']}"]
    assert api.get(f"/inferences/{second['id']}/log").text.split() == sorted([str(training["id"]),
                                                                             str(inference["id"])])
    assert second["outputValue"] is None  # no value.txt

    # mount lists: what a new run may mount, by status
    mountable = api.get("/inferences/mount", params={"Status": "Completed"}).json()
    assert {inference["id"], second["id"]} <= {r["id"] for r in mountable}
    assert training["id"] in {r["id"] for r in api.get("/training/mount", params={"Status": "Completed"}).json()}
    assert api.get("/training/mount", params={"Status": "Killed"}).json() == [] or all(
        r["status"] == "Killed" for r in api.get("/training/mount", params={"Status": "Killed"}).json())
    r = api.get("/inferences/mount", params={"Status": "Finished"})
    assert r.status_code == 400 and "unknown Finished" in r.json()["message"]


def test_inference_refusals_and_no_tensorboard(platform, lab):
    api = lab["api"]
    training = submit(lab, "true")
    r = api.post("/inferences/run", {"name": "x", "dataSetId": lab["dataset"]["id"], "entryPoint": "true",
                                     "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
                                     "cpu": 1, "memory": 1, "gpu": 0, "inferenceIds": [training["id"]]})
    assert r.status_code == 404 and f"Parent inference {training['id']} not found" in r.json()["message"]
    inference = infer(lab, "true")
    r = api.put(f"/inferences/{inference['id']}/tensorboard")
    assert r.status_code == 400 and "has no TensorBoard" in r.json()["message"]
    wait_inference(api, inference["id"])
    assert api.delete(f"/inferences/{inference['id']}").status_code == 204
    assert api.get(f"/inferences/{inference['id']}").status_code == 404
