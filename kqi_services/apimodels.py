"""Output models of the v2 contract: ORM rows to the JSON the upstream client reads.

Field names follow the swagger file exactly; where the platform knows more,
it adds fields and never renames.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

from .jobs.kinds import JobKind
from .jobs.notebooks import remaining_seconds
from .jobs.status import ERROR, PENDING, status_type
from .orm import (
    Data,
    DataSet,
    GitEndpoint,
    Membership,
    Node,
    Preprocessing,
    RegistryEndpoint,
    Role,
    Run,
    StorageEndpoint,
    Tenant,
    User,
    utcnow,
)

GIT_SERVICE_TYPES = {0: "None", 1: "GitLab", 2: "GitHub", 3: "GitLabCom", 4: "Gitea"}
REGISTRY_SERVICE_TYPES = {0: "None", 1: "GitLab", 2: "DockerHub", 3: "NvidiaGPUCloud", 4: "PrivateDockerRegistry"}
NODE_ACCESS_LEVELS = {0: "Disabled", 1: "Private", 2: "Public"}
AUTH_SERVICE_TYPES = {0: "None", 1: "Local", 2: "Ldap"}


def timestamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def enum_infos(table: dict[int, str]) -> list[dict]:
    return [{"id": k, "name": v} for k, v in table.items()]


def audit_model(row) -> dict:
    return {
        "createdBy": row.created_by,
        "createdAt": timestamp(row.created_at),
        "modifiedBy": row.modified_by,
        "modifiedAt": timestamp(row.modified_at),
    }


def role_model(role: Role) -> dict:
    return {
        **audit_model(role),
        "id": role.id,
        "name": role.name,
        "displayName": role.display_name,
        "isSystemRole": role.is_system_role,
        "tenantId": role.tenant_id,
        "sortOrder": role.sort_order,
    }


def role_details_model(role: Role, tenant_name: str | None) -> dict:
    return {**role_model(role), "tenantName": tenant_name, "isNotEditable": role.is_not_editable}


def role_info(role: Role) -> dict:
    return {
        "id": role.id,
        "name": role.name,
        "displayName": role.display_name,
        "isCustomed": role.tenant_id is not None,
        "sortOrder": role.sort_order,
        "isOrigin": True,
    }


def tenant_model(tenant: Tenant) -> dict:
    return {
        **audit_model(tenant),
        "id": tenant.id,
        "name": tenant.name,
        "displayName": tenant.display_name,
        "storagePath": tenant.name,
    }


def tenant_details_model(tenant: Tenant) -> dict:
    return {
        **tenant_model(tenant),
        "defaultGitId": tenant.default_git_id,
        "gitIds": sorted(g.git_id for g in tenant.gits),
        "defaultRegistryId": tenant.default_registry_id,
        "registryIds": sorted(r.registry_id for r in tenant.registries),
        "storageId": tenant.storage_id,
        "availableInfiniteTimeNotebook": tenant.available_infinite_time_notebook,
        "userGroupIds": [],
        # added: the tenant's quota (0 = unlimited) and its hub group
        "quota": quota_numbers(tenant),
        "groupName": tenant.name,
    }


def quota_numbers(tenant: Tenant) -> dict:
    return {"cpu": tenant.quota_cpu, "memory": tenant.quota_memory, "gpu": tenant.quota_gpu}


def quota_model(tenant: Tenant) -> dict:
    return {"tenantId": tenant.id, "tenantName": tenant.display_name, **quota_numbers(tenant)}


def tenant_info(membership: Membership, roles: dict[int, Role]) -> dict:
    tenant = membership.tenant
    return {
        "id": tenant.id,
        "name": tenant.name,
        "displayName": tenant.display_name,
        "default": membership.is_default,
        "roles": [role_info(roles[r]) for r in membership.roles if r in roles],
        "isOrigin": True,
    }


def user_admin_model(user: User, roles: dict[int, Role]) -> dict:
    system_roles = [roles[r] for r in roles if roles[r].is_system_role and user.is_admin]
    return {
        **audit_model(user),
        "id": user.id,
        "name": user.name,
        "serviceType": user.service_type,
        "systemRoles": [role_info(r) for r in system_roles],
        "tenants": [tenant_info(m, roles) for m in sorted(user.memberships, key=lambda m: m.tenant_id)],
    }


def user_tenant_model(user: User, membership: Membership, roles: dict[int, Role]) -> dict:
    return {
        **audit_model(user),
        "id": user.id,
        "name": user.name,
        "serviceType": user.service_type,
        "roles": [role_info(roles[r]) for r in membership.roles if r in roles],
    }


def git_model(git: GitEndpoint, details: bool = False) -> dict:
    model = {
        **audit_model(git),
        "id": git.id,
        "name": git.name,
        "serviceType": git.service_type,
        "repositoryUrl": git.repository_url,
        "apiUrl": git.api_url,
        "serviceTypeName": GIT_SERVICE_TYPES.get(git.service_type, "None"),
    }
    if details:
        model["isNotEditable"] = git.is_not_editable
    return model


def registry_path(registry: RegistryEndpoint) -> str:
    host = registry.host if registry.port_no in (0, 80, 443) else f"{registry.host}:{registry.port_no}"
    return f"{host}/{registry.project_name}" if registry.project_name else host


def registry_model(registry: RegistryEndpoint, details: bool = False) -> dict:
    model = {
        **audit_model(registry),
        "id": registry.id,
        "name": registry.name,
        "registryPath": registry_path(registry),
        "projectName": registry.project_name,
        "serviceType": registry.service_type,
    }
    if details:
        model.update(
            host=registry.host,
            portNo=registry.port_no,
            apiUrl=registry.api_url,
            registryUrl=registry.registry_url,
            isNotEditable=registry.is_not_editable,
        )
    return model


def storage_model(storage: StorageEndpoint, access_key: str | None = None, details: bool = False) -> dict:
    model = {
        **audit_model(storage),
        "id": storage.id,
        "name": storage.name,
        "serverUrl": storage.server_url,
        "nfsServer": storage.nfs_server,
        "nfsRoot": storage.nfs_root,
        "kind": storage.kind,
    }
    if details:
        # the secret key is write-only: never returned, even to admins
        model.update(accessKey=storage.access_key, secretKey=None)
    return model


def node_model(node: Node, tenants: list[Tenant] | None = None) -> dict:
    model = {
        **audit_model(node),
        "id": node.id,
        "name": node.name,
        "memo": node.memo,
        "partition": node.partition,
        "accessLevel": node.access_level,
        "accessLevelStr": NODE_ACCESS_LEVELS.get(node.access_level, ""),
        "tensorBoardEnabled": node.tensorboard_enabled,
        "notebookEnabled": node.notebook_enabled,
        # added: the capacity the scheduler uses
        "cpu": node.cpu,
        "memory": node.memory_gb,
        "gpu": node.gpu,
    }
    if tenants is not None:
        model["assignedTenants"] = [
            {"id": t.id, "name": t.name, "displayName": t.display_name} for t in tenants
        ]
    return model


def node_resource_model(node: Node) -> dict:
    return {
        "name": node.name,
        "memo": node.memo,
        "partition": node.partition,
        "accessLevel": node.access_level,
        "allocatableCpu": node.cpu,
        "allocatableMemory": node.memory_gb,
        "allocatableGpu": node.gpu,
    }


def data_model(data: Data) -> dict:
    return {
        **audit_model(data),
        "id": data.id,
        "displayId": data.display_id,
        "name": data.name,
        "memo": data.memo,
        "isRaw": data.is_raw,
        "parentDataId": data.parent_data_id,
        "parentDataName": None,
        "tags": sorted(t.tag for t in data.tags),
        # added: the preprocessing history (a run id) that made it; GET /api/v2/lineage tells the rest
        "producedByRunId": data.produced_by_run_id,
    }


def dataset_model(dataset: DataSet) -> dict:
    return {
        **audit_model(dataset),
        "id": dataset.id,
        "displayId": dataset.display_id,
        "name": dataset.name,
        "memo": dataset.memo,
        "isFlat": dataset.is_flat,
    }


# runs (every job kind and notebooks) -----------------------------------------------------------------


def run_full_name(run: Run) -> str:
    return f"{run.id}:{run.name}"


def run_duration(start: datetime | None, end: datetime | None) -> str | None:
    """The contract's ``waitingTime``/``executionTime``: ``1d 2h 3m 4s`` from ``start`` to ``end`` (or now)."""
    if start is None:
        return None
    seconds = int(((end or utcnow()) - start).total_seconds())
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


