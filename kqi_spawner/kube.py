"""Kubernetes objects for notebooks and tenants, built from a ``RunSpec`` as plain dicts.

The kqi service admits a notebook, stages its ``/kqi/*`` directories under the
shared state directory and describes the run as a :class:`RunSpec`. On
Kubernetes that spec becomes a Pod (or the matching KubeSpawner traits), and
each tenant becomes a Namespace with a ResourceQuota. Everything here is a
pure function, data in and dict out: no I/O, no cluster configuration, no
kubernetes client, so the objects are tested as exact dicts.

Translation rules:

* the command runs with ``/bin/sh -c`` in the spec's working directory;
* cpu, memory and GPUs become requests equal to limits; GPUs are a count of
  ``nvidia.com/gpu`` the device plugin assigns, so the spec's GPU indexes and
  ``CUDA_VISIBLE_DEVICES``/``NVIDIA_VISIBLE_DEVICES`` are not passed on;
* a partition becomes a node selector;
* every mount is a ``subPath`` of ONE state volume (the state directory as the
  cluster sees it), so a host path outside ``state_root`` cannot be run.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
from collections.abc import Mapping, Sequence

from kqi_services.executor.spec import Mount, RunSpec, check_absolute, under

MANAGED_BY = "kqi-hub"
GPU_RESOURCE = "nvidia.com/gpu"
PARTITION_LABEL = "kqi.nssol/partition"
STATE_VOLUME_NAME = "kqi-state"
CONTAINER_NAME = "notebook"
QUOTA_NAME = "kqi-quota"
GIB = 1024**3

# Variables of the local executor's device games; the device plugin sets its own.
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
# Variables that hold credentials: read from a Secret when the pod is given one.
SECRET_VARIABLES = ("KQI_TOKEN", "MODEL_REPOSITORY_TOKEN")

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?\Z")
_HASH_LENGTH = 8


def _slug(text: str, cleaned: str, valid: re.Pattern) -> str:
    """``text`` if ``valid`` matches it, else ``cleaned`` cut to fit plus a hash of ``text``.

    The hash keeps two inputs that clean to the same string apart.
    """
    if valid.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    prefix = cleaned[:63 - _HASH_LENGTH - 1].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def dns_label(text: str) -> str:
    """A DNS-1123 label (object and namespace names) for any text.

    Valid labels are kept; anything else is lowercased, runs of other
    characters become ``-`` and a short hash of the text is appended, e.g.
    ``"Alice@Lab"`` → ``"alice-lab-<hash>"``.
    """
    return _slug(text, re.sub(r"[^a-z0-9]+", "-", text.lower()), _DNS_LABEL)


def label_value(text: str) -> str:
    """A valid label value for any text (``[A-Za-z0-9._-]``, at most 63, alphanumeric ends), hashed when changed."""
    return _slug(text, re.sub(r"[^A-Za-z0-9._-]+", "-", text), _LABEL_VALUE)


def _check_label_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and not _DNS_SUBDOMAIN.match(prefix):
        raise ValueError(f"bad label or annotation key prefix: {key!r}")
    if not name or not _LABEL_VALUE.match(name):
        raise ValueError(f"bad label or annotation key: {key!r}")


def _check_name(name: str, what: str, pattern: re.Pattern = _DNS_LABEL) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise ValueError(f"{what} must be a DNS-1123 name (lowercase letters, digits, '-'): {name!r}")
    return name


def _metadata(name: str, labels: Mapping[str, str], annotations: Mapping[str, str],
              namespace: str | None = None) -> dict:
    """Object metadata with checked keys, sanitised label values and string annotations."""
    for key in (*labels, *annotations):
        _check_label_key(key)
    metadata: dict = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {k: label_value(str(v)) for k, v in sorted(labels.items())}
    if annotations:
        metadata["annotations"] = {k: str(v) for k, v in sorted(annotations.items())}
    return metadata


def _run_labels(spec: RunSpec, labels: Mapping[str, str] | None) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, "kqi.nssol/run-id": spec.run_id, **(labels or {})}


def cpu_quantity(cpu: float) -> str:
    """Cores as a Kubernetes quantity: ``2`` → ``"2"``, ``0.5`` → ``"500m"`` (whole millicores, at least 1m)."""
    millis = max(1, round(cpu * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(memory_bytes: int) -> str:
    """Bytes as a Kubernetes quantity in the largest exact binary unit: ``4 << 30`` → ``"4Gi"``."""
    memory_bytes = int(memory_bytes)
    for suffix, size in (("Ti", 1024**4), ("Gi", GIB), ("Mi", 1024**2), ("Ki", 1024)):
        if memory_bytes % size == 0:
            return f"{memory_bytes // size}{suffix}"
    return str(memory_bytes)


def resource_limits(spec: RunSpec, gpu_resource: str = GPU_RESOURCE) -> dict[str, str]:
    """The spec's limits as Kubernetes resources; 0 (unlimited) is left out, GPUs are a count."""
    limits = {}
    if spec.cpu:
        limits["cpu"] = cpu_quantity(spec.cpu)
    if spec.memory_bytes:
        limits["memory"] = memory_quantity(spec.memory_bytes)
    if spec.gpus:
        limits[gpu_resource] = str(len(spec.gpus))
    return limits


