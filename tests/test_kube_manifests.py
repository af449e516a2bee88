"""Golden tests of the Kubernetes builders (kqi_spawner.kube): exact dicts, schema-valid for Kubernetes 1.30."""

import re

import kubernetes_validate
import pytest
from traitlets import HasTraits

from kqi_services.executor.spec import Mount, RunSpec, SpecError
from kqi_spawner.kube import (
    cpu_quantity,
    dns_label,
    kube_spawner_overrides,
    label_value,
    memory_quantity,
    notebook_annotations,
    notebook_labels,
    notebook_pod_manifest,
    notebook_secret_manifest,
    state_volume_mounts,
    tenant_namespace_manifests,
    tenant_namespace_name,
)

STATE = "/var/lib/kqi"
KUBE_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def assert_valid(*manifests: dict) -> None:
    """Each manifest passes the strict schema of the oldest and newest Kubernetes we target."""
    for manifest in manifests:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(manifest, desired_version=version, strict=True)


def notebook_spec(**overrides) -> RunSpec:
    fields = dict(
        run_id="notebook-7", command="exec jupyterhub-singleuser --port=8888",
        env={"KQI_SERVER": "http://kqi.kqi-system:8000/services/kqi", "NOTEBOOK_ID": "7", "LANG": "C.UTF-8",
             "CUDA_VISIBLE_DEVICES": "0,1", "NVIDIA_VISIBLE_DEVICES": "0,1"},
        mounts=[Mount(f"{STATE}/notebooks/7/output", "/kqi/output"),
                Mount(f"{STATE}/notebooks/7/git", "/kqi/git"),
                Mount(f"{STATE}/notebooks/7/input", "/kqi/input"),
                Mount(f"{STATE}/runs/training-3/output", "/kqi/parent", read_only=False)],
        cpu=1.5, memory_bytes=8 << 30, gpus=[2, 3], image="kqi/pytorch:2.3", halt_grace_s=10,
    )
    fields.update(overrides)
    return RunSpec(**fields)


def pod(spec: RunSpec, **overrides) -> dict:
    arguments = dict(pod_name="kqi-notebook-7", namespace="kqi-1-default", port=8888, state_volume="kqi-state",
                     state_root=STATE)
    arguments.update(overrides)
    return notebook_pod_manifest(spec, **arguments)


MOUNTS = [
    {"name": "kqi-state", "mountPath": "/kqi/git", "subPath": "notebooks/7/git", "readOnly": False},
    {"name": "kqi-state", "mountPath": "/kqi/input", "subPath": "notebooks/7/input", "readOnly": True},
    {"name": "kqi-state", "mountPath": "/kqi/output", "subPath": "notebooks/7/output", "readOnly": False},
    {"name": "kqi-state", "mountPath": "/kqi/parent", "subPath": "runs/training-3/output", "readOnly": True},
]


# Pods ------------------------------------------------------------------------------------------


def test_gpu_notebook_on_a_partition():
    manifest = pod(
        notebook_spec(),
        labels=notebook_labels(tenant_name="default", tenant_id=1, notebook_id=7, user_name="alice"),
        annotations=notebook_annotations(tenant_name="default", user_name="alice"),
        partition="a100",
    )
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kqi-notebook-7",
            "namespace": "kqi-1-default",
            "labels": {
                "app.kubernetes.io/component": "notebook",
                "app.kubernetes.io/managed-by": "kqi-hub",
                "kqi.nssol/notebook-id": "7",
                "kqi.nssol/run-id": "notebook-7",
                "kqi.nssol/tenant": "default",
                "kqi.nssol/tenant-id": "1",
                "kqi.nssol/user": "alice",
            },
            "annotations": {"kqi.nssol/tenant-name": "default", "kqi.nssol/user-name": "alice"},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{
                "name": "notebook",
                "image": "kqi/pytorch:2.3",
                "command": ["/bin/sh", "-c", "exec jupyterhub-singleuser --port=8888"],
                "env": [
                    {"name": "KQI_SERVER", "value": "http://kqi.kqi-system:8000/services/kqi"},
                    {"name": "LANG", "value": "C.UTF-8"},
                    {"name": "NOTEBOOK_ID", "value": "7"},
                ],
                "workingDir": "/kqi/git",
                "ports": [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "1500m", "memory": "8Gi", "nvidia.com/gpu": "2"},
                    "limits": {"cpu": "1500m", "memory": "8Gi", "nvidia.com/gpu": "2"},
                },
                "securityContext": {"allowPrivilegeEscalation": False, "privileged": False},
                "volumeMounts": MOUNTS,
            }],
            "enableServiceLinks": False,
            "nodeSelector": {"kqi.nssol/partition": "a100"},
            "restartPolicy": "Never",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 10,
            "volumes": [{"name": "kqi-state", "persistentVolumeClaim": {"claimName": "kqi-state"}}],
        },
    }
    assert_valid(manifest)


