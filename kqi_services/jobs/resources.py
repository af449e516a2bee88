"""What runs where: the contract's resource view (v2 Resource group) read from the database.

In KAMONOHASHI a "container" is a Kubernetes pod. Here it is a run that
holds node resources: a training, an inference, a preprocessing history or
a notebook that the scheduler admitted and that has not ended (phase
``preparing``, ``starting`` or ``running``; status Pending or Running, see
``jobs.status``). A queued run holds nothing and is no container yet.

* A container's ``name`` is its run key, ``{kind}-{id}`` (``JobKind.run_key``),
  the name the engine and the executors know it by.
* A node's ``assigned*`` sums what the containers on it hold, as the scheduler
  counts it (``queue.holding_runs``); ``allocatable*`` is its capacity.
* A tenant's ``assigned*`` sums its containers; ``allocatable*`` is its quota
  (0 = unlimited, shown as ``Infinity`` in the ``*Info`` strings).

Field names are the contract's (``NodeResourceOutputModel``,
``TenantResourceOutputModel``, ``ContainerDetailsOutputModel``); each model
adds fields and drops none. A container's ``displayName`` is, as the
original has it, its tenant's display name: the run's own name is the added
``runName``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from kqi_services.apimodels import NODE_ACCESS_LEVELS, timestamp
from kqi_services.orm import Node, Run, Tenant, User

from . import status as st
from .kinds import KINDS
from .queue import holding_runs, visible_nodes
from .scheduler import Resources

#: the contract's ContainerType enum (``container-types``), as the original numbers it
CONTAINER_TYPES = {0: "Unknown", 1: "Training", 2: "TensorBoard", 3: "Preprocessing", 4: "Inferencing",
                   5: "Notebook", 6: "DeleteTenant"}
#: the container type of each job kind
KIND_CONTAINER_TYPES = {"training": 1, "preprocessing": 3, "inference": 4, "notebook": 5}
#: the node entry of containers that hold resources on no node (the original's name for it)
UNASSIGNED = "*Unassigned*"
MAX_ID = 2**63 - 1


def container_name(run: Run) -> str:
    """A container's name: its run key, ``{kind}-{id}``."""
    return KINDS[run.kind].run_key(run.id)


def is_container(run: Run) -> bool:
    """Whether ``run`` holds node resources now (admitted, not ended)."""
    return run.phase in st.HOLDING


def find_container(db, tenant_id: int, name: str) -> Run | None:
    """The container of ``tenant_id`` named ``name`` (``{kind}-{id}``), or None.

    None also for a run of another tenant, of another kind, or that holds
    nothing (queued or ended): the name names no container of that tenant.
    """
    kind, _, digits = name.partition("-")
    if kind not in KINDS or not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        return None
    run_id = int(digits)
    if run_id > MAX_ID:
        return None
    run = db.get(Run, run_id)
    if run is None or run.kind != kind or run.tenant_id != tenant_id or not is_container(run):
        return None
    return run


def held(run: Run) -> Resources:
    return Resources(run.cpu, run.memory, run.gpu)


def container_model(run: Run, tenant: Tenant | None, user_name: str | None) -> dict:
    """ContainerDetailsOutputModel (a superset of ContainerDetailsForTenantOutputModel) of a container.

    Added: ``containerTypeName``, ``kind``, ``runId``, ``displayId``,
    ``runName`` (the run's own name), ``phase``, ``partition``, ``gpuIds``,
    ``createdAt`` (submitted) and ``startedAt`` (its command started; None
    while it prepares).
    """
    container_type = KIND_CONTAINER_TYPES.get(run.kind, 0)
    return {
        "name": container_name(run),
        "createdBy": user_name or run.created_by,
        "containerType": container_type,
        "conditionNote": run.condition_note,
        "cpu": run.cpu,
        "memory": run.memory,
        "gpu": run.gpu,
        "statusType": st.status_type(run.status),
        "status": run.status,
        "nodeName": run.node,
        "tenantId": run.tenant_id,
        "tenantName": tenant.name if tenant else None,
        "displayName": tenant.display_name if tenant else None,
        # added
        "containerTypeName": CONTAINER_TYPES[container_type],
        "kind": run.kind,
        "runId": run.id,
        "displayId": run.display_id,
        "runName": run.name,
        "phase": run.phase,
        "partition": run.partition,
        "gpuIds": [int(g) for g in run.gpu_ids.split(",") if g],
        "createdAt": timestamp(run.created_at),
        "startedAt": timestamp(run.started_at),
    }


def container_models(db, runs: Iterable[Run]) -> list[dict]:
    """The models of ``runs`` (in id order), their tenants and users read in one query each."""
    runs = sorted(runs, key=lambda r: r.id)
    tenant_ids = {r.tenant_id for r in runs}
    user_ids = {r.user_id for r in runs if r.user_id is not None}
    tenants = {t.id: t for t in db.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids)))} if tenant_ids else {}
    users = dict(db.execute(select(User.id, User.name).where(User.id.in_(user_ids))).tuples().all()) if user_ids else {}
    return [container_model(r, tenants.get(r.tenant_id), users.get(r.user_id)) for r in runs]