def run_simple_model(run: Run) -> dict:
    """A run in the ``…/simple`` lists."""
    return {**audit_model(run), "id": run.id, "displayId": run.display_id, "name": run.name, "memo": run.memo,
            "status": run.status, "favorite": run.favorite, "fullName": run_full_name(run)}


def run_parents(db, run: Run, kind: str) -> list[Run]:
    """The runs of ``kind`` that ``run`` mounts at /kqi/parent, in their order."""
    parents = (db.get(Run, p.parent_id) for p in run.parents)
    return [p for p in parents if p is not None and p.kind == kind]


def run_index_model(db, run: Run, output_value: str | None = None) -> dict:
    """A run in the lists (IndexOutputModel); added: ``phase`` (see ``jobs.status``).

    An inference's adds its parent inferences and its ``outputValue`` (``output_value``).
    """
    dataset = db.get(DataSet, run.dataset_id) if run.dataset_id else None
    model = {
        **run_simple_model(run),
        "dataSet": dataset_model(dataset) if dataset else None,
        "entryPoint": run.entry_point,
        "parentFullNameList": [run_full_name(p) for p in run_parents(db, run, "training")],
        "tags": [t.tag for t in run.tags],
        "phase": run.phase,
    }
    if run.kind == "inference":
        model["parentInferenceFullNameList"] = [run_full_name(p) for p in run_parents(db, run, "inference")]
        model["outputValue"] = output_value
    return model


