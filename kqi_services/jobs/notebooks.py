"""Notebook rules: their hub servers, names, lifetimes, and asking the hub to start them.

A notebook is a run of the ``notebook`` kind (``jobs/kinds.py``) that is a
JupyterHub named server of its user, named after the notebook. It enters the
queue through ``submission.submit_run`` like any run (the API, a rerun, or
the hub's spawn form through the spawner); the hub's spawner then asks the
engine to start it with the server's command (``jobs/interactive.py``), and
the engine admits it through the same scheduler as jobs. A rerun starts the
same record again, keeping its ``/kqi/output``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from ..errors import Conflict
from ..orm import Run, User, utcnow
from . import status as st
from .kinds import NOTEBOOK

log = logging.getLogger("kqi.notebooks")

#: RerunInputModel's fields (plus ``partition``, added): what a rerun may change
RERUN_FIELDS = ("dataSetId", "parentIds", "containerImage", "gitModel", "cpu", "memory", "gpu", "expiresIn",
                "localDataSet", "entryPoint", "partition", "options")

#: the longest lifetime a notebook may ask for, in seconds
MAX_LIFETIME = 365 * 24 * 3600


def server_name_of(name: str) -> str:
    """The hub server of a notebook is named as the notebook (names are [a-z0-9-])."""
    return name


def check_name_free(db, user: User, name: str, except_id: int | None = None) -> None:
    """409 when the user has a pending or running notebook of that name (its hub server is taken)."""
    query = select(Run.id).where(Run.kind == NOTEBOOK.name, Run.user_id == user.id,
                                 Run.server_name == server_name_of(name), Run.status.in_(st.ACTIVE))
    if except_id is not None:
        query = query.where(Run.id != except_id)
    other = db.scalar(query.limit(1))
    if other is not None:
        raise Conflict(f"Notebook {other} named {name!r} is running; halt it or choose another name")


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
            if run.phase == st.QUEUED:
                st.apply(run, "end", utcnow(), final=st.ERROR,
                         note=f"The hub could not start the notebook's server: {e}")
                db.commit()


def remaining_seconds(run: Run) -> int | None:
    """Seconds until a running notebook's lifetime ends; None when unlimited or not running."""
    if run.expires_at is None or run.status != st.RUNNING:
        return None
    return max(0, int((run.expires_at - utcnow()).total_seconds()))
