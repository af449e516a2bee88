"""Dataset API: data types, datasets by type or flat, their files and path pairs (v2 DataSet group)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from kqi_services import validation as v
from kqi_services.apimodels import data_model, dataset_model
from kqi_services.catalog import datasets as core
from kqi_services.jobs.staging import data_files, dataset_layout
from kqi_services.orm import Data, DataSet

from .base import APIHandler


class DataTypesHandler(APIHandler):
    def get(self):
        self.write_json([{"id": t.id, "name": t.name} for t in core.data_types(self.db)])


class DatasetBase(APIHandler):
    def find(self, dataset_id) -> DataSet:
        return core.get_dataset(self.db, self.require_tenant(), v.path_id(dataset_id))


class DatasetListHandler(DatasetBase):
    def get(self):
        tenant = self.require_tenant()
        args = {k: self.get_query_argument(k, None) for k in ("Id", "Name", "Memo", "CreatedAt")}
        self.write_json([dataset_model(d) for d in self.page_of(core.query_datasets(tenant, args), DataSet)])

    def post(self):
        dataset = core.create_dataset(self.db, self.require_tenant(), self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(dataset_model(dataset), 201)


class DatasetHandler(DatasetBase):
    def get(self, dataset_id):
        dataset = self.find(dataset_id)
        groups = core.entries_by_type(self.db, dataset)
        ids = {i for ids in groups.values() for i in ids}
        data = {d.id: d for d in self.db.scalars(select(Data).where(Data.id.in_(ids)).options(selectinload(Data.tags)))}
        model = {**dataset_model(dataset), "isLocked": dataset.is_locked, "entries": {}, "flatEntries": []}
        for type_name, ids in groups.items():
            items = [data_model(data[i]) for i in ids]
            if type_name is None:
                model["flatEntries"] = items
            else:
                model["entries"][type_name] = items
        self.write_json(model)

    def patch(self, dataset_id):
        dataset = self.find(dataset_id)
        core.edit_meta(dataset, self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(dataset_model(dataset))

    def put(self, dataset_id):
        dataset = self.find(dataset_id)
        core.replace_entries(self.db, self.principal.tenant, dataset, self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(dataset_model(dataset))

    def delete(self, dataset_id):
        core.delete_dataset(self.db, self.find(dataset_id))
        self.db.commit()
        self.set_status(204)
        self.finish()


class DatasetFilesHandler(DatasetBase):
    def get(self, dataset_id):
        dataset = self.find(dataset_id)
        with_url = self.get_query_argument("withUrl", "false").lower() == "true"
        store = self.store_for(self.principal.tenant) if with_url else None
        base = self.service_url_base()
        groups = core.entries_by_type(self.db, dataset)
        files = data_files(self.db, sorted({i for ids in groups.values() for i in ids}))

        def file_models(data_id):
            return [{"id": data_id, "fileId": None, "key": stored, "fileName": name, "fileSize": size,
                     "url": store.download_url(stored, name, base) if with_url else None}
                    for name, stored, size in files.get(data_id, [])]

        model = {**dataset_model(dataset), "entries": [], "flatEntries": []}
        for type_name, ids in groups.items():
            items = [f for i in ids for f in file_models(i)]
            if type_name is None:
                model["flatEntries"] = items
            else:
                model["entries"].append({"type": type_name, "files": items})
        self.write_json(model)


class DatasetPathPairsHandler(DatasetBase):
    def get(self, dataset_id):
        layout = dataset_layout(self.db, self.find(dataset_id))
        self.write_json([{"dataPath": f.relative_path, "storedPath": f.stored_path} for f in layout])


default_handlers = [
    (r"api/v2/datatypes", DataTypesHandler),
    (r"api/v2/datasets", DatasetListHandler),
    (r"api/v2/datasets/([^/]+)", DatasetHandler),
    (r"api/v2/datasets/([^/]+)/files", DatasetFilesHandler),
    (r"api/v2/datasets/([^/]+)/pathpairs", DatasetPathPairsHandler),
]
