"""Submitting a run: a request (the contract's CreateInputModel) checked into a queued Run row.

``submit_run`` is the one use case every way into the queue goes through.

Everything a user can get wrong is refused here with a 4xx and a message,
before anything is queued: names, other tenants' ids, resources no node or
quota allows, partitions, environment variable names, fixed variables, git
endpoints.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from kqi_services.catalog.datasets import get_dataset, mark_used
from kqi_services.jobs import gitmodel
from kqi_services.jobs.scheduler import JobRequest, NodeView, Resources, refusal

from .. import validation as v
from ..errors import Conflict, InvalidInput, NotFound
from ..orm import DataSet, GitEndpoint, RegistryEndpoint, Run, RunParent, RunTag, Tenant, User, utcnow
from . import notebooks
from . import status as st
from .kinds import KINDS, JobKind
from .queue import node_views, partitions_of, visible_nodes

RUN_NAME = re.compile(r"^[a-z0-9-]{1,30}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: an image name as Docker references spell it (the registry is the endpoint): components of [a-z0-9] joined by
#: one '.' or '_', '__' or dashes, separated by single '/'
IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(rf"^(?=.{{1,255}}$){IMAGE_COMPONENT}(?:/{IMAGE_COMPONENT})*$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

#: the variables every run gets from the platform (each kind's id variable among them); options may not set them
FIXED_VARIABLES = frozenset({
    "LC_ALL", "LANG", "COLUMNS", "DATASET_ID", "PARENT_ID",
    "MODEL_REPOSITORY", "MODEL_REPOSITORY_TOKEN", "COMMIT_ID", "KQI_SERVER", "KQI_TOKEN", "ENTRY_POINT",
    "ZIP_FILE_CREATED", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "DATA_ID", "DATA_NAME", "TAGS",
} | {kind.id_variable for kind in KINDS.values()})


def parse_options(value) -> dict[str, str]:
    """``options``: environment variables for the run, as an object of strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("options must be an object of environment variables")
    env = {}
    for name, val in value.items():
        if not ENV_NAME.fullmatch(name):
            raise InvalidInput(f"options: {name!r} is not a valid environment variable name")
        if name in FIXED_VARIABLES:
            raise InvalidInput(f"options: {name} is set by the platform and cannot be overridden")
        if not isinstance(val, (str, int, float)) or isinstance(val, bool):
            raise InvalidInput(f"options: the value of {name} must be a string")
        val = str(val)
        if "\x00" in val:
            raise InvalidInput(f"options: the value of {name} must not contain NUL")
        env[name] = val
    return env


def _git_model(db, tenant: Tenant, body: dict, required: bool = True):
    """(git id, owner, repository, branch, commit) of ``gitModel``; all None when optional and absent.

    Names are checked by ``gitmodel``'s own rules (the ones its clone applies), so a model
    that passes here cannot fail later for its spelling.
    """
    git = v.field(body, "gitModel", dict, required=required)
    if git is None:
        return None, None, None, None, None
    git_id = v.integer(git, "gitId") or tenant.default_git_id
    if git_id is None or git_id not in [g.git_id for g in tenant.gits] or db.get(GitEndpoint, git_id) is None:
        raise NotFound(f"Git endpoint {git_id} not found in this tenant")
    owner = v.string(git, "owner", required=True, max_length=255)
    repository = v.string(git, "repository", required=True, max_length=255)
    branch = v.string(git, "branch", max_length=255) or None
    commit = v.string(git, "commitId", max_length=64) or None
    try:
        gitmodel.check_owner(owner)
        gitmodel.check_repository(repository)
        branch = gitmodel.check_branch(branch) if branch else None
        commit = gitmodel.check_commit(commit) if commit else None
    except gitmodel.GitModelError as e:
        raise InvalidInput(f"gitModel: {e}") from None
    return git_id, owner, repository, branch, commit


def _image(db, tenant: Tenant, body: dict) -> tuple[int | None, str | None, str | None]:
    """(registry id, image, tag) of ``containerImage``; the registry must be one of the tenant's."""
    image = body.get("containerImage")
    if image is None:
        return None, None, None
    if not isinstance(image, dict):
        raise InvalidInput("containerImage must be an object")
    name = v.string(image, "image", required=True, max_length=255)
    tag = v.string(image, "tag", required=True, max_length=128)
    if not IMAGE.fullmatch(name) or not IMAGE_TAG.fullmatch(tag):
        raise InvalidInput("containerImage.image/tag are not a valid image reference")
    registry_id = v.integer(image, "registryId")
    if registry_id is not None and (registry_id not in [r.registry_id for r in tenant.registries]
                                    or db.get(RegistryEndpoint, registry_id) is None):
        raise NotFound(f"Registry endpoint {registry_id} not found in this tenant")
    return registry_id, name, tag