def container_environment(spec: RunSpec) -> dict[str, str]:
    """The spec's environment without GPU index variables, sorted by name.

    A pod without GPUs gets ``NVIDIA_VISIBLE_DEVICES=void``: images built on
    ``nvidia/cuda`` set it to ``all``, which would show every GPU of the node
    to a pod that asked for none where the NVIDIA runtime is the default.
    """
    env = {k: v for k, v in spec.env.items() if k not in GPU_VARIABLES}
    if not spec.gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    return dict(sorted(env.items()))


def _env_list(env: Mapping[str, str], secret_name: str | None, secret_variables: Sequence[str]) -> list[dict]:
    """A container's ``env``: plain values, or references into ``secret_name`` for the secret variables."""
    return [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": k}}}
            if secret_name and k in secret_variables else {"name": k, "value": v} for k, v in env.items()]


def notebook_secret_manifest(spec: RunSpec, *, name: str, namespace: str, labels: Mapping[str, str] | None = None,
                             secret_variables: Sequence[str] = SECRET_VARIABLES) -> dict:
    """A v1 Secret with the spec's credential variables, for a pod built with ``secret_name=name``.

    Keeps tokens out of the pod object, which anyone who may list pods can read.
    """
    _check_name(name, "secret name", _DNS_SUBDOMAIN)
    _check_name(namespace, "namespace")
    data = {k: v for k, v in sorted(spec.env.items()) if k in secret_variables}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(name, _run_labels(spec, labels), {}, namespace),
            "type": "Opaque", "stringData": data}


def state_volume_source(state_volume: str | Mapping) -> dict:
    """The volume source of the state directory.

    Args:
        state_volume: the name of a PersistentVolumeClaim in the pod's
            namespace, or a whole volume source (``{"nfs": {...}}``,
            ``{"csi": {...}}``, …) where each tenant namespace cannot have
            its own claim on the shared state.
    """
    if isinstance(state_volume, str):
        return {"persistentVolumeClaim": {"claimName": _check_name(state_volume, "state volume claim")}}
    if not isinstance(state_volume, Mapping) or len(state_volume) != 1:
        raise ValueError("state_volume is a claim name or a volume source with one key, e.g. {'nfs': {...}}")
    return dict(state_volume)


def state_volume_mounts(mounts: Sequence[Mount], state_root: str) -> list[dict]:
    """``volumeMounts`` on the state volume, one ``subPath`` per mount, sorted by target.

    Raises:
        ValueError: a mount's host path is not strictly below ``state_root``
            (a cluster reaches nothing else of the host, and the whole state
            directory is never shown to a run).
    """
    check_absolute(state_root, "state_root")
    result = []
    for mount in sorted(mounts, key=lambda m: m.target):
        check_absolute(mount.host_path, "mount host_path")
        if mount.host_path == state_root or not under(mount.host_path, state_root):
            raise ValueError(f"{mount.target}: {mount.host_path} is not below the state directory {state_root}")
        result.append({
            "name": STATE_VOLUME_NAME,
            "mountPath": mount.target,
            "subPath": posixpath.relpath(mount.host_path, state_root),
            "readOnly": mount.effective_read_only,
        })
    return result


def _state_volumes(spec: RunSpec, state_volume: str | Mapping, state_root: str) -> tuple[list[dict], list[dict]]:
    """(volumes, volumeMounts) of the spec's mounts: none when it has none."""
    mounts = state_volume_mounts(spec.mounts, state_root)
    volumes = [{"name": STATE_VOLUME_NAME, **state_volume_source(state_volume)}] if mounts else []
    return volumes, mounts


