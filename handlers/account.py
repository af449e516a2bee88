"""Account API: login, the caller's account, tenant switching, password, git and registry tokens."""

from __future__ import annotations

import os
import re

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts import users as accounts
from kqi_services.accounts.passwords import verify_password
from kqi_services.accounts.tokens import bind_token, revoke_user_tokens, token_lifetime
from kqi_services.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from kqi_services.hub.forwarding import PROXY_PID_FILE_NAME, peer_address, peer_is_one_of
from kqi_services.orm import Credential, GitEndpoint, RegistryEndpoint, Tenant, User

from .base import APIHandler

LOGIN_NOTE = "kqi login"
SWITCH_NOTE = "kqi switch-tenant"


def login_model(user: User, tenant: Tenant, token: str, lifetime: int) -> dict:
    return {
        "token": token,
        "userName": user.name,
        "tenantId": tenant.id,
        "tenantName": tenant.name,
        "expiresIn": lifetime,
        # added: the tenant's display name
        "tenantDisplayName": tenant.display_name,
    }


class LoginHandler(APIHandler):
    """POST /api/v2/account/login: credentials checked by the hub's authenticator."""

    auth_required = False

    async def post(self):
        body = v.require_object(self.get_json_body())
        # a name the hub could never have (a `/` would change the hub API path it is sent in)
        name = v.string(body, "userName", required=True, max_length=255, pattern=v.USER_NAME).lower()
        password = v.field(body, "password", str, required=True)
        tenant_id = v.integer(body, "tenantId")
        lifetime = token_lifetime(
            body.get("expiresIn"), self.platform.token_lifetime_seconds, self.platform.token_max_seconds
        )
        hub_token = await self.hub_api.login(name, password, lifetime, LOGIN_NOTE, self.forwarded_for())
        if hub_token is None:
            raise Unauthorized("Invalid user name or password (or the account is locked)")
        token = hub_token["token"]
        name = hub_token.get("user") or name
        user = User.find_by_name(self.db, name) or await self.provision(name)
        membership = user.membership(tenant_id) if tenant_id is not None else user.default_membership
        if membership is None:
            await self.hub_api.delete_token(name, hub_token["id"])
            if tenant_id is not None:
                raise NotFound(f"Tenant {tenant_id} not found")
            raise Forbidden("You belong to no tenant; ask an admin to add you to one")
        bind_token(self.db, user, membership.tenant_id, token, hub_token["id"], lifetime)
        self.db.commit()
        self.write_json(login_model(user, membership.tenant, token, lifetime))

    def forwarded_for(self) -> str:
        """``X-Forwarded-For`` for the hub: the chain the hub's proxy passed on, else just our peer.

        The chain is passed on only when this request's TCP peer is the hub's
        own proxy; the hub believes its last entry (the address the proxy saw)
        because it checks that its own peer is this service (see ``forwarding``).
        """
        peer = peer_address(self.request)
        proxy_pid_file = os.path.join(self.platform.state_dir, PROXY_PID_FILE_NAME)
        if peer_is_one_of(self.request, [proxy_pid_file]):
            return self.request.headers.get("X-Forwarded-For", "").strip() or peer
        return peer


def account_model(user: User, selected: Tenant | None, roles) -> dict:
    infos = [apimodels.tenant_info(m, roles) for m in sorted(user.memberships, key=lambda m: m.tenant_id)]
    default = user.default_membership
    return {
        "userId": user.id,
        "userName": user.name,
        "passwordChangeEnabled": user.password_hash is not None,
        "selectedTenant": next((t for t in infos if selected and t["id"] == selected.id), None),
        "defaultTenant": next((t for t in infos if default and t["id"] == default.tenant_id), None),
        "tenants": infos,
        # added
        "isSystemAdmin": user.is_admin,
    }


class AccountHandler(APIHandler):
    """GET /api/v2/account; PUT with ?DefaultTenant=id-or-name changes the default tenant."""

    def get(self):
        p = self.principal
        self.write_json(account_model(p.user, p.tenant, accounts.roles_by_id(self.db)))

    async def put(self):
        p = self.principal
        wanted = self.get_query_argument("DefaultTenant", None)
        if not wanted:
            raise InvalidInput("Missing query parameter DefaultTenant")
        tenant = None
        if re.fullmatch(r"[0-9]{1,18}", wanted):  # ASCII digits only: str.isdigit() takes "³" too
            tenant = self.db.get(Tenant, int(wanted))
        if tenant is None:
            tenant = Tenant.find_by_name(self.db, wanted)
        if tenant is None:
            raise NotFound(f"Tenant {wanted} not found")
        accounts.set_default_tenant(p.user, tenant.id)
        self.db.commit()
        self.write_json(account_model(p.user, p.tenant, accounts.roles_by_id(self.db)))