def test_cpu_notebook_without_partition_or_limits():
    spec = notebook_spec(env={"NOTEBOOK_ID": "8"}, mounts=[Mount(f"{STATE}/notebooks/8/output", "/kqi/output")],
                         cpu=0, memory_bytes=0, gpus=[], image="", halt_grace_s=0.5)
    manifest = pod(spec, pod_name="kqi-notebook-8", image="quay.io/jupyter/scipy-notebook:2024-05-27",
                   state_volume={"nfs": {"server": "nfs.example.com", "path": "/export/kqi"}},
                   service_account="kqi-notebook", image_pull_policy="IfNotPresent",
                   image_pull_secrets=["registry-3"], node_selector_key="example.com/pool")
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kqi-notebook-8",
            "namespace": "kqi-1-default",
            "labels": {"app.kubernetes.io/managed-by": "kqi-hub", "kqi.nssol/run-id": "notebook-7"},
        },
        "spec": {
            "automountServiceAccountToken": True,
            "serviceAccountName": "kqi-notebook",
            "containers": [{
                "name": "notebook",
                "image": "quay.io/jupyter/scipy-notebook:2024-05-27",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", "exec jupyterhub-singleuser --port=8888"],
                "env": [{"name": "NOTEBOOK_ID", "value": "8"}, {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}],
                "workingDir": "/kqi/git",
                "ports": [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}],
                "resources": {},
                "securityContext": {"allowPrivilegeEscalation": False, "privileged": False},
                "volumeMounts": [{"name": "kqi-state", "mountPath": "/kqi/output", "subPath": "notebooks/8/output",
                                  "readOnly": False}],
            }],
            "enableServiceLinks": False,
            "imagePullSecrets": [{"name": "registry-3"}],
            "restartPolicy": "Never",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "kqi-state", "nfs": {"server": "nfs.example.com", "path": "/export/kqi"}}],
        },
    }
    assert_valid(manifest)


def test_spec_image_wins_and_a_run_without_mounts_has_no_volume():
    manifest = pod(notebook_spec(mounts=[], workdir="/home/jovyan"), image="fallback:1")
    container = manifest["spec"]["containers"][0]
    assert container["image"] == "kqi/pytorch:2.3" and container["workingDir"] == "/home/jovyan"
    assert container["volumeMounts"] == [] and manifest["spec"]["volumes"] == []
    assert_valid(manifest)


def test_names_typed_by_users_become_valid_labels_and_annotations_keep_them():
    labels = notebook_labels(tenant_name="研究室 Team-A", tenant_id=12, notebook_id=345, user_name="Bob@Example.COM")
    manifest = pod(notebook_spec(), labels=labels,
                   annotations=notebook_annotations(tenant_name="研究室 Team-A", user_name="Bob@Example.COM"))
    metadata = manifest["metadata"]
    assert metadata["labels"]["kqi.nssol/tenant"] == label_value("研究室 Team-A")
    assert metadata["labels"]["kqi.nssol/tenant"].startswith("Team-A-")
    assert metadata["labels"]["kqi.nssol/user"].startswith("Bob-Example.COM-")
    assert metadata["annotations"] == {"kqi.nssol/tenant-name": "研究室 Team-A",
                                       "kqi.nssol/user-name": "Bob@Example.COM"}
    assert pod(notebook_spec(), labels={"kqi.nssol/memo": "a memo, with spaces!"})["metadata"]["labels"][
        "kqi.nssol/memo"] == label_value("a memo, with spaces!")
    assert_valid(manifest)


def test_credentials_can_live_in_a_secret():
    spec = notebook_spec(env={"KQI_TOKEN": "t0ken", "MODEL_REPOSITORY_TOKEN": "ghp_x", "NOTEBOOK_ID": "7"})
    secret = notebook_secret_manifest(spec, name="kqi-notebook-7-env", namespace="kqi-1-default")
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kqi-notebook-7-env", "namespace": "kqi-1-default",
                     "labels": {"app.kubernetes.io/managed-by": "kqi-hub", "kqi.nssol/run-id": "notebook-7"}},
        "type": "Opaque",
        "stringData": {"KQI_TOKEN": "t0ken", "MODEL_REPOSITORY_TOKEN": "ghp_x"},
    }
    manifest = pod(spec, secret_name="kqi-notebook-7-env")
    assert manifest["spec"]["containers"][0]["env"] == [
        {"name": "KQI_TOKEN", "valueFrom": {"secretKeyRef": {"name": "kqi-notebook-7-env", "key": "KQI_TOKEN"}}},
        {"name": "MODEL_REPOSITORY_TOKEN",
         "valueFrom": {"secretKeyRef": {"name": "kqi-notebook-7-env", "key": "MODEL_REPOSITORY_TOKEN"}}},
        {"name": "NOTEBOOK_ID", "value": "7"},
    ]
    assert "t0ken" not in repr(manifest)
    assert pod(spec)["spec"]["containers"][0]["env"][0] == {"name": "KQI_TOKEN", "value": "t0ken"}
    assert_valid(secret, manifest)


