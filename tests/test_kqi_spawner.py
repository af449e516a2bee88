"""The spawner without a hub: the spawn form's options, and the Kubernetes flavour's pod.

The Kubernetes flavour cannot run here (no cluster): KubeSpawner is built
against a kubeconfig naming an unreachable API server (nothing connects
until a pod is created), given a prepared spec as the kqi service returns
it, and the pod it would create is checked field by field and against the
Kubernetes schema with kubernetes-validate.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient

from kqi_services.executor.spec import Mount, RunSpec
from kqi_spawner.form import FormError, options_from_form

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: not-a-real-token}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: kqi}}]
current-context: none
"""


def test_form_becomes_the_create_input_model():
    form = {"tenantId": ["3"], "cpu": ["2"], "memory": ["4"], "gpu": ["1"], "lifetimeHours": ["1.5"],
            "image": ["registry.example/team/torch:2.1"], "partition": ["a100"], "dataSetId": ["12"],
            "gitId": ["2"], "gitOwner": ["kqi"], "gitRepository": ["model"], "gitBranch": ["dev"],
            "parentIds": ["5, 6"], "env": ["EPOCHS=3\nMODE=fast=1"], "entryPoint": ["pip list"], "memo": ["m"]}
    assert options_from_form(form) == {
        "tenantId": 3, "cpu": 2, "memory": 4, "gpu": 1, "dataSetId": 12, "expiresIn": 5400,
        "partition": "a100", "memo": "m", "entryPoint": "pip list",
        "containerImage": {"image": "registry.example/team/torch", "tag": "2.1"},
        "gitModel": {"gitId": 2, "owner": "kqi", "repository": "model", "branch": "dev", "commitId": None},
        "parentIds": [5, 6], "options": {"EPOCHS": "3", "MODE": "fast=1"},
    }
    commit = options_from_form({"gitRepository": ["model"], "gitOwner": ["kqi"], "gitBranch": ["0a1b2c3d"],
                                "lifetimeHours": ["0"]})
    assert commit["gitModel"]["commitId"] == "0a1b2c3d" and commit["expiresIn"] == 0


@pytest.mark.parametrize("form, message", [
    ({"cpu": ["two"]}, "cpu must be a number"),
    ({"env": ["NOEQUALS"]}, "NAME=value"),
    ({"parentIds": ["1,x"]}, "parent ids"),
])
def test_bad_form_values_are_refused_with_a_message(form, message):
    with pytest.raises(FormError, match=message):
        options_from_form(form)


@pytest.fixture
async def kube_spawner(tmp_path, monkeypatch):
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    import kubernetes_asyncio.config.kube_config as kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    from kqi_spawner.kubernetes import KqiKubeSpawner

    return KqiKubeSpawner(_mock=True, kqi_state_root="/srv/kqi", kqi_state_volume="kqi-state",
                          image="jupyter/base-notebook:2024-01-01", namespace="kqi-1-default")


async def test_kube_flavour_builds_the_admitted_notebook_as_a_valid_pod(kube_spawner):
    spec = RunSpec(
        "notebook-7", "exec jupyterhub-singleuser --allow-root", workdir="/kqi/output",
        env={"NOTEBOOK_ID": "7", "KQI_SERVER": "http://hub/services/kqi", "CUDA_VISIBLE_DEVICES": "0"},
        mounts=[Mount("/srv/kqi/runs/notebook-7/output", "/kqi/output"),
                Mount("/srv/kqi/runs/notebook-7/input", "/kqi/input"),
                Mount("/srv/kqi/runs/notebook-7/git", "/kqi/git")],
        cpu=2, memory_bytes=4 * 1024**3, gpus=[0], image="team/torch:2.1")
    kube_spawner.apply_spec(spec, "a100")
    pod = ApiClient().sanitize_for_serialization(await kube_spawner.get_pod_manifest())
    pod = {"apiVersion": "v1", "kind": "Pod", **pod}
    kubernetes_validate.validate(pod, desired_version="1.30", strict=True)

    container = pod["spec"]["containers"][0]
    assert container["image"] == "team/torch:2.1"
    # KubeSpawner passes cmd as the container's args (the image's entrypoint, e.g. tini, runs it)
    assert container["args"] == ["/bin/sh", "-c", spec.command] and not container.get("command")
    assert container["workingDir"] == "/kqi/output"
    limits = container["resources"]["limits"]
    assert (float(limits["cpu"]), int(limits["memory"]), limits["nvidia.com/gpu"]) == (2, 4 * 1024**3, "1")
    assert container["resources"]["requests"] == limits
    assert pod["spec"]["nodeSelector"] == {"kqi.nssol/partition": "a100"}
    mounts = {m["mountPath"]: (m["subPath"], m.get("readOnly", False)) for m in container["volumeMounts"]}
    assert mounts["/kqi/output"] == ("runs/notebook-7/output", False)
    assert mounts["/kqi/input"] == ("runs/notebook-7/input", True)
    assert {"name": "kqi-state", "persistentVolumeClaim": {"claimName": "kqi-state"}} in pod["spec"]["volumes"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NOTEBOOK_ID"] == "7" and "CUDA_VISIBLE_DEVICES" not in env  # the device plugin assigns GPUs
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
