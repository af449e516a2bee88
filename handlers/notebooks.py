"""Notebook API (v2 Notebook group): run, rerun, endpoint, available-infinite-time, and the run routes.

List, get, edit, delete, halt, events, container-files and the log are the
run handlers of ``runs.py`` given the notebook kind. Run and rerun queue the
record (``submission.submit_run``), then ask the hub to start the
notebook's named server; the hub's spawner (``kqi_spawner``) takes it from
there (``spawner.py``).
"""

from __future__ import annotations

import asyncio

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.jobs import notebooks as core
from kqi_services.jobs.kinds import NOTEBOOK
from kqi_services.jobs.submission import rerun_body, submit_run
from kqi_services.orm import Run, User

from .runs import (
    ContainerFilesHandler,
    RunActionHandler,
    RunBase,
    RunEventsHandler,
    RunHandler,
    RunListHandler,
    RunLogHandler,
    RunSimpleListHandler,
)


class NotebookBase(RunBase):
    kind = NOTEBOOK

    def initialize(self, kind=NOTEBOOK) -> None:
        super().initialize(kind)

    def start_on_hub(self, run: Run) -> None:
        """Ask the hub to start the queued notebook's server (in the background: the answer is 201 at once)."""
        asyncio.get_running_loop().create_task(
            core.start_on_hub(self.settings["session_factory"], self.hub_api, run.id))
        self.write_json(self.details_model(run), 201)


class NotebookRunHandler(NotebookBase):
    """POST /api/v2/notebook/run (CreateInputModel)."""

    def post(self):
        self.start_on_hub(submit_run(self.db, NOTEBOOK, self.require_tenant(), self.principal.user,
                                     self.get_json_body()))


class NotebookRerunHandler(NotebookBase):
    """POST /api/v2/notebook/{id}/rerun (RerunInputModel, plus ``partition``): the same notebook again."""

    def post(self, run_id):
        run = self.find(run_id)
        changes = v.require_object(self.get_json_body() or {})
        self.start_on_hub(submit_run(self.db, NOTEBOOK, self.require_tenant(), self.principal.user,
                                     rerun_body(run, changes), rerun_of=run))


class NotebookEndpointHandler(NotebookBase):
    """GET /api/v2/notebook/{id}/endpoint: the contract's fields plus ``url``, its JupyterLab through the hub."""

    def get(self, run_id):
        run = self.find(run_id)
        user = self.db.get(User, run.user_id)
        self.write_json({"nodePort": None, "token": None,
                         "url": apimodels.notebook_lab_url(self.kqi.hub_base_url, user.name if user else "", run),
                         "status": run.status, "phase": run.phase, "remainingSeconds": core.remaining_seconds(run)})


class AvailableInfiniteTimeHandler(NotebookBase):
    """GET /api/v2/notebook/available-infinite-time: whether this tenant allows notebooks without a lifetime."""

    def get(self):
        self.write_json(bool(self.require_tenant().available_infinite_time_notebook))


base = "api/v2/notebook"
notebook = {"kind": NOTEBOOK}
default_handlers = [
    (f"{base}", RunListHandler, notebook),
    (f"{base}/run", NotebookRunHandler),
    (f"{base}/simple", RunSimpleListHandler, notebook),
    (f"{base}/available-infinite-time", AvailableInfiniteTimeHandler),
    (rf"{base}/([0-9]+)", RunHandler, notebook),
    (rf"{base}/([0-9]+)/rerun", NotebookRerunHandler),
    (rf"{base}/([0-9]+)/endpoint", NotebookEndpointHandler),
    (rf"{base}/([0-9]+)/halt", RunActionHandler, notebook),
    (rf"{base}/([0-9]+)/events", RunEventsHandler, notebook),
    (rf"{base}/([0-9]+)/container-files", ContainerFilesHandler, notebook),
    (rf"{base}/([0-9]+)/log", RunLogHandler, notebook),
]
