"""Endpoint API: git, registry and storage endpoints (admin CRUD, tenant listings, types)."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.jobs.gitmodel import check_server_url
from kqi_services.orm import GitEndpoint, RegistryEndpoint, StorageEndpoint, Tenant, TenantGit, TenantRegistry

from .base import APIHandler


class EndpointKind:
    """What differs between git, registry and storage endpoints."""

    model = None
    label = ""

    def apply(self, handler, row, body):  # pragma: no cover - abstract
        raise NotImplementedError

    def output(self, handler, row, details=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def in_use(self, db, row) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class GitKind(EndpointKind):
    model = GitEndpoint
    label = "Git endpoint"

    def apply(self, handler, row, body):
        row.name = v.string(body, "name", required=True, max_length=255)
        row.service_type = v.integer(body, "serviceType", required=True)
        if row.service_type not in apimodels.GIT_SERVICE_TYPES:
            raise InvalidInput("serviceType must be one of " + ", ".join(map(str, apimodels.GIT_SERVICE_TYPES)))
        # the clone URLs of runs are built on it: refused now by the same check, not first when used
        row.repository_url = check_server_url(v.endpoint_url(body, "repositoryUrl"))
        row.api_url = v.endpoint_url(body, "apiUrl")

    def output(self, handler, row, details=False):
        return apimodels.git_model(row, details)

    def in_use(self, db, row):
        return db.scalar(select(TenantGit).where(TenantGit.git_id == row.id).limit(1)) is not None


class RegistryKind(EndpointKind):
    model = RegistryEndpoint
    label = "Registry endpoint"

    def apply(self, handler, row, body):
        row.name = v.string(body, "name", required=True, max_length=255, pattern=v.REGISTRY_NAME)
        row.host = v.string(body, "host", required=True, max_length=255)
        if row.host.startswith("-") or "/" in row.host or any(c.isspace() for c in row.host):
            raise InvalidInput("host must be a host name")
        row.port_no = v.integer(body, "portNo", required=True, minimum=0, maximum=65535)
        row.service_type = v.integer(body, "serviceType", required=True)
        if row.service_type not in apimodels.REGISTRY_SERVICE_TYPES:
            raise InvalidInput("serviceType must be one of " + ", ".join(map(str, apimodels.REGISTRY_SERVICE_TYPES)))
        row.project_name = v.string(body, "projectName", max_length=255) or ""
        row.api_url = v.endpoint_url(body, "apiUrl")
        row.registry_url = v.endpoint_url(body, "registryUrl")

    def output(self, handler, row, details=False):
        return apimodels.registry_model(row, details)

    def in_use(self, db, row):
        return db.scalar(select(TenantRegistry).where(TenantRegistry.registry_id == row.id).limit(1)) is not None


class StorageKind(EndpointKind):
    model = StorageEndpoint
    label = "Storage endpoint"

    def apply(self, handler, row, body):
        row.name = v.string(body, "name", required=True, max_length=255)
        row.server_url = v.endpoint_url(body, "serverUrl")
        row.access_key = v.string(body, "accessKey", required=True, max_length=1024)
        secret = v.field(body, "secretKey", str, required=row.id is None)
        if secret:
            row.secret_key_encrypted = handler.secret_box.encrypt(secret)
        row.nfs_server = v.string(body, "nfsServer", max_length=1024) or ""
        row.nfs_root = v.string(body, "nfsRoot", max_length=1024) or ""
        row.kind = "local" if row.server_url.startswith("file://") else "s3"

    def output(self, handler, row, details=False):
        return apimodels.storage_model(row, details=details)

    def in_use(self, db, row):
        return db.scalar(select(Tenant).where(Tenant.storage_id == row.id).limit(1)) is not None


class EndpointListHandler(APIHandler):
    kind: EndpointKind

    def initialize(self, kind: EndpointKind) -> None:
        self.kind = kind

    def get(self):
        self.require_admin()
        rows = self.db.scalars(select(self.kind.model).order_by(self.kind.model.id)).all()
        self.write_json([self.kind.output(self, r) for r in rows])

    def post(self):
        self.require_admin()
        body = v.require_object(self.get_json_body())
        row = self.kind.model(created_by=self.actor, modified_by=self.actor)
        self.kind.apply(self, row, body)
        self.db.add(row)
        self.db.commit()
        self.write_json(self.kind.output(self, row), 201)


class EndpointHandler(APIHandler):
    kind: EndpointKind

    def initialize(self, kind: EndpointKind) -> None:
        self.kind = kind

    def find(self, endpoint_id):
        row = self.db.get(self.kind.model, v.path_id(endpoint_id))
        if row is None:
            raise NotFound(f"{self.kind.label} {endpoint_id} not found")
        return row

    def get(self, endpoint_id):
        self.require_admin()
        self.write_json(self.kind.output(self, self.find(endpoint_id), details=True))

    def put(self, endpoint_id):
        self.require_admin()
        row = self.find(endpoint_id)
        if getattr(row, "is_not_editable", False):
            raise InvalidInput(f"{self.kind.label} {row.id} is built in and cannot be edited")
        self.kind.apply(self, row, v.require_object(self.get_json_body()))
        row.modified_by = self.actor
        self.db.commit()
        self.write_json(self.kind.output(self, row))

    def delete(self, endpoint_id):
        self.require_admin()
        row = self.find(endpoint_id)
        if self.kind.in_use(self.db, row):
            raise Conflict(f"{self.kind.label} {row.id} is used by a tenant")
        self.db.delete(row)
        self.db.commit()
        self.set_status(204)
        self.finish()


class TenantEndpointsHandler(APIHandler):
    """The git or registry endpoints the selected tenant may use."""

    kind: EndpointKind

    def initialize(self, kind: EndpointKind) -> None:
        self.kind = kind

    def get(self):
        tenant = self.require_tenant()
        links = tenant.gits if self.kind.model is GitEndpoint else tenant.registries
        ids = [getattr(link, "git_id", None) or link.registry_id for link in links]
        rows = [self.db.get(self.kind.model, i) for i in sorted(ids)]
        self.write_json([self.kind.output(self, r) for r in rows])


class TypesHandler(APIHandler):
    table: dict

    def initialize(self, table: dict) -> None:
        self.table = table

    def get(self):
        self.require_admin()  # an admin screen's list, as every path under /admin
        self.write_json(apimodels.enum_infos(self.table))


default_handlers = [
    (r"api/v2/admin/git/endpoints", EndpointListHandler, {"kind": GitKind()}),
    (r"api/v2/admin/git/endpoints/([^/]+)", EndpointHandler, {"kind": GitKind()}),
    (r"api/v2/admin/git/types", TypesHandler, {"table": apimodels.GIT_SERVICE_TYPES}),
    (r"api/v2/tenant/git/endpoints", TenantEndpointsHandler, {"kind": GitKind()}),
    (r"api/v2/admin/registry/endpoints", EndpointListHandler, {"kind": RegistryKind()}),
    (r"api/v2/admin/registry/endpoints/([^/]+)", EndpointHandler, {"kind": RegistryKind()}),
    (r"api/v2/admin/registry/types", TypesHandler, {"table": apimodels.REGISTRY_SERVICE_TYPES}),
    (r"api/v2/tenant/registry/endpoints", TenantEndpointsHandler, {"kind": RegistryKind()}),
    (r"api/v2/admin/storage/endpoints", EndpointListHandler, {"kind": StorageKind()}),
    (r"api/v2/admin/storage/endpoints/([^/]+)", EndpointHandler, {"kind": StorageKind()}),
]
