"""Role API: system and tenant roles, as /api/v2/admin/roles lists them."""

from __future__ import annotations

from sqlalchemy import or_, select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts import users as accounts
from kqi_services.errors import Conflict, InvalidInput
from kqi_services.orm import Membership, Role, Tenant

from .base import APIHandler


def _tenant_name(db, role: Role):
    tenant = db.get(Tenant, role.tenant_id) if role.tenant_id else None
    return tenant.name if tenant else None


class RoleListHandler(APIHandler):
    def get(self):
        self.require_admin()
        roles = self.db.scalars(select(Role).order_by(Role.sort_order, Role.id)).all()
        self.write_json([apimodels.role_model(r) for r in roles])

    def post(self):
        self.require_admin()
        role = accounts.apply_role_input(self.db, Role(created_by=self.actor), self.get_json_body(), self.actor)
        self.db.add(role)
        self.db.commit()
        self.write_json(apimodels.role_model(role), 201)


class RoleHandler(APIHandler):
    def get(self, role_id):
        self.require_admin()
        role = accounts.get_role(self.db, v.path_id(role_id))
        self.write_json(apimodels.role_details_model(role, _tenant_name(self.db, role)))

    def put(self, role_id):
        self.require_admin()
        role = accounts.get_role(self.db, v.path_id(role_id))
        if role.is_not_editable:
            raise InvalidInput(f"Built-in role {role.name} cannot be edited")
        accounts.apply_role_input(self.db, role, self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(apimodels.role_model(role))

    def delete(self, role_id):
        self.require_admin()
        role = accounts.get_role(self.db, v.path_id(role_id))
        if role.is_not_editable:
            raise InvalidInput(f"Built-in role {role.name} cannot be deleted")
        for m in self.db.scalars(select(Membership)):
            if role.id in m.roles:
                raise Conflict(f"Role {role.name} is still assigned to users")
        self.db.delete(role)
        self.db.commit()
        self.set_status(204)
        self.finish()


class TenantCommonRolesHandler(APIHandler):
    """GET /api/v2/admin/tenant-common-roles: tenant roles shared by every tenant."""

    def get(self):
        self.require_admin()
        roles = self.db.scalars(
            select(Role).where(Role.is_system_role.is_(False), Role.tenant_id.is_(None)).order_by(Role.sort_order)
        ).all()
        self.write_json([apimodels.role_model(r) for r in roles])


class TenantRolesHandler(APIHandler):
    """GET /api/v2/tenant/roles: the roles usable in the selected tenant."""

    def get(self):
        tenant = self.require_tenant()
        roles = self.db.scalars(
            select(Role)
            .where(Role.is_system_role.is_(False), or_(Role.tenant_id.is_(None), Role.tenant_id == tenant.id))
            .order_by(Role.sort_order)
        ).all()
        self.write_json([apimodels.role_model(r) for r in roles])


default_handlers = [
    (r"api/v2/admin/roles", RoleListHandler),
    (r"api/v2/admin/roles/([^/]+)", RoleHandler),
    (r"api/v2/admin/tenant-common-roles", TenantCommonRolesHandler),
    (r"api/v2/tenant/roles", TenantRolesHandler),
]