def parent_ids(body: dict, field: str = "parentIds") -> list[int]:
    """``parentIds`` (or ``inferenceIds``): integers, or digit strings as the upstream CLI sends its ``-pid`` values."""
    value = body.get(field)
    if isinstance(value, list):
        value = [int(x) if isinstance(x, str) and re.fullmatch(r"[0-9]{1,18}", x) else x for x in value]
    return v.integer_list({field: value}, field)


def _parents(db, tenant: Tenant, kind: JobKind, body: dict) -> list[Run]:
    """The runs named by the kind's parent fields (``parentIds``: trainings; an inference's ``inferenceIds``)."""
    parents: list[Run] = []
    for field, parent_kind in kind.parent_fields:
        for parent_id in parent_ids(body, field):
            parent = db.get(Run, parent_id)
            if parent is None or parent.tenant_id != tenant.id or parent.kind != parent_kind:
                raise NotFound(f"Parent {parent_kind} {parent_id} not found")
            if parent not in parents:
                parents.append(parent)
    return parents


def lifetime(tenant: Tenant, body: dict, maximum: int) -> int:
    """``expiresIn`` of a notebook in seconds: 0 (unlimited) only where the tenant allows it."""
    seconds = v.integer(body, "expiresIn", minimum=0, maximum=maximum)
    if seconds is None:
        raise InvalidInput("expiresIn (the notebook's lifetime in seconds) is required; "
                           "0 means unlimited where the tenant allows it")
    if seconds == 0 and not tenant.available_infinite_time_notebook:
        raise InvalidInput("This tenant does not allow notebooks without a lifetime: set expiresIn in seconds")
    return seconds


def build_run(db, kind: JobKind, tenant: Tenant, user: User, body, nodes: list[NodeView],
              partitions: list[str], max_lifetime: int = 30 * 24 * 3600) -> Run:
    """A checked, unsaved Pending run for ``body``; InvalidInput/NotFound otherwise.

    Interactive kinds (notebooks) need no entry point, model or dataset, and
    take a lifetime (``expiresIn``, at most ``max_lifetime`` seconds).
    """
    v.require_object(body)
    name = v.string(body, "name", required=True, max_length=30)
    if not RUN_NAME.fullmatch(name):
        raise InvalidInput("name must be 1-30 lowercase letters, digits or '-'")
    required = not kind.interactive
    entry_point = v.string(body, "entryPoint", required=required, max_length=64 * 1024, strip=False) or ""
    if required and not entry_point.strip():
        raise InvalidInput("entryPoint must not be empty")
    cpu = v.integer(body, "cpu", required=True, minimum=1, maximum=100_000)
    memory = v.integer(body, "memory", required=True, minimum=1, maximum=1_000_000)
    gpu = v.integer(body, "gpu", required=True, minimum=0, maximum=1024)
    partition = v.string(body, "partition", max_length=255) or None
    if partition and partition not in partitions:
        raise InvalidInput(f"Unknown partition {partition!r}; this tenant has: {', '.join(partitions) or 'none'}")
    dataset_id = v.integer(body, "dataSetId", required=required and kind.input_layout == "dataset")
    dataset = get_dataset(db, tenant, dataset_id) if dataset_id is not None else None
    parents = _parents(db, tenant, kind, body)
    git_id, owner, repository, branch, commit = _git_model(db, tenant, body, required)
    expires_in = lifetime(tenant, body, max_lifetime) if kind.interactive else None
    registry_id, image, tag = _image(db, tenant, body)
    options = parse_options(body.get("options"))
    tags = v.tags(body)
    request = JobRequest("new", tenant.id, Resources(cpu, memory, gpu), partition, 0)
    quota = Resources(tenant.quota_cpu, tenant.quota_memory, tenant.quota_gpu)
    reason = refusal(request, nodes, quota)
    if reason:
        raise InvalidInput(reason)
    run = Run(
        kind=kind.name, tenant_id=tenant.id, user_id=user.id, name=name,
        display_id=(db.scalar(select(func.max(Run.display_id)).where(
            Run.tenant_id == tenant.id, Run.kind == kind.name)) or 0) + 1,
        memo=v.string(body, "memo", max_length=4096), dataset_id=dataset.id if dataset else None,
        git_id=git_id, git_owner=owner, git_repository=repository, git_branch=branch, git_commit=commit,
        registry_id=registry_id, image=image, image_tag=tag, entry_point=entry_point,
        options_json=json.dumps(options, sort_keys=True), cpu=cpu, memory=memory, gpu=gpu, partition=partition,
        zip_output=v.boolean(body, "zip") and not kind.interactive, local_dataset=v.boolean(body, "localDataSet"),
        status=st.PENDING, phase=st.QUEUED, expires_in=expires_in,
        created_by=user.name, modified_by=user.name,
    )
    run.tags = [RunTag(tag=t) for t in tags]
    run.parents = [RunParent(parent_id=p.id, position=i) for i, p in enumerate(parents)]
    return run