def run_details_model(db, run: Run, kind: JobKind, queue_position: int | None,
                      output_value: str | None = None) -> dict:
    """A run's DetailsOutputModel; added: ``gpuIds``, ``queuePosition`` and ``phase``."""
    git = db.get(GitEndpoint, run.git_id) if run.git_id else None
    registry = db.get(RegistryEndpoint, run.registry_id) if run.registry_id else None
    options = json.loads(run.options_json or "{}")
    started, completed = run.started_at, run.completed_at
    return {
        **run_index_model(db, run, output_value),
        "key": kind.run_key(run.id),
        "gitModel": {"gitId": run.git_id, "owner": run.git_owner, "repository": run.git_repository,
                     "branch": run.git_branch, "commitId": run.git_commit,
                     "url": f"{git.repository_url}/{run.git_owner}/{run.git_repository}" if git else None},
        "options": [{"key": k, "value": val} for k, val in sorted(options.items())],
        "containerImage": {"registryId": run.registry_id, "image": run.image, "tag": run.image_tag,
                           "registryName": registry.name if registry else None, "url": None}
        if run.image else None,
        "parents": [run_index_model(db, p) for p in run_parents(db, run, "training")],
        **({"parentInferences": [run_index_model(db, p) for p in run_parents(db, run, "inference")]}
           if kind.name == "inference" else {}),
        "startedAt": timestamp(started),
        "completedAt": timestamp(completed),
        "node": run.node,
        "logSummary": None,
        "cpu": run.cpu,
        "memory": run.memory,
        "gpu": run.gpu,
        "partition": run.partition,
        "ports": [],
        "nodePorts": [],
        "statusType": status_type(run.status),
        "conditionNote": run.condition_note,
        "waitingTime": run_duration(run.created_at, started or (None if run.status == PENDING else completed)),
        "executionTime": run_duration(started, completed) if started else None,
        "zip": run.zip_output,
        "localDataSet": run.local_dataset,
        # added
        "gpuIds": [int(g) for g in run.gpu_ids.split(",") if g],
        "queuePosition": queue_position,
    }


def run_events_model(run: Run, kind: JobKind, pull: dict | None = None) -> list[dict]:
    """The contract's events of a run: its image pull (``executor.pull_progress``; added), then its condition
    (why it is where it is, or why it ended), each if any."""
    events = []
    if pull:
        events.append({"tenantId": run.tenant_id, "containerName": kind.run_key(run.id), "message": pull["message"],
                       "details": None, "isError": bool(pull["error"]), "firstTimestamp": None,
                       "lastTimestamp": None})
    if run.condition_note:
        events.append({"tenantId": run.tenant_id, "containerName": kind.run_key(run.id),
                       "message": run.condition_note, "details": None, "isError": run.status == ERROR,
                       "firstTimestamp": timestamp(run.started_at), "lastTimestamp": timestamp(run.completed_at)})
    return events


