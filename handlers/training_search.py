"""Detailed search of trainings (v2 Training group): search, saved searches and completions.

Thin handlers over ``kqi_services.jobs.search``, which holds the semantics.
The routes come before ``runs``' so that nothing there could shadow them
(``training/([0-9]+)`` cannot: tornado anchors patterns at both ends).
"""

from __future__ import annotations

from kqi_services import validation as v
from kqi_services.jobs import search
from kqi_services.jobs.kinds import TRAINING

from .runs import RunBase


class TrainingSearchHandler(RunBase):
    """GET /api/v2/training/search?Name=a,b&NameOr=false…: IndexOutputModels, paged as the list."""

    def get(self):
        tenant = self.require_tenant()
        detail = search.SearchDetail.from_query(lambda name: self.get_query_argument(name, None))
        query = search.search_query(detail, tenant.id, self.kind.name)
        self.write_json([self.index_model(r) for r in self.page_of(query)])


class TrainingSearchFillHandler(RunBase):
    """GET /api/v2/training/search/fill: who started, statuses, tags and datasets of the tenant's trainings."""

    def get(self):
        self.write_json(search.search_fill(self.db, self.require_tenant().id, self.kind.name))


class SearchHistoriesHandler(RunBase):
    """GET/POST /api/v2/training/search-history: the caller's saved searches in this tenant."""

    def get(self):
        tenant = self.require_tenant()
        rows = search.list_histories(self.db, tenant.id, self.principal.user.id)
        self.write_json([search.history_model(r) for r in rows])

    def post(self):
        tenant = self.require_tenant()
        row = search.create_history(self.db, tenant.id, self.principal.user.id, self.actor, self.get_json_body())
        self.write_json(search.history_model(row), 201)


class SearchHistoryHandler(RunBase):
    """DELETE /api/v2/training/search-history/{id}: 204; another user's or tenant's is a 404."""

    def delete(self, history_id):
        tenant = self.require_tenant()
        row = search.find_history(self.db, tenant.id, self.principal.user.id, v.path_id(history_id))
        self.db.delete(row)
        self.db.commit()
        self.set_status(204)
        self.finish()


_base = TRAINING.routes_base
_of_kind = {"kind": TRAINING}
default_handlers = [
    (f"{_base}/search", TrainingSearchHandler, _of_kind),
    (f"{_base}/search/fill", TrainingSearchFillHandler, _of_kind),
    (f"{_base}/search-history", SearchHistoriesHandler, _of_kind),
    (rf"{_base}/search-history/([0-9]+)", SearchHistoryHandler, _of_kind),
]