class SwitchTenantHandler(APIHandler):
    """POST /api/v2/account/tenants/{id}/token: a new token bound to another tenant."""

    async def post(self, tenant_id):
        p = self.principal
        tenant_id = v.path_id(tenant_id, "tenantId")
        membership = p.user.membership(tenant_id)
        if membership is None:
            raise NotFound(f"Tenant {tenant_id} not found")
        body = v.require_object(self.get_json_body() or {})
        lifetime = token_lifetime(
            body.get("expiresIn"), self.platform.token_lifetime_seconds, self.platform.token_max_seconds
        )
        hub_token = await self.hub_api.new_token(p.user.name, lifetime, SWITCH_NOTE)
        bind_token(self.db, p.user, tenant_id, hub_token["token"], hub_token["id"], lifetime)
        self.db.commit()
        self.write_json(login_model(p.user, membership.tenant, hub_token["token"], lifetime))


class SelectedTenantHandler(APIHandler):
    """PUT /api/v2/account/selected-tenant {tenantId}: switch the tenant of this session in place.

    Added to the contract for browser sessions (the service's OAuth cookie),
    which cannot swap their token; API tokens may use it too.
    """

    def put(self):
        p = self.principal
        body = v.require_object(self.get_json_body())
        tenant_id = v.integer(body, "tenantId", required=True)
        membership = p.user.membership(tenant_id)
        if membership is None:
            raise NotFound(f"Tenant {tenant_id} not found")
        bind_token(self.db, p.user, tenant_id, p.token, None, None)
        self.db.commit()
        self.write_json(account_model(p.user, membership.tenant, accounts.roles_by_id(self.db)))


class PasswordHandler(APIHandler):
    """PUT /api/v2/account/password: change one's own password; old tokens are revoked."""

    async def put(self):
        user = self.principal.user
        body = v.require_object(self.get_json_body())
        current = v.field(body, "currentPassword", str, required=True)
        new = v.field(body, "newPassword", str, required=True)
        if user.password_hash is None:
            raise InvalidInput("This account's password is managed elsewhere (LDAP/OAuth)")
        if not verify_password(current, user.password_hash):
            raise InvalidInput("currentPassword is wrong")
        accounts.set_password(user, new, user.name)
        await revoke_user_tokens(self.hub_api, self.db, user, self.hub_auth)
        self.db.commit()
        self.set_status(204)
        self.finish()


class CredentialHandler(APIHandler):
    """Shared logic of /account/gits and /account/registries: per-endpoint secrets."""

    kind = ""
    endpoint_model = None

    def endpoints(self):
        tenant = self.require_tenant()
        links = tenant.gits if self.kind == "git" else tenant.registries
        ids = [link.git_id if self.kind == "git" else link.registry_id for link in links]
        return tenant, [self.db.get(self.endpoint_model, i) for i in ids]

    def credential(self, endpoint_id) -> Credential | None:
        user = self.principal.user
        return (
            self.db.query(Credential)
            .filter_by(user_id=user.id, kind=self.kind, endpoint_id=endpoint_id)
            .one_or_none()
        )

    def get(self):
        tenant, endpoints = self.endpoints()
        items = [self.item(e, self.credential(e.id)) for e in endpoints]
        self.write_json(self.index(tenant, items))

    def put(self):
        body = v.require_object(self.get_json_body())
        endpoint_id = v.integer(body, "id", required=True)
        tenant, endpoints = self.endpoints()
        endpoint = next((e for e in endpoints if e.id == endpoint_id), None)
        if endpoint is None:
            raise NotFound(f"Endpoint {endpoint_id} is not available in this tenant")
        cred = self.credential(endpoint_id) or Credential(
            user_id=self.principal.user.id, kind=self.kind, endpoint_id=endpoint_id
        )
        self.update(cred, body)
        self.db.add(cred)
        self.db.commit()
        self.write_json(self.item(endpoint, cred))

    def secret(self, cred: Credential | None) -> str | None:
        return self.secret_box.decrypt(cred.secret_encrypted) if cred else None


class GitCredentialHandler(CredentialHandler):
    kind = "git"
    endpoint_model = GitEndpoint

    def index(self, tenant, items):
        return {"defaultGitId": tenant.default_git_id, "gits": items}

    def item(self, git, cred):
        return {"id": git.id, "name": git.name, "serviceType": git.service_type, "token": self.secret(cred)}

    def update(self, cred, body):
        cred.secret_encrypted = self.secret_box.encrypt(v.string(body, "token", max_length=4096) or None)


class RegistryCredentialHandler(CredentialHandler):
    kind = "registry"
    endpoint_model = RegistryEndpoint

    def index(self, tenant, items):
        return {"defaultRegistryId": tenant.default_registry_id, "registries": items}

    def item(self, registry, cred):
        return {
            "id": registry.id,
            "name": registry.name,
            "projectName": registry.project_name,
            "serviceType": registry.service_type,
            "userName": cred.user_name if cred else None,
            "password": self.secret(cred),
        }

    def update(self, cred, body):
        cred.user_name = v.string(body, "userName", max_length=255) or None
        cred.secret_encrypted = self.secret_box.encrypt(v.string(body, "password", max_length=4096) or None)


default_handlers = [
    (r"api/v2/account/login", LoginHandler),
    (r"api/v2/account", AccountHandler),
    (r"api/v2/account/tenants/([^/]+)/token", SwitchTenantHandler),
    (r"api/v2/account/selected-tenant", SelectedTenantHandler),
    (r"api/v2/account/password", PasswordHandler),
    (r"api/v2/account/gits", GitCredentialHandler),
    (r"api/v2/account/registries", RegistryCredentialHandler),
]
