"""Preprocessing API (v2 Preprocessing group): definitions, histories, results, the external flow.

Thin: ``catalog.preprocessings`` checks and writes, ``apimodels`` shapes
the JSON. A history is a run of the preprocessing kind, so its log,
events, output listing and halt are also the run routes
``/api/v2/preprocessing/{runId}/…`` (added to the contract; the panels and
our CLI follow a history's log there).
"""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.catalog import preprocessings as core
from kqi_services.catalog.data import stored_path_in_use
from kqi_services.errors import InvalidInput
from kqi_services.jobs import status as st
from kqi_services.jobs.kinds import PREPROCESSING
from kqi_services.jobs.queue import current_queue_positions
from kqi_services.listing import apply_standard_filters
from kqi_services.orm import Preprocessing

from .base import APIHandler
from .runs import (
    ContainerFilesHandler,
    RunBase,
    RunEventsHandler,
    RunFileHandler,
    RunFilesHandler,
    RunLogHandler,
    RunOutputFileHandler,
    handlers_for,
)


class PreprocessingBase(APIHandler):
    @property
    def engine(self):
        return self.settings["engine"]

    def find(self, preprocessing_id) -> Preprocessing:
        return core.get_definition(self.db, self.require_tenant(), v.path_id(preprocessing_id))

    def history(self, preprocessing_id, data_id):
        pre = self.find(preprocessing_id)
        return pre, core.get_history(self.db, pre, v.path_id(data_id, "dataId"))

    def history_model(self, pre: Preprocessing, run, details: bool = False) -> dict:
        return self.history_models(pre, [run], details)[0]

    def history_models(self, pre: Preprocessing, runs: list, details: bool = False) -> list[dict]:
        """The histories' models: queue positions, output data and input names read once for the whole list."""
        positions = current_queue_positions(self.db) if any(r.phase == st.QUEUED for r in runs) else {}
        made = core.output_data_ids_of(self.db, runs)
        return [apimodels.preprocessing_history_model(self.db, pre, run, positions.get(PREPROCESSING.run_key(run.id)),
                                                      made.get(run.id, []), details) for run in runs]

    def drop_bytes(self, paths: list[str]) -> None:
        store = self.store_for(self.require_tenant())
        for path in paths:
            if not stored_path_in_use(self.db, path):
                store.delete(path)


class PreprocessingListHandler(PreprocessingBase):
    def get(self):
        tenant = self.require_tenant()
        query = select(Preprocessing).where(Preprocessing.tenant_id == tenant.id)
        args = {k: self.get_query_argument(k, None) for k in ("Id", "Name", "Memo", "CreatedAt")}
        query = apply_standard_filters(query, Preprocessing, args)
        self.write_json([apimodels.preprocessing_model(p) for p in self.page_of(query.order_by(Preprocessing.id.desc()))])

    def post(self):
        pre = core.create_definition(self.db, self.require_tenant(), self.get_json_body(), self.actor)
        self.write_json(apimodels.preprocessing_model(pre), 201)


class PreprocessingHandler(PreprocessingBase):
    def get(self, preprocessing_id):
        pre = self.find(preprocessing_id)
        self.write_json(apimodels.preprocessing_details_model(self.db, pre, core.has_histories(self.db, pre),
                                                              core.missing_for_run(pre)))

    def put(self, preprocessing_id):
        pre = core.replace_definition(self.db, self.require_tenant(), self.find(preprocessing_id),
                                      self.get_json_body(), self.actor)
        self.write_json(apimodels.preprocessing_model(pre))

    def patch(self, preprocessing_id):
        pre = core.edit_definition(self.db, self.find(preprocessing_id), self.get_json_body(), self.actor)
        self.write_json(apimodels.preprocessing_model(pre))

    def delete(self, preprocessing_id):
        core.delete_definition(self.db, self.find(preprocessing_id))
        self.set_status(204)
        self.finish()


class PreprocessingRunHandler(PreprocessingBase):
    """POST …/{id}/run: one queued history per data (``dataId``; added: ``dataIds``, all or none)."""

    def post(self, preprocessing_id):
        pre = self.find(preprocessing_id)
        body = v.require_object(self.get_json_body())
        runs = core.run_on_data(self.db, self.require_tenant(), self.principal.user, pre, body)
        self.engine.kick()
        models = self.history_models(pre, runs)
        self.write_json(models if "dataIds" in body else models[0], 201)


class HistoriesHandler(PreprocessingBase):
    def get(self, preprocessing_id):
        pre = self.find(preprocessing_id)
        self.write_json(self.history_models(pre, core.histories_of(self.db, pre)))


