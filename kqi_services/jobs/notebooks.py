"""Notebook records: creating and rerunning them, their hub servers, and what the spawner is told.

A notebook is a run of the ``notebook`` kind (``jobs/kinds.py``) that is a
JupyterHub named server of its user, named after the notebook. Creating one
(the API, or the hub's spawn form through the spawner) makes a Pending run;
the hub's spawner then asks the engine to start it with the server's
command (``jobs/interactive.py``), and the engine admits it through the same
scheduler as jobs. A rerun starts the same record again, keeping its
``/kqi/output``.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from kqi_services.errors import Conflict
from kqi_services.jobs import status as st
from kqi_services.jobs.kinds import NOTEBOOK
from kqi_services.jobs.submission import build_run, resubmission_body
from kqi_services.orm import Run, RunParent, Tenant, User, utcnow

log = logging.getLogger("kqi.notebooks")

#: RerunInputModel's fields (plus ``partition``, added): what a rerun may change
RERUN_FIELDS = ("dataSetId", "parentIds", "containerImage", "gitModel", "cpu", "memory", "gpu", "expiresIn",
                "localDataSet", "entryPoint", "partition", "options")

#: the longest lifetime a notebook may ask for, in seconds
MAX_LIFETIME = 365 * 24 * 3600


def server_name_of(name: str) -> str:
    """The hub server of a notebook is named as the notebook (names are [a-z0-9-])."""
    return name


def next_queue_order(db, at_least: int = 0) -> int:
    """A place at the end of the queue (FIFO across submissions and reruns)."""
    return max((db.scalar(select(func.max(Run.queued_order))) or 0) + 1, at_least)


def check_name_free(db, user: User, name: str, except_id: int | None = None) -> None:
    """409 when the user has a pending or running notebook of that name (its hub server is taken)."""
    query = select(Run.id).where(Run.kind == NOTEBOOK.name, Run.user_id == user.id,
                                 Run.server_name == server_name_of(name), Run.status.in_(st.ACTIVE))
    if except_id is not None:
        query = query.where(Run.id != except_id)
    other = db.scalar(query.limit(1))
    if other is not None:
        raise Conflict(f"Notebook {other} named {name!r} is running; halt it or choose another name")


def create_notebook(db, tenant: Tenant, user: User, body, nodes, partitions) -> Run:
    """A checked Pending notebook record (flushed, not committed)."""
    run = build_run(db, NOTEBOOK, tenant, user, body, nodes, partitions, max_lifetime=MAX_LIFETIME)
    check_name_free(db, user, run.name)
    run.server_name = server_name_of(run.name)
    db.add(run)
    db.flush()
    run.queued_order = next_queue_order(db, run.id)
    return run


def rerun_body(run: Run, changes: dict) -> dict:
    """The CreateInputModel of a rerun: the notebook's settings, with RerunInputModel's fields changed."""
    return {**resubmission_body(run), **{k: changes[k] for k in RERUN_FIELDS if k in changes}}


def rerun_notebook(db, run: Run, tenant: Tenant, user: User, changes: dict, nodes, partitions) -> Run:
    """Queue ``run`` again with ``changes`` (its id, name and /kqi/output stay)."""
    if run.status in st.ACTIVE:
        raise Conflict(f"Notebook {run.id} is {run.status}; halt it first")
    check_name_free(db, user, run.name, except_id=run.id)
    fresh = build_run(db, NOTEBOOK, tenant, user, rerun_body(run, changes), nodes, partitions,
                      max_lifetime=MAX_LIFETIME)
    for attr in ("dataset_id", "git_id", "git_owner", "git_repository", "git_branch", "git_commit", "registry_id",
                 "image", "image_tag", "entry_point", "options_json", "cpu", "memory", "gpu", "partition",
                 "expires_in", "local_dataset"):
        setattr(run, attr, getattr(fresh, attr))
    if [p.parent_id for p in run.parents] != [p.parent_id for p in fresh.parents]:
        run.parents = []
        db.flush()
        run.parents = [RunParent(parent_id=p.parent_id, position=p.position) for p in fresh.parents]
    run.status, run.condition_note, run.end_requested = st.PENDING, None, None
    run.node, run.gpu_ids, run.started_at, run.completed_at, run.expires_at = None, "", None, None, None
    run.server_name = server_name_of(run.name)
    run.queued_order = next_queue_order(db)
    run.modified_by = user.name
    return run


async def start_on_hub(session_factory, hub_api, run_id: int) -> None:
    """Ask the hub to start the notebook's server; a refusal ends the notebook as Error, with the hub's reason."""
    with session_factory() as db:
        run = db.get(Run, run_id)
        user = db.get(User, run.user_id)
        name, server = user.name, run.server_name
    try:
        await hub_api.start_server(name, server, {"notebook_id": run_id})
    except Exception as e:  # noqa: BLE001 - shown to the user as the notebook's condition
        log.warning("the hub did not start notebook %s: %s", run_id, e)
        with session_factory() as db:
            run = db.get(Run, run_id)
            if run.status == st.PENDING:
                run.status = st.ERROR
                run.condition_note = f"The hub could not start the notebook's server: {e}"
                run.completed_at = utcnow()
                db.commit()


def remaining_seconds(run: Run) -> int | None:
    """Seconds until a running notebook's lifetime ends; None when unlimited or not running."""
    if run.expires_at is None or run.status != st.RUNNING:
        return None
    return max(0, int((run.expires_at - utcnow()).total_seconds()))