def _node_selector(partition: str | None, node_selector_key: str) -> dict[str, str]:
    if not partition:
        return {}
    _check_label_key(node_selector_key)
    if not _LABEL_VALUE.match(partition):
        raise ValueError(f"partition must be a valid label value: {partition!r}")
    return {node_selector_key: partition}


def notebook_labels(*, tenant_name: str, tenant_id: int, notebook_id: int, user_name: str) -> dict[str, str]:
    """The labels that find a tenant's or user's notebooks (values sanitised to label values)."""
    return {
        "app.kubernetes.io/component": "notebook",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "kqi.nssol/notebook-id": str(notebook_id),
        "kqi.nssol/tenant": label_value(tenant_name),
        "kqi.nssol/tenant-id": str(tenant_id),
        "kqi.nssol/user": label_value(user_name),
    }


def notebook_annotations(*, tenant_name: str, user_name: str) -> dict[str, str]:
    """The names as typed, which labels may only carry sanitised."""
    return {"kqi.nssol/tenant-name": tenant_name, "kqi.nssol/user-name": user_name}


def notebook_pod_manifest(spec: RunSpec, *, pod_name: str, namespace: str, port: int, state_volume: str | Mapping,
                          state_root: str, image: str = "", labels: Mapping[str, str] | None = None,
                          annotations: Mapping[str, str] | None = None, partition: str | None = None,
                          node_selector_key: str = PARTITION_LABEL, service_account: str | None = None,
                          image_pull_policy: str | None = None, image_pull_secrets: Sequence[str] = (),
                          secret_name: str | None = None, secret_variables: Sequence[str] = SECRET_VARIABLES,
                          gpu_resource: str = GPU_RESOURCE) -> dict:
    """A v1 Pod that runs a notebook's spec.

    Args:
        spec: the run; validated here (a SpecError is a ValueError).
        pod_name: the pod's name, a DNS-1123 label (see :func:`dns_label`).
        namespace: the tenant's namespace (see :func:`tenant_namespace_name`).
        port: the port the notebook server listens on.
        state_volume: the state directory as the cluster sees it: a claim
            name in ``namespace`` or a volume source (:func:`state_volume_source`).
        state_root: the state directory's path on the service's host; each
            mount's host path becomes a ``subPath`` relative to it.
        image: the image when the spec names none.
        labels: extra labels (e.g. :func:`notebook_labels`); values are sanitised.
        annotations: extra annotations (e.g. :func:`notebook_annotations`).
        partition: the node partition, selected by ``node_selector_key``.
        service_account: a service account for the pod; without one no
            API token is mounted.
        image_pull_policy: ``Always``, ``IfNotPresent`` or ``Never``; the
            cluster's default when None.
        image_pull_secrets: names of registry secrets in ``namespace``.
        secret_name: a Secret in ``namespace`` (:func:`notebook_secret_manifest`)
            the ``secret_variables`` are read from; else they are plain values.
        secret_variables: the variables that hold credentials.
        gpu_resource: the extended resource that counts GPUs.

    Raises:
        ValueError: a bad name, key, port or partition, no image, or a mount
            outside ``state_root``.
    """
    spec.validate()
    _check_name(pod_name, "pod name")
    _check_name(namespace, "namespace")
    if secret_name is not None:
        _check_name(secret_name, "secret name", _DNS_SUBDOMAIN)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535: {port!r}")
    image = spec.image or image
    if not image:
        raise ValueError("the spec names no image and no default image was given")
    volumes, volume_mounts = _state_volumes(spec, state_volume, state_root)
    limits = resource_limits(spec, gpu_resource)
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": ["/bin/sh", "-c", spec.command],
        "env": _env_list(container_environment(spec), secret_name, secret_variables),
        "workingDir": spec.workdir,
        "ports": [{"name": "notebook-port", "containerPort": port, "protocol": "TCP"}],
        "resources": {"requests": dict(limits), "limits": limits} if limits else {},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False},
        "volumeMounts": volume_mounts,
    }
    if image_pull_policy:
        if image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise ValueError(f"bad image pull policy: {image_pull_policy!r}")
        container["imagePullPolicy"] = image_pull_policy
    pod_spec: dict = {
        "automountServiceAccountToken": service_account is not None,
        "containers": [container],
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": math.ceil(spec.halt_grace_s),
        "volumes": volumes,
    }
    if service_account is not None:
        pod_spec["serviceAccountName"] = _check_name(service_account, "service account", _DNS_SUBDOMAIN)
    if image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": _check_name(s, "image pull secret")} for s in image_pull_secrets]
    node_selector = _node_selector(partition, node_selector_key)
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod_name, _run_labels(spec, labels), annotations or {}, namespace),
        "spec": pod_spec,
    }