class HistoryHandler(PreprocessingBase):
    def get(self, preprocessing_id, data_id):
        pre, run = self.history(preprocessing_id, data_id)
        self.write_json(self.history_model(pre, run, details=True))

    def post(self, preprocessing_id, data_id):
        """The external flow: open a history for the data (status Opened) to add results to."""
        pre = self.find(preprocessing_id)
        run = core.open_history(self.db, self.require_tenant(), self.principal.user, pre,
                                v.path_id(data_id, "dataId"))
        self.write_json(self.history_model(pre, run), 201)

    def delete(self, preprocessing_id, data_id):
        """Deletes the history and the data it produced (named in ``X-Deleted-Data``; a refusal says why)."""
        _, run = self.history(preprocessing_id, data_id)
        made = core.output_data_ids(self.db, run)
        paths = core.delete_history(self.db, run)
        self.set_header("X-Deleted-Data", ",".join(map(str, made)))
        self.engine.delete_run_files(run)
        self.drop_bytes(paths)
        self.set_status(204)
        self.finish()


class HistoryDataHandler(PreprocessingBase):
    """POST …/histories/{dataId}/data: uploaded result files as a new data of an Opened (or Running) history."""

    def post(self, preprocessing_id, data_id):
        pre, run = self.history(preprocessing_id, data_id)
        core.add_output_data(self.db, self.require_tenant(), pre, run, self.get_json_body(), self.actor)
        self.write_json(self.history_model(pre, run))


class HistoryEndHandler(PreprocessingBase):
    """POST …/halt (Killed) and …/complete (Completed): the route passes the final status."""

    def initialize(self, final: str = st.KILLED) -> None:
        self.final = final

    async def post(self, preprocessing_id, data_id):
        pre, run = self.history(preprocessing_id, data_id)
        if run.status not in st.ACTIVE:
            raise InvalidInput(f"Preprocessing history {run.id} is not opened (it is {run.status})")
        await self.engine.halt(self.db, run, self.final)
        self.db.refresh(run)
        self.write_json(self.history_model(pre, run))


class HistoryEventsHandler(PreprocessingBase):
    def get(self, preprocessing_id, data_id):
        _, run = self.history(preprocessing_id, data_id)
        self.write_json(apimodels.run_events_model(run, PREPROCESSING))


class HistoryFilesHandler(PreprocessingBase):
    """GET …/histories/{dataId}/files: the attached log (PreprocessAttachedFileOutputModel, one object)."""

    def get(self, preprocessing_id, data_id):
        _, run = self.history(preprocessing_id, data_id)
        name = PREPROCESSING.log_file_name(run)
        row = next((f for f in run.files if f.file_name == name), None)
        with_url = self.get_query_argument("withUrl", "false").lower() == "true"
        url = None
        if row is not None and with_url:
            url = self.store_for(self.require_tenant()).download_url(row.stored_path, name, self.service_url_base())
        self.write_json({"id": run.id, "fileId": row.id if row else None, "url": url, "fileName": name,
                         "isLocked": True, "size": row.size if row else None})


class HistoryRunHandler(RunBase):
    """GET /api/v2/preprocessing/{runId}: a history's run details (as a training's); its delete is the history's."""

    def get(self, run_id):
        self.write_json(self.details_model(self.find(run_id)))


BASE = r"api/v2/preprocessings"
HISTORY = rf"{BASE}/([0-9]+)/histories/([0-9]+)"
RUNS = PREPROCESSING.routes_base  # api/v2/preprocessing/{runId}/…: a history as a run
OF_KIND = {"kind": PREPROCESSING}

default_handlers = [
    (BASE, PreprocessingListHandler),
    (rf"{BASE}/([0-9]+)", PreprocessingHandler),
    (rf"{BASE}/([0-9]+)/run", PreprocessingRunHandler),
    (rf"{BASE}/([0-9]+)/histories", HistoriesHandler),
    (HISTORY, HistoryHandler),
    (rf"{HISTORY}/data", HistoryDataHandler),
    (rf"{HISTORY}/halt", HistoryEndHandler, {"final": st.KILLED}),
    (rf"{HISTORY}/complete", HistoryEndHandler, {"final": st.COMPLETED}),
    (rf"{HISTORY}/events", HistoryEventsHandler),
    (rf"{HISTORY}/files", HistoryFilesHandler),
    (rf"{RUNS}/([0-9]+)", HistoryRunHandler, OF_KIND),
    # the run routes a history shares with every kind (its submit, copy and delete are the histories')
    *(route for route in handlers_for(PREPROCESSING)
      if route[1] in (RunLogHandler, RunEventsHandler, ContainerFilesHandler, RunFilesHandler, RunFileHandler,
                    RunOutputFileHandler)
      or route[0].endswith("/halt")),
]