@pytest.mark.parametrize("host_path", ["/srv/other/git", "/var/lib/kqi-other/git", STATE, "/var/lib"])
def test_a_mount_outside_the_state_directory_cannot_run(host_path):
    spec = notebook_spec(mounts=[Mount(host_path, "/kqi/git")])
    with pytest.raises(ValueError, match="state directory"):
        pod(spec)
    with pytest.raises(ValueError, match="state directory"):
        kube_spawner_overrides(spec, state_volume="kqi-state", state_root=STATE)


def test_input_and_parent_mounts_are_always_read_only():
    mounts = [Mount(f"{STATE}/a", "/kqi/input/1/file"), Mount(f"{STATE}/b", "/kqi/parent/4"),
              Mount(f"{STATE}/c", "/kqi/attach", read_only=True), Mount(f"{STATE}/d", "/kqi/output")]
    assert [(m["mountPath"], m["readOnly"]) for m in state_volume_mounts(mounts, STATE)] == [
        ("/kqi/attach", True), ("/kqi/input/1/file", True), ("/kqi/output", False), ("/kqi/parent/4", True)]


@pytest.mark.parametrize("overrides, message", [
    ({"pod_name": "Notebook_7"}, "pod name"),
    ({"pod_name": "n" * 64}, "pod name"),
    ({"namespace": "kqi.tenant"}, "namespace"),
    ({"port": 0}, "port"),
    ({"port": True}, "port"),
    ({"partition": "gpu pool"}, "partition"),
    ({"partition": "a100", "node_selector_key": "bad key/x"}, "key"),
    ({"labels": {"bad key": "x"}}, "key"),
    ({"annotations": {"/empty-prefix": "x"}}, "key"),
    ({"state_root": "var/lib/kqi"}, "absolute"),
    ({"state_volume": "Kqi_State"}, "claim"),
    ({"state_volume": {"nfs": {}, "hostPath": {}}}, "volume source"),
    ({"service_account": "Admin"}, "service account"),
    ({"image_pull_policy": "Sometimes"}, "pull policy"),
    ({"image_pull_secrets": ["Bad_Secret"]}, "pull secret"),
    ({"secret_name": "Env"}, "secret name"),
])
def test_bad_pod_arguments_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        pod(notebook_spec(), **overrides)


def test_a_bad_spec_or_a_missing_image_is_a_value_error():
    with pytest.raises(SpecError, match="run_id"):
        pod(notebook_spec(run_id="Notebook 7"))
    with pytest.raises(ValueError, match="no image"):
        pod(notebook_spec(image=""))


# Names and quantities --------------------------------------------------------------------------

NASTY = ["alice", "Alice", "alice@example.com", "研究室", "-lead-", "a" * 80, "x\n", "", "a--b", "Default Tenant",
         "default tenant", "default-tenant"]


