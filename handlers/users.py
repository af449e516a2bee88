"""User API: /admin/users (system admins) and /tenant/users (the selected tenant's managers)."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts import lockout
from kqi_services.accounts import users as accounts
from kqi_services.accounts.tokens import forget_cached_identities, revoke_user_tokens
from kqi_services.errors import Forbidden, InvalidInput, NotFound
from kqi_services.hub import mirror as hubmirror
from kqi_services.orm import Membership, User, utcnow

from .base import APIHandler


class UserListHandler(APIHandler):
    def get(self):
        self.require_admin()
        roles = accounts.roles_by_id(self.db)
        users = self.db.scalars(select(User).order_by(User.id)).all()
        locks = lockout.current_locks(self.db, utcnow())
        # added: the source addresses locked out of each account now (failed logins; a password reset unlocks)
        self.write_json([{**apimodels.user_admin_model(u, roles), "lockedAddresses": locks.get(u.id, [])}
                         for u in users])

    async def post(self):
        self.require_admin()
        user = accounts.create_user(self.db, self.get_json_body(), self.actor)
        await self.commit_then_mirror(lambda: hubmirror.push_user(self.hub_api, user))
        self.write_json(apimodels.user_admin_model(user, accounts.roles_by_id(self.db)), 201)


class UserHandler(APIHandler):
    def get(self, user_id):
        self.require_admin()
        user = accounts.get_user(self.db, v.path_id(user_id))
        self.write_json(apimodels.user_admin_model(user, accounts.roles_by_id(self.db)))

    async def put(self, user_id):
        self.require_admin()
        user = accounts.get_user(self.db, v.path_id(user_id))
        previous = [m.tenant for m in user.memberships]
        accounts.update_user(self.db, user, self.get_json_body(), self.actor)
        if user.id == self.principal.user.id and not user.is_admin:
            raise InvalidInput("You cannot remove your own system admin role")
        await self.commit_then_mirror(lambda: hubmirror.push_user(self.hub_api, user, previous))
        self.write_json(apimodels.user_admin_model(user, accounts.roles_by_id(self.db)))

    async def delete(self, user_id):
        self.require_admin()
        user = accounts.get_user(self.db, v.path_id(user_id))
        if user.id == self.principal.user.id:
            raise InvalidInput("You cannot delete your own account")
        self.db.delete(user)
        # deleting the hub user also removes its tokens and its group memberships
        await self.commit_then_mirror(lambda: self.hub_api.delete_user(user.name))
        forget_cached_identities(self.hub_auth)
        self.set_status(204)
        self.finish()


class UserPasswordHandler(APIHandler):
    """PUT /api/v2/admin/users/{id}/password: body is a bare JSON string; old tokens are revoked."""

    async def put(self, user_id):
        self.require_admin()
        user = accounts.get_user(self.db, v.path_id(user_id))
        password = self.get_json_body()
        if not isinstance(password, str):
            raise InvalidInput("The body must be the new password as a JSON string")
        accounts.set_password(user, password, self.actor)
        await revoke_user_tokens(self.hub_api, self.db, user, self.hub_auth)
        self.db.commit()
        self.set_status(204)
        self.finish()


class TenantUserBase(APIHandler):
    def tenant_member(self, user_id) -> tuple[User, Membership]:
        tenant = self.require_tenant()
        user = self.db.get(User, v.path_id(user_id))
        membership = user.membership(tenant.id) if user else None
        if membership is None:
            raise NotFound(f"User {user_id} not found")
        return user, membership

    def require_manager(self):
        tenant = self.require_tenant()
        mine = self.principal.user.membership(tenant.id)
        if not self.principal.user.is_admin and accounts.MANAGER_ROLE_ID not in mine.roles:
            raise Forbidden("Tenant manager role required")
        return tenant


class TenantUserListHandler(TenantUserBase):
    def get(self):
        tenant = self.require_tenant()
        roles = accounts.roles_by_id(self.db)
        members = sorted(tenant.memberships, key=lambda m: m.user_id)
        self.write_json([apimodels.user_tenant_model(m.user, m, roles) for m in members])


class TenantUserHandler(TenantUserBase):
    def get(self, user_id):
        user, membership = self.tenant_member(user_id)
        self.write_json(apimodels.user_tenant_model(user, membership, accounts.roles_by_id(self.db)))

    async def delete(self, user_id):
        tenant = self.require_manager()
        user, membership = self.tenant_member(user_id)
        if len(user.memberships) == 1:
            raise InvalidInput("This is the user's only tenant; an admin can delete the user instead")
        user.memberships.remove(membership)
        if membership.is_default:
            user.memberships[0].is_default = True

        async def push():
            self.db.refresh(tenant)  # its members as committed
            await hubmirror.push_tenant(self.hub_api, tenant)

        await self.commit_then_mirror(push)
        self.set_status(204)
        self.finish()


class TenantUserRolesHandler(TenantUserBase):
    """PUT /api/v2/tenant/users/{id}/roles with a JSON list of role ids."""

    def put(self, user_id):
        tenant = self.require_manager()
        user, membership = self.tenant_member(user_id)
        role_ids = v.integer_list({"roles": self.get_json_body()}, "roles", required=True)
        roles = accounts.roles_by_id(self.db)
        for r in role_ids:
            role = roles.get(r)
            if role is None or role.is_system_role or role.tenant_id not in (None, tenant.id):
                raise InvalidInput(f"role {r} is not a role of this tenant")
        membership.roles = role_ids
        self.db.commit()
        self.write_json(apimodels.user_admin_model(user, roles))


default_handlers = [
    (r"api/v2/admin/users", UserListHandler),
    (r"api/v2/admin/users/([^/]+)", UserHandler),
    (r"api/v2/admin/users/([^/]+)/password", UserPasswordHandler),
    (r"api/v2/tenant/users", TenantUserListHandler),
    (r"api/v2/tenant/users/([^/]+)", TenantUserHandler),
    (r"api/v2/tenant/users/([^/]+)/roles", TenantUserRolesHandler),
]
