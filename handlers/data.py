"""Data API: create, list, edit and delete data, their tags and files (v2 Data group)."""

from __future__ import annotations

from urllib.parse import unquote

from sqlalchemy import distinct, select

from kqi_services import validation as v
from kqi_services.apimodels import data_model
from kqi_services.catalog import data as core
from kqi_services.errors import NotFound
from kqi_services.orm import Data, DataFile, DataTag

from .base import APIHandler


class DataBase(APIHandler):
    def find(self, data_id) -> Data:
        return core.get_data(self.db, self.require_tenant(), v.path_id(data_id))

    def file_model(self, data: Data, row, with_url: bool, store=None) -> dict:
        """DataFileOutputModel of a DataFile (or a row with the same columns)."""
        model = {"id": data.id, "fileId": row.id, "key": row.stored_path, "fileName": row.file_name,
                 "fileSize": row.size, "url": None}
        if with_url:
            model["url"] = store.download_url(row.stored_path, row.file_name, self._url_base)
        return model

    @property
    def _url_base(self) -> str:
        if not hasattr(self, "_url_base_value"):
            self._url_base_value = self.service_url_base()
        return self._url_base_value

    def drop_unreferenced(self, tenant, paths):
        """Remove the bytes of stored paths nothing names any more."""
        store = self.store_for(tenant)
        for path in paths:
            if not core.stored_path_in_use(self.db, path):
                store.delete(path)

    def with_url(self) -> bool:
        return self.get_query_argument("withUrl", "false").lower() == "true"


class DataListHandler(DataBase):
    def get(self):
        tenant = self.require_tenant()
        args = {k: self.get_query_argument(k, None) for k in ("Id", "Name", "Memo", "CreatedAt", "CreatedBy")}
        tags = self.tag_filters()
        self.write_json([data_model(d) for d in self.page_of(core.query_data(tenant, args, tags), Data)])

    def post(self):
        data = core.create_data(self.db, self.require_tenant(), self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(data_model(data), 201)


class DataHandler(DataBase):
    def get(self, data_id):
        data = self.find(data_id)
        # names only, not DataFile objects, in the order of data.files
        names = self.db.scalars(select(DataFile.file_name).where(DataFile.data_id == data.id).order_by(DataFile.id))
        self.write_json({**data_model(data), "fileNames": list(names), "parent": None, "children": []})

    def put(self, data_id):
        data = core.update_data(self.db, self.find(data_id), self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(data_model(data))

    def delete(self, data_id):
        tenant = self.require_tenant()
        paths = core.delete_data(self.db, self.find(data_id))
        self.db.commit()
        self.drop_unreferenced(tenant, paths)
        self.set_status(204)
        self.finish()


class DataTagHandler(DataBase):
    def put(self, data_id, tag):
        data = self.find(data_id)
        core.add_tag(data, unquote(tag), self.actor)
        self.db.commit()
        self.write_json(data_model(data))

    def delete(self, data_id, tag):
        core.remove_tag(self.find(data_id), unquote(tag))
        self.db.commit()
        self.set_status(204)
        self.finish()


class DataTagsHandler(DataBase):
    """GET: every tag used in the tenant; DELETE: drop tags no data uses (nothing to do here)."""

    def get(self):
        tenant = self.require_tenant()
        tags = self.db.scalars(
            select(distinct(DataTag.tag)).join(Data, Data.id == DataTag.data_id)
            .where(Data.tenant_id == tenant.id).order_by(DataTag.tag)
        ).all()
        self.write_json(list(tags))

    def delete(self):
        self.require_tenant()
        self.set_status(204)
        self.finish()


class DataFilesHandler(DataBase):
    def get(self, data_id):
        data = self.find(data_id)
        with_url = self.with_url()
        store = self.store_for(self.principal.tenant) if with_url else None
        rows = self.db.execute(
            select(DataFile.id, DataFile.file_name, DataFile.stored_path, DataFile.size)
            .where(DataFile.data_id == data.id).order_by(DataFile.id)
        ).all()
        # plain rows, not ORM objects: 10,000 files list in well under 200 ms
        self.write_json([self.file_model(data, r, with_url, store) for r in rows])

    def post(self, data_id):
        tenant = self.require_tenant()
        data = self.find(data_id)
        added = core.add_files(self.db, tenant, data, core.parse_new_files(self.get_json_body()), self.actor)
        self.db.commit()
        self.write_json({"id": data.id, "files": [self.file_model(data, f, False) for f in added]}, 201)


class DataFileHandler(DataBase):
    """GET …/files/{name} (and …/size): one file by name, with its URL."""

    def get(self, data_id, name, _size=None):
        data = self.find(data_id)
        name = unquote(name)
        row = self.db.scalar(select(DataFile).where(DataFile.data_id == data.id, DataFile.file_name == name))
        if row is None:
            raise NotFound(f"File {name!r} not found in data {data.id}")
        self.write_json(self.file_model(data, row, True, self.store_for(self.principal.tenant)))

    def delete(self, data_id, file_id, _size=None):
        tenant = self.require_tenant()
        data = self.find(data_id)
        row = core.get_file(self.db, data, v.path_id(file_id, "fileId"))
        path = row.stored_path
        self.db.delete(row)
        self.db.commit()
        self.drop_unreferenced(tenant, [path])
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"api/v2/data", DataListHandler),
    (r"api/v2/data/datatags", DataTagsHandler),
    (r"api/v2/data/([0-9]+)", DataHandler),
    (r"api/v2/data/([^/]+)/tags/([^/]+)", DataTagHandler),
    (r"api/v2/data/([^/]+)/files", DataFilesHandler),
    (r"api/v2/data/([^/]+)/files/([^/]+)(/size)?", DataFileHandler),
]