def notebook_lab_url(hub_base_url: str, user_name: str, run: Run) -> str:
    """The path of a notebook's JupyterLab through the hub."""
    return f"{hub_base_url}user/{quote(user_name)}/{quote(run.server_name or '')}/lab"


def notebook_lifetime_model(run: Run) -> dict:
    """Added to a notebook's list entry: its lifetime, and when a running one's lifetime ends."""
    return {"expiresIn": run.expires_in, "expiresAt": timestamp(run.expires_at),
            "remainingSeconds": remaining_seconds(run)}


def notebook_details_model(details: dict, run: Run, hub_base_url: str, user_name: str) -> dict:
    """A notebook's DetailsOutputModel from the run's: no training-only fields, the notebook's own added."""
    model = {k: val for k, val in details.items() if k not in ("zip", "logSummary", "ports")}
    model.update({
        "expiresIn": run.expires_in,
        "jupyterLabVersion": None,
        "notebookNodePort": None,
        "notebookToken": None,
        # added
        "expiresAt": timestamp(run.expires_at),
        "remainingSeconds": remaining_seconds(run),
        "serverName": run.server_name,
        "url": notebook_lab_url(hub_base_url, user_name, run),
    })
    return model


# preprocessing ----------------------------------------------------------------------------------------


def preprocessing_model(pre: Preprocessing) -> dict:
    """A definition in the lists (IndexOutputModel)."""
    return {**audit_model(pre), "id": pre.id, "name": pre.name, "memo": pre.memo, "cpu": pre.cpu,
            "memory": pre.memory, "gpu": pre.gpu}


def preprocessing_details_model(db, pre: Preprocessing, has_histories: bool, missing_for_run: list[str]) -> dict:
    """DetailsOutputModel; added: ``missingForRun`` (what a run on the platform still needs; [] = runnable)."""
    git = db.get(GitEndpoint, pre.git_id) if pre.git_id else None
    registry = db.get(RegistryEndpoint, pre.registry_id) if pre.registry_id else None
    return {
        **preprocessing_model(pre),
        "entryPoint": pre.entry_point,
        "gitModel": {"gitId": pre.git_id, "owner": pre.git_owner, "repository": pre.git_repository,
                     "branch": pre.git_branch, "commitId": pre.git_commit,
                     "url": f"{git.repository_url}/{pre.git_owner}/{pre.git_repository}" if git else None}
        if pre.git_id is not None else None,
        "containerImage": {"registryId": pre.registry_id, "image": pre.image, "tag": pre.image_tag,
                           "registryName": registry.name if registry else None, "url": None}
        if pre.image else None,
        "isLocked": has_histories,
        "missingForRun": missing_for_run,
    }


def preprocessing_history_model(db, pre: Preprocessing, run: Run, queue_position: int | None,
                                output_data_ids: list[int], details: bool = False) -> dict:
    """HistoriesOutputModel (HistoryDetailsOutputModel with ``details``); added: the run's id, phase,
    note, queue position, times, resources and its output data (in the list too)."""
    data = db.get(Data, run.input_data_id) if run.input_data_id else None
    model = {
        "key": f"preprocessing-{run.id}",
        "status": run.status,
        "statusType": status_type(run.status),
        "createdAt": timestamp(run.created_at),
        "dataId": run.input_data_id,
        "dataName": data.name if data else None,
        "preprocessId": pre.id,
        "preprocessName": pre.name,
        "outputDataIds": output_data_ids,
        # added
        "runId": run.id,
        "phase": run.phase,
        "conditionNote": run.condition_note,
        "queuePosition": queue_position,
        "startedAt": timestamp(run.started_at),
        "completedAt": timestamp(run.completed_at),
        "cpu": run.cpu, "memory": run.memory, "gpu": run.gpu, "partition": run.partition,
        "createdBy": run.created_by,
    }
    if details:
        model["options"] = [{"key": k, "value": val} for k, val in sorted(json.loads(run.options_json or "{}").items())]
        model["commitId"] = run.git_commit
        model["node"] = run.node
    return model