def test_sanitised_names_are_valid_and_distinct():
    slugs = [dns_label(n) for n in NASTY]
    values = [label_value(n) for n in NASTY]
    assert all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", s) for s in slugs)
    assert all(re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?", v) for v in values)
    assert len(set(slugs)) == len(NASTY) and len(set(values)) == len(NASTY)


@pytest.mark.parametrize("text, slug, value", [
    ("alice", "alice", "alice"),
    ("notebook-7", "notebook-7", "notebook-7"),
    ("Alice", "alice-3bc51062", "Alice"),
    ("bob_smith", "bob-smith-56318ccd", "bob_smith"),
    ("alice@example.com", "alice-example-com-ff8d9819", "alice-example.com-ff8d9819"),
    ("研究室", "9f9e11e3", "9f9e11e3"),
])
def test_sanitised_names(text, slug, value):
    assert (dns_label(text), label_value(text)) == (slug, value)


@pytest.mark.parametrize("cpu, quantity", [(2, "2"), (2.0, "2"), (0.5, "500m"), (1.25, "1250m"), (0.0001, "1m")])
def test_cpu_quantity(cpu, quantity):
    assert cpu_quantity(cpu) == quantity


@pytest.mark.parametrize("size, quantity", [(4 << 30, "4Gi"), (1536 << 20, "1536Mi"), (2 << 40, "2Ti"),
                                            (1000, "1000"), (3 << 10, "3Ki")])
def test_memory_quantity(size, quantity):
    assert memory_quantity(size) == quantity


# Tenants ---------------------------------------------------------------------------------------


def test_tenant_namespace_and_quota():
    manifests = tenant_namespace_manifests("default", 1, quota_cpu=16, quota_memory_gb=64, quota_gpu=4)
    assert manifests == [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "kqi-1-default",
                "labels": {"app.kubernetes.io/managed-by": "kqi-hub", "kqi.nssol/tenant": "default",
                           "kqi.nssol/tenant-id": "1", "pod-security.kubernetes.io/enforce": "baseline"},
                "annotations": {"kqi.nssol/tenant-name": "default"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {
                "name": "kqi-quota",
                "namespace": "kqi-1-default",
                "labels": {"app.kubernetes.io/managed-by": "kqi-hub", "kqi.nssol/tenant": "default",
                           "kqi.nssol/tenant-id": "1"},
            },
            "spec": {"hard": {"requests.cpu": "16", "requests.memory": "64Gi", "requests.nvidia.com/gpu": "4"}},
        },
    ]
    assert_valid(*manifests)


def test_unlimited_quotas_are_left_out():
    namespace, quota = tenant_namespace_manifests("Team A", 9, quota_cpu=0, quota_memory_gb=32, quota_gpu=0,
                                                  namespace="team-a", pod_security="")
    assert namespace["metadata"]["name"] == quota["metadata"]["namespace"] == "team-a"
    assert "pod-security.kubernetes.io/enforce" not in namespace["metadata"]["labels"]
    assert quota["spec"] == {"hard": {"requests.memory": "32Gi"}}
    _, unlimited = tenant_namespace_manifests("Team A", 9, 0, 0, 0)
    assert unlimited["spec"] == {"hard": {}}
    assert_valid(namespace, quota, unlimited)


@pytest.mark.parametrize("name, tenant_id, namespace", [
    ("default", 1, "kqi-1-default"),
    ("Team_A (vision)", 12, "kqi-12-team-a-vision"),
    ("研究室", 3, "kqi-3"),
    ("x" * 80, 1234567, "kqi-1234567-" + "x" * 51),
])
def test_tenant_namespace_names(name, tenant_id, namespace):
    assert tenant_namespace_name(name, tenant_id) == namespace
    assert tenant_namespace_manifests(name, tenant_id, 0, 0, 0)[0]["metadata"]["name"] == namespace


@pytest.mark.parametrize("quotas", [(-1, 0, 0), (0, -1, 0), (0, 0, True), (0, "4", 0)])
def test_bad_quotas_are_value_errors(quotas):
    with pytest.raises(ValueError, match="quota"):
        tenant_namespace_manifests("default", 1, *quotas)


# KubeSpawner traits ----------------------------------------------------------------------------


def test_kube_spawner_overrides_match_the_pod():
    from kubespawner import KubeSpawner

    spec = notebook_spec()
    overrides = kube_spawner_overrides(spec, state_volume="kqi-state", state_root=STATE, partition="a100")
    assert overrides == {
        "cpu_limit": 1.5, "cpu_guarantee": 1.5,
        "mem_limit": 8 << 30, "mem_guarantee": 8 << 30,
        "extra_resource_limits": {"nvidia.com/gpu": "2"}, "extra_resource_guarantees": {"nvidia.com/gpu": "2"},
        "node_selector": {"kqi.nssol/partition": "a100"},
        "volumes": [{"name": "kqi-state", "persistentVolumeClaim": {"claimName": "kqi-state"}}],
        "volume_mounts": MOUNTS,
        "working_dir": "/kqi/git",
        "environment": {"KQI_SERVER": "http://kqi.kqi-system:8000/services/kqi", "LANG": "C.UTF-8",
                        "NOTEBOOK_ID": "7"},
        "privileged": False, "allow_privilege_escalation": False,
        "image": "kqi/pytorch:2.3",
    }
    traits = KubeSpawner.class_traits()
    for name, value in overrides.items():
        assert traits[name].validate(HasTraits(), value) == value, name
    unlimited = kube_spawner_overrides(notebook_spec(cpu=0, memory_bytes=0, gpus=[], image="", mounts=[]),
                                       state_volume="kqi-state", state_root=STATE)
    assert (unlimited["cpu_limit"], unlimited["mem_limit"], unlimited["extra_resource_limits"]) == (None, None, {})
    assert unlimited["node_selector"] == {} and unlimited["volumes"] == [] and "image" not in unlimited
    assert unlimited["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