def containers(db, tenant_id: int | None = None) -> list[dict]:
    """Every container (``tenant_id``: that tenant's only), in id order."""
    return container_models(db, [r for r in holding_runs(db) if tenant_id is None or r.tenant_id == tenant_id])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def usage_infos(assigned: Resources, allocatable: Resources, unlimited_when_zero: bool) -> dict:
    """The contract's ``cpuInfo``/``memoryInfo``/``gpuInfo``: ``1 / 4.0``, ``2 GB / 8.0 GB``, ``1 / Infinity``."""
    def limit(value: int, unit: str = "") -> str:
        return "Infinity" if unlimited_when_zero and value == 0 else f"{value:.1f}{unit}"

    return {"cpuInfo": f"{_number(assigned.cpu)} / {limit(allocatable.cpu)}",
            "memoryInfo": f"{_number(assigned.memory)} GB / {limit(allocatable.memory, ' GB')}",
            "gpuInfo": f"{_number(assigned.gpu)} / {limit(allocatable.gpu)}"}


def usage_model(allocatable: Resources, assigned: Resources, listed: list[dict], unlimited_when_zero: bool) -> dict:
    return {
        "allocatableCpu": allocatable.cpu, "allocatableMemory": allocatable.memory, "allocatableGpu": allocatable.gpu,
        "assignedCpu": assigned.cpu, "assignedMemory": assigned.memory, "assignedGpu": assigned.gpu,
        **usage_infos(assigned, allocatable, unlimited_when_zero),
        "containerResourceList": listed,
    }


def node_resource_model(node: Node | None, name: str, assigned: Resources, listed: list[dict]) -> dict:
    """NodeResourceOutputModel; ``node`` None for a name no Node row has (``Unknown:…``, ``*Unassigned*``).

    Added: ``id`` and ``notebookEnabled`` of the node (None for such entries).
    """
    capacity = Resources(node.cpu, node.memory_gb, node.gpu) if node else Resources()
    return {
        "name": name,
        "memo": node.memo if node else None,
        "partition": node.partition if node else None,
        "accessLevel": node.access_level if node else 0,
        "tensorBoardEnabled": node.tensorboard_enabled if node else False,
        **usage_model(capacity, assigned, listed, unlimited_when_zero=False),
        # added
        "id": node.id if node else None,
        "accessLevelStr": NODE_ACCESS_LEVELS.get(node.access_level if node else 0, ""),
        "notebookEnabled": node.notebook_enabled if node else False,
    }


def node_resources(db, tenant: Tenant | None = None) -> list[dict]:
    """Per node: capacity, what every container on it holds, and the containers.

    For the admin (``tenant`` None): every node, then ``Unknown:{name}`` for
    a node a container holds that no Node row has (deleted while it ran) and
    ``*Unassigned*`` for containers without one. For a tenant: the nodes it
    may run on (``queue.visible_nodes``); ``assigned*`` still counts every
    tenant's containers (how full the node is) but only the tenant's own are
    listed.
    """
    nodes = visible_nodes(db, tenant) if tenant else list(db.scalars(select(Node).order_by(Node.id)))
    runs = sorted(holding_runs(db), key=lambda r: r.id)
    listed_runs = [r for r in runs if tenant is None or r.tenant_id == tenant.id]
    models = {m["runId"]: m for m in container_models(db, listed_runs)}
    assigned: dict[str, Resources] = {}
    listed: dict[str, list[dict]] = {}
    for run in runs:
        where = run.node or UNASSIGNED
        assigned[where] = assigned.get(where, Resources()) + held(run)
        if run.id in models:
            listed.setdefault(where, []).append(models[run.id])
    result = [node_resource_model(n, n.name, assigned.get(n.name, Resources()), listed.get(n.name, []))
              for n in nodes]
    if tenant is None:
        known = {n.name for n in nodes}
        for where in sorted(set(assigned) - known - {UNASSIGNED}):
            result.append(node_resource_model(None, f"Unknown:{where}", assigned[where], listed.get(where, [])))
        if UNASSIGNED in assigned:
            result.append(node_resource_model(None, UNASSIGNED, assigned[UNASSIGNED], listed.get(UNASSIGNED, [])))
    return result


def tenant_resource_model(tenant: Tenant, assigned: Resources, listed: list[dict]) -> dict:
    """TenantResourceOutputModel: the tenant's quota as ``allocatable*`` (0 = unlimited) and its usage."""
    quota = Resources(tenant.quota_cpu, tenant.quota_memory, tenant.quota_gpu)
    return {"id": tenant.id, "name": tenant.name, "displayName": tenant.display_name,
            **usage_model(quota, assigned, listed, unlimited_when_zero=True)}


def tenant_resources(db) -> list[dict]:
    """Per tenant (every tenant, in id order): quota, usage and containers."""
    runs = holding_runs(db)
    models = container_models(db, runs)
    assigned: dict[int, Resources] = {}
    listed: dict[int, list[dict]] = {}
    for run in runs:
        assigned[run.tenant_id] = assigned.get(run.tenant_id, Resources()) + held(run)
    for model in models:
        listed.setdefault(model["tenantId"], []).append(model)
    return [tenant_resource_model(t, assigned.get(t.id, Resources()), listed.get(t.id, []))
            for t in db.scalars(select(Tenant).order_by(Tenant.id))]
