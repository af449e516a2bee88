"""Tenant API: /admin/tenants (system admins) and /tenant (the caller's selected tenant)."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts import users as accounts
from kqi_services.errors import Forbidden
from kqi_services.hub import mirror as hubmirror
from kqi_services.orm import Tenant

from .base import APIHandler


class TenantListHandler(APIHandler):
    def get(self):
        self.require_admin()
        tenants = self.db.scalars(select(Tenant).order_by(Tenant.id)).all()
        self.write_json([apimodels.tenant_model(t) for t in tenants])

    async def post(self):
        self.require_admin()
        tenant = accounts.create_tenant(self.db, self.get_json_body(), self.actor)
        await self.commit_then_mirror(lambda: hubmirror.push_tenant(self.hub_api, tenant))
        self.write_json(apimodels.tenant_model(tenant), 201)


class TenantHandler(APIHandler):
    def get(self, tenant_id):
        self.require_admin()
        tenant = accounts.get_tenant(self.db, v.path_id(tenant_id))
        self.write_json(apimodels.tenant_details_model(tenant))

    async def put(self, tenant_id):
        self.require_admin()
        tenant = accounts.get_tenant(self.db, v.path_id(tenant_id))
        accounts.update_tenant(self.db, tenant, self.get_json_body(), self.actor)
        await self.commit_then_mirror(lambda: hubmirror.push_tenant(self.hub_api, tenant))
        self.write_json(apimodels.tenant_model(tenant))

    async def delete(self, tenant_id):
        self.require_admin()
        tenant = accounts.get_tenant(self.db, v.path_id(tenant_id))
        name = hubmirror.group_name(tenant)
        accounts.delete_tenant(self.db, tenant)
        await self.commit_then_mirror(lambda: self.hub_api.delete_group(name))
        # no containers run in a tenant yet that deleting it would orphan
        self.write_json({"containerWarnMsg": None})


class CurrentTenantHandler(APIHandler):
    """GET/PUT /api/v2/tenant: the selected tenant; editing needs its manager role."""

    def get(self):
        self.write_json(apimodels.tenant_details_model(self.require_tenant()))

    async def put(self):
        tenant = self.require_tenant()
        membership = self.principal.user.membership(tenant.id)
        if not self.principal.user.is_admin and accounts.MANAGER_ROLE_ID not in membership.roles:
            raise Forbidden("Tenant manager role required")
        accounts.update_tenant(self.db, tenant, self.get_json_body(), self.actor)
        await self.commit_then_mirror(lambda: hubmirror.push_tenant(self.hub_api, tenant))
        self.write_json(apimodels.tenant_model(tenant))


default_handlers = [
    (r"api/v2/admin/tenants", TenantListHandler),
    (r"api/v2/admin/tenants/([^/]+)", TenantHandler),
    (r"api/v2/tenant", CurrentTenantHandler),
]
