"""Notebook API (v2 Notebook group): run, rerun, endpoint, available-infinite-time, and the run routes.

List, get, edit, delete, halt, events, container-files and the log are the
run handlers of ``runs.py`` bound to the notebook kind. Run and rerun queue
the record, then ask the hub to start the notebook's named server; the
hub's spawner (``kqi_spawner``) takes it from there (``spawner.py``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from kqi_services import validation as v
from kqi_services.apimodels import timestamp
from kqi_services.catalog.datasets import mark_used
from kqi_services.jobs import notebooks as core
from kqi_services.jobs.kinds import NOTEBOOK
from kqi_services.jobs.queue import node_views
from kqi_services.orm import DataSet, User

from .cluster import partitions_of, visible_nodes
from .runs import (
    ContainerFilesHandler,
    RunActionHandler,
    RunBase,
    RunEventsHandler,
    RunHandler,
    RunListHandler,
    RunLogHandler,
    RunSimpleListHandler,
    bind,
)


class NotebookBase(RunBase):
    kind = NOTEBOOK

    def index_model(self, run) -> dict:
        """The list's fields, plus when a running notebook's lifetime ends (added)."""
        return {**super().index_model(run), "expiresIn": run.expires_in, "expiresAt": timestamp(run.expires_at),
                "remainingSeconds": core.remaining_seconds(run)}

    def details_model(self, run) -> dict:
        model = super().details_model(run)
        for training_only in ("zip", "logSummary", "ports"):
            model.pop(training_only, None)
        model.update({
            "expiresIn": run.expires_in,
            "jupyterLabVersion": None,
            "notebookNodePort": None,
            "notebookToken": None,
            # added
            "expiresAt": timestamp(run.expires_at),
            "remainingSeconds": core.remaining_seconds(run),
            "serverName": run.server_name,
            "url": self.lab_url(run),
        })
        return model

    def lab_url(self, run) -> str:
        """The path of the notebook's JupyterLab through the hub."""
        user = self.db.get(User, run.user_id)
        base = self.kqi.hub_base_url
        return f"{base}user/{quote(user.name if user else '')}/{quote(run.server_name or '')}/lab"

    def nodes_and_partitions(self, tenant):
        return node_views(self.db, []), partitions_of(visible_nodes(self.db, tenant))

    def queue_on_hub(self, run) -> None:
        """Commit, then ask the hub to start the server (in the background: the answer is 201 at once)."""
        if run.dataset_id is not None:
            mark_used(self.db.get(DataSet, run.dataset_id))
        self.db.commit()
        asyncio.get_running_loop().create_task(
            core.start_on_hub(self.settings["session_factory"], self.hub_api, run.id))
        self.write_json(self.details_model(run), 201)


class NotebookRunHandler(NotebookBase):
    """POST /api/v2/notebook/run (CreateInputModel)."""

    def post(self):
        tenant = self.require_tenant()
        run = core.create_notebook(self.db, tenant, self.principal.user, self.get_json_body(),
                                   *self.nodes_and_partitions(tenant))
        self.queue_on_hub(run)


class NotebookRerunHandler(NotebookBase):
    """POST /api/v2/notebook/{id}/rerun (RerunInputModel, plus ``partition``): the same notebook again."""

    def post(self, run_id):
        run = self.find(run_id)
        tenant = self.require_tenant()
        changes = v.require_object(self.get_json_body() or {})
        core.rerun_notebook(self.db, run, tenant, self.principal.user, changes, *self.nodes_and_partitions(tenant))
        self.queue_on_hub(run)


class NotebookEndpointHandler(NotebookBase):
    """GET /api/v2/notebook/{id}/endpoint: the contract's fields plus ``url``, its JupyterLab through the hub."""

    def get(self, run_id):
        run = self.find(run_id)
        self.write_json({"nodePort": None, "token": None, "url": self.lab_url(run),
                         "status": run.status, "remainingSeconds": core.remaining_seconds(run)})


class AvailableInfiniteTimeHandler(NotebookBase):
    """GET /api/v2/notebook/available-infinite-time: whether this tenant allows notebooks without a lifetime."""

    def get(self):
        self.write_json(bool(self.require_tenant().available_infinite_time_notebook))


def _notebook(cls, **attrs):
    return bind(type(f"Notebook{cls.__name__}", (NotebookBase, cls), {}), NOTEBOOK, **attrs)


base = "api/v2/notebook"
default_handlers = [
    (f"{base}", _notebook(RunListHandler)),
    (f"{base}/run", NotebookRunHandler),
    (f"{base}/simple", _notebook(RunSimpleListHandler)),
    (f"{base}/available-infinite-time", AvailableInfiniteTimeHandler),
    (rf"{base}/([0-9]+)", _notebook(RunHandler)),
    (rf"{base}/([0-9]+)/rerun", NotebookRerunHandler),
    (rf"{base}/([0-9]+)/endpoint", NotebookEndpointHandler),
    (rf"{base}/([0-9]+)/halt", _notebook(RunActionHandler)),
    (rf"{base}/([0-9]+)/events", _notebook(RunEventsHandler)),
    (rf"{base}/([0-9]+)/container-files", _notebook(ContainerFilesHandler)),
    (rf"{base}/([0-9]+)/log", _notebook(RunLogHandler)),
]