def kube_spawner_overrides(spec: RunSpec, *, state_volume: str | Mapping, state_root: str,
                           partition: str | None = None, node_selector_key: str = PARTITION_LABEL,
                           gpu_resource: str = GPU_RESOURCE) -> dict:
    """The spec as KubeSpawner trait values, for a spawner that lets KubeSpawner build the pod.

    Guarantees equal limits, as in :func:`notebook_pod_manifest`. The command
    is not mapped: KubeSpawner appends its own arguments to ``cmd``. ``image``
    is set only when the spec names one.
    """
    spec.validate()
    volumes, volume_mounts = _state_volumes(spec, state_volume, state_root)
    extra = {gpu_resource: str(len(spec.gpus))} if spec.gpus else {}
    overrides = {
        "cpu_limit": spec.cpu or None,
        "cpu_guarantee": spec.cpu or None,
        "mem_limit": spec.memory_bytes or None,
        "mem_guarantee": spec.memory_bytes or None,
        "extra_resource_limits": extra,
        "extra_resource_guarantees": dict(extra),
        "node_selector": _node_selector(partition, node_selector_key),
        "volumes": volumes,
        "volume_mounts": volume_mounts,
        "working_dir": spec.workdir,
        "environment": container_environment(spec),
        "privileged": False,
        "allow_privilege_escalation": False,
    }
    if spec.image:
        overrides["image"] = spec.image
    return overrides


def tenant_namespace_name(tenant_name: str, tenant_id: int, prefix: str = "kqi-") -> str:
    """The namespace of a tenant: ``kqi-<id>-<name>``, a DNS-1123 label however the tenant is named.

    The id keeps it unique and stable; the name only makes it readable.
    """
    head = f"{prefix}{int(tenant_id)}"
    tail = re.sub(r"[^a-z0-9]+", "-", tenant_name.lower()).strip("-")
    name = f"{head}-{tail}"[:63].rstrip("-") if tail else head
    return _check_name(name, "namespace")


def tenant_namespace_manifests(tenant_name: str, tenant_id: int, quota_cpu: float, quota_memory_gb: int,
                               quota_gpu: int, *, namespace: str | None = None,
                               gpu_resource: str = GPU_RESOURCE, pod_security: str = "baseline") -> list[dict]:
    """A tenant's Namespace and its ResourceQuota; a quota of 0 (unlimited) is left out of ``hard``.

    The ResourceQuota is always returned (empty ``hard`` when nothing is
    limited), so applying the list also lifts a quota. Once ``requests.cpu``
    or ``requests.memory`` is limited, Kubernetes refuses pods of the
    namespace that do not request them, so the service must give notebooks
    a cpu and memory in a tenant with a quota.

    Args:
        namespace: the name to use instead of :func:`tenant_namespace_name`.
        pod_security: the Pod Security Standard the namespace enforces
            (``baseline`` admits the pods built here; ``""`` sets none).
    """
    for number, what in ((quota_cpu, "quota_cpu"), (quota_memory_gb, "quota_memory_gb"), (quota_gpu, "quota_gpu")):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            raise ValueError(f"{what} must be a number >= 0")
    name = _check_name(namespace, "namespace") if namespace else tenant_namespace_name(tenant_name, tenant_id)
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, "kqi.nssol/tenant": tenant_name,
              "kqi.nssol/tenant-id": str(tenant_id)}
    if pod_security:
        labels["pod-security.kubernetes.io/enforce"] = pod_security
    annotations = {"kqi.nssol/tenant-name": tenant_name}
    hard = {}
    if quota_cpu:
        hard["requests.cpu"] = cpu_quantity(quota_cpu)
    if quota_memory_gb:
        hard["requests.memory"] = memory_quantity(int(quota_memory_gb * GIB))
    if quota_gpu:
        hard[f"requests.{gpu_resource}"] = str(int(quota_gpu))
    quota_labels = {k: v for k, v in labels.items() if not k.startswith("pod-security.")}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(name, labels, annotations)},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _metadata(QUOTA_NAME, quota_labels, {}, name),
         "spec": {"hard": hard}},
    ]