def parent_fields_of(run: Run) -> dict[str, list[int]]:
    """``parentIds`` (and an inference's ``inferenceIds``) of ``run``, as its request named them."""
    db = object_session(run)
    fields: dict[str, list[int]] = {field: [] for field, _ in KINDS[run.kind].parent_fields}
    by_kind = {parent_kind: field for field, parent_kind in KINDS[run.kind].parent_fields}
    for p in run.parents:
        parent = db.get(Run, p.parent_id) if db is not None else None
        fields[by_kind.get(parent.kind if parent else "training", "parentIds")].append(p.parent_id)
    return fields


def resubmission_body(run: Run) -> dict:
    """The CreateInputModel that would submit ``run`` again, its model resolved afresh (copy-run, rerun)."""
    return {
        "name": run.name,
        "containerImage": {"registryId": run.registry_id, "image": run.image, "tag": run.image_tag}
        if run.image else None,
        "dataSetId": run.dataset_id,
        **parent_fields_of(run),
        "gitModel": {"gitId": run.git_id, "owner": run.git_owner, "repository": run.git_repository,
                     "branch": run.git_branch, "commitId": None} if run.git_id is not None else None,
        "entryPoint": run.entry_point or None,
        "options": json.loads(run.options_json or "{}"),
        "cpu": run.cpu, "memory": run.memory, "gpu": run.gpu, "partition": run.partition,
        "memo": run.memo, "tags": [t.tag for t in run.tags], "zip": run.zip_output,
        "localDataSet": run.local_dataset, "expiresIn": run.expires_in,
    }


def rerun_body(run: Run, changes: dict) -> dict:
    """The CreateInputModel of a notebook's rerun: its settings, with RerunInputModel's fields changed."""
    return {**resubmission_body(run), **{k: changes[k] for k in notebooks.RERUN_FIELDS if k in changes}}


#: what a rerun takes from its checked request (its id, name, tags and /kqi/output stay)
RERUN_COPIED = ("dataset_id", "git_id", "git_owner", "git_repository", "git_branch", "git_commit", "registry_id",
                "image", "image_tag", "entry_point", "options_json", "cpu", "memory", "gpu", "partition",
                "expires_in", "local_dataset")


def next_queue_order(db, at_least: int = 0) -> int:
    """A place at the end of the queue (FIFO across every kind, submissions and reruns)."""
    return max((db.scalar(select(func.max(Run.queued_order))) or 0) + 1, at_least)


def submit_run(db, kind: JobKind, tenant: Tenant, user: User, body, *, rerun_of: Run | None = None,
               server_name: str | None = None, commit: bool = True) -> Run:
    """The one way into the queue: check ``body`` (a CreateInputModel), then queue the run, committed.

    Used by every kind's ``run`` and ``copy-run``, a notebook's ``run`` and
    ``rerun``, and the hub's spawn form (the spawner's internal API). The
    nodes and partitions the tenant may use are looked up here. The caller
    wakes the engine (``JobEngine.kick``) or, for a notebook, the hub.

    Args:
        rerun_of: an ended notebook to queue again with the checked settings; its id, name
            and ``/kqi/output`` stay.
        server_name: a notebook's hub server (default: the notebook's name; ``""`` is the
            user's default server).
        commit: False leaves the queued run flushed, for the caller to commit with what it adds
            (a preprocessing's histories, all or none).

    Raises:
        InvalidInput, NotFound: what the request gets wrong (nothing is written).
        Conflict: a notebook of that name is active, or ``rerun_of`` has not ended.
    """
    if rerun_of is not None and rerun_of.status in st.ACTIVE:
        raise Conflict(f"Notebook {rerun_of.id} is {rerun_of.status}; halt it first")
    run = build_run(db, kind, tenant, user, body, node_views(db, []), partitions_of(visible_nodes(db, tenant)),
                    max_lifetime=notebooks.MAX_LIFETIME if kind.interactive else 30 * 24 * 3600)
    if kind.interactive:
        notebooks.check_name_free(db, user, run.name, except_id=rerun_of.id if rerun_of is not None else None)
    if rerun_of is not None:
        for attr in RERUN_COPIED:
            setattr(rerun_of, attr, getattr(run, attr))
        if [p.parent_id for p in rerun_of.parents] != [p.parent_id for p in run.parents]:
            rerun_of.parents = []
            db.flush()
            rerun_of.parents = [RunParent(parent_id=p.parent_id, position=p.position) for p in run.parents]
        st.apply(rerun_of, "requeue", utcnow())
        rerun_of.modified_by = user.name
        run = rerun_of
    else:
        db.add(run)
        db.flush()
    if kind.interactive:
        run.server_name = notebooks.server_name_of(run.name) if server_name is None else server_name
    run.queued_order = next_queue_order(db, run.id)
    if run.dataset_id is not None:
        mark_used(db.get(DataSet, run.dataset_id))
    if commit:
        db.commit()
    return run
