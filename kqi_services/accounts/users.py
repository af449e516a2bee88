"""Accounts core: tenants, users, memberships and roles in the kqi database.

Plain functions on a SQLAlchemy session, free of tornado and of the hub:
they validate, change rows and flush, and leave the commit (and the mirror
to JupyterHub groups, see ``hub.mirror``) to the caller, so a failed hub call
rolls the whole change back.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import object_session

from kqi_services import validation as v
from kqi_services.accounts import lockout
from kqi_services.accounts.passwords import WeakPassword, hash_password
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.orm import (
    Credential,
    GitEndpoint,
    Membership,
    RegistryEndpoint,
    Role,
    StorageEndpoint,
    Tenant,
    TenantGit,
    TenantRegistry,
    User,
)

ADMIN_ROLE_ID = 1
USER_ROLE_ID = 2
MANAGER_ROLE_ID = 3

LOCAL_AUTH = 1
EXTERNAL_AUTH = 2


def roles_by_id(db) -> dict[int, Role]:
    return {r.id: r for r in db.scalars(select(Role).order_by(Role.sort_order, Role.id))}


# tenants ---------------------------------------------------------------------


def get_tenant(db, tenant_id: int) -> Tenant:
    tenant = db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found")
    return tenant


def _existing_ids(db, model, ids, what) -> list[int]:
    for i in ids:
        if db.get(model, i) is None:
            raise InvalidInput(f"{what} {i} does not exist")
    return ids


def _apply_tenant_settings(db, tenant: Tenant, body: dict) -> None:
    """The fields shared by the create and edit models."""
    tenant.display_name = v.string(body, "displayName", required=True, max_length=128)
    git_ids = _existing_ids(db, GitEndpoint, v.integer_list(body, "gitIds", required=True), "Git endpoint")
    registry_ids = _existing_ids(
        db, RegistryEndpoint, v.integer_list(body, "registryIds", required=True), "Registry endpoint"
    )
    storage_id = v.integer(body, "storageId", required=True)
    _existing_ids(db, StorageEndpoint, [storage_id], "Storage endpoint")
    default_git = v.integer(body, "defaultGitId")
    default_registry = v.integer(body, "defaultRegistryId")
    if default_git is not None and default_git not in git_ids:
        raise InvalidInput("defaultGitId must be one of gitIds")
    if default_registry is not None and default_registry not in registry_ids:
        raise InvalidInput("defaultRegistryId must be one of registryIds")
    v.integer_list(body, "userGroupIds")
    tenant.storage_id = storage_id
    tenant.default_git_id = default_git if default_git is not None else (git_ids[0] if git_ids else None)
    tenant.default_registry_id = (
        default_registry if default_registry is not None else (registry_ids[0] if registry_ids else None)
    )
    tenant.available_infinite_time_notebook = v.boolean(body, "availableInfiniteTimeNotebook")
    tenant.gits = [TenantGit(git_id=i) for i in git_ids]
    tenant.registries = [TenantRegistry(registry_id=i) for i in registry_ids]


def create_tenant(db, body, actor: str) -> Tenant:
    v.require_object(body)
    name = v.string(body, "tenantName", required=True, max_length=63, pattern=v.TENANT_NAME)
    tenant = Tenant(name=name, created_by=actor, modified_by=actor)
    _apply_tenant_settings(db, tenant, body)
    if Tenant.find_by_name(db, name) is not None:
        raise Conflict(f"Tenant {name} already exists")
    db.add(tenant)
    db.flush()
    return tenant


def update_tenant(db, tenant: Tenant, body, actor: str) -> Tenant:
    v.require_object(body)
    _apply_tenant_settings(db, tenant, body)
    tenant.modified_by = actor
    db.flush()
    return tenant


def set_quota(tenant: Tenant, body: dict, actor: str) -> None:
    """Apply one QuotaInputModel; 0 means unlimited, a missing value keeps the old one."""
    for field, attr in (("cpu", "quota_cpu"), ("memory", "quota_memory"), ("gpu", "quota_gpu")):
        value = v.integer(body, field, minimum=0, maximum=2**31 - 1)
        if value is not None:
            setattr(tenant, attr, value)
    tenant.modified_by = actor


def delete_tenant(db, tenant: Tenant) -> list[str]:
    """Delete a tenant; return the names of users who were members."""
    members = [m.user.name for m in tenant.memberships]
    for m in list(tenant.memberships):
        user = m.user
        user.memberships.remove(m)
        if m.is_default and user.memberships:
            user.memberships[0].is_default = True
    db.delete(tenant)
    db.flush()
    return members


# users -------------------------------------------------------------------------


def get_user(db, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def _parse_memberships(db, body: dict) -> list[tuple[int, bool, list[int]]]:
    """The ``tenants`` list of a user model as (tenant id, default, role ids)."""
    items = v.object_list(body, "tenants", required=True)
    if not items:
        raise InvalidInput("tenants must name at least one tenant")
    roles = roles_by_id(db)
    parsed, seen = [], set()
    for item in items:
        tenant_id = v.integer(item, "id", required=True)
        if tenant_id in seen:
            raise InvalidInput(f"tenant {tenant_id} is listed twice")
        seen.add(tenant_id)
        if db.get(Tenant, tenant_id) is None:
            raise InvalidInput(f"Tenant {tenant_id} does not exist")
        role_ids = v.integer_list(item, "roles") or [USER_ROLE_ID]
        for r in role_ids:
            role = roles.get(r)
            if role is None or role.is_system_role or role.tenant_id not in (None, tenant_id):
                raise InvalidInput(f"role {r} is not a role of tenant {tenant_id}")
        parsed.append((tenant_id, v.boolean(item, "default"), role_ids))
    defaults = [p for p in parsed if p[1]]
    if len(defaults) > 1:
        raise InvalidInput("only one tenant can be the default")
    if not defaults:
        parsed[0] = (parsed[0][0], True, parsed[0][2])
    return parsed


def _parse_system_roles(db, body: dict) -> bool:
    """True when the systemRoles list makes the user a system admin."""
    roles = roles_by_id(db)
    ids = v.integer_list(body, "systemRoles")
    for r in ids:
        if r not in roles or not roles[r].is_system_role:
            raise InvalidInput(f"role {r} is not a system role")
    return ADMIN_ROLE_ID in ids


def _set_memberships(user: User, parsed) -> None:
    by_tenant = {m.tenant_id: m for m in user.memberships}
    keep = []
    for tenant_id, is_default, role_ids in parsed:
        m = by_tenant.get(tenant_id) or Membership(tenant_id=tenant_id)
        m.is_default = is_default
        m.roles = role_ids
        keep.append(m)
    user.memberships = keep


def create_user(db, body, actor: str) -> User:
    v.require_object(body)
    name = v.string(body, "name", required=True, max_length=255, pattern=v.USER_NAME).lower()
    password = v.field(body, "password", str, required=True)
    try:
        password_hash = hash_password(password)
    except WeakPassword as e:
        raise InvalidInput(str(e)) from None
    is_admin = _parse_system_roles(db, body)
    parsed = _parse_memberships(db, body)
    if User.find_by_name(db, name) is not None:
        raise Conflict(f"User {name} already exists")
    user = User(name=name, password_hash=password_hash, service_type=LOCAL_AUTH, is_admin=is_admin,
                created_by=actor, modified_by=actor)
    _set_memberships(user, parsed)
    db.add(user)
    db.flush()
    return user


def update_user(db, user: User, body, actor: str) -> User:
    v.require_object(body)
    is_admin = _parse_system_roles(db, body)
    parsed = _parse_memberships(db, body)
    user.is_admin = is_admin
    _set_memberships(user, parsed)
    user.modified_by = actor
    db.flush()
    return user


def set_password(user: User, password, actor: str) -> None:
    """Store a new password and clear the lockout from every address (admin reset and user change)."""
    try:
        user.password_hash = hash_password(password)
    except WeakPassword as e:
        raise InvalidInput(str(e)) from None
    user.service_type = LOCAL_AUTH
    db = object_session(user)
    if db is not None and user.id is not None:
        lockout.forget_user(db, user.id)
    user.modified_by = actor


def provision_external_user(db, name: str, tenant_name: str | None) -> User:
    """Create the kqi record of a user who logged in through LDAP/OAuth."""
    user = User(name=name.lower(), password_hash=None, service_type=EXTERNAL_AUTH,
                created_by="system", modified_by="system")
    if tenant_name:
        tenant = Tenant.find_by_name(db, tenant_name)
        if tenant is not None:
            m = Membership(tenant_id=tenant.id, is_default=True)
            m.roles = [USER_ROLE_ID]
            user.memberships.append(m)
    db.add(user)
    db.flush()
    return user


def set_default_tenant(user: User, tenant_id: int) -> None:
    if user.membership(tenant_id) is None:
        raise NotFound(f"Tenant {tenant_id} not found")
    for m in user.memberships:
        m.is_default = m.tenant_id == tenant_id


# roles --------------------------------------------------------------------------


def get_role(db, role_id: int) -> Role:
    role = db.get(Role, role_id)
    if role is None:
        raise NotFound(f"Role {role_id} not found")
    return role


def apply_role_input(db, role: Role, body: dict, actor: str) -> Role:
    v.require_object(body)
    name = v.string(body, "name", required=True, max_length=64, pattern=v.TENANT_NAME)
    other = db.scalar(select(Role).where(Role.name == name))
    if other is not None and other is not role:
        raise Conflict(f"Role {name} already exists")
    role.name = name
    role.display_name = v.string(body, "displayName", required=True, max_length=128)
    role.sort_order = v.integer(body, "sortOrder", required=True)
    role.is_system_role = v.boolean(body, "isSystemRole")
    tenant_id = v.integer(body, "tenantId")
    if tenant_id is not None:
        if role.is_system_role:
            raise InvalidInput("a system role cannot belong to a tenant")
        get_tenant(db, tenant_id)
    role.tenant_id = tenant_id
    role.modified_by = actor
    return role


def registry_login(db, secret_box, user: User, registry_id: int) -> tuple[str, str] | None:
    """(user name, token) the user set for a registry endpoint (``PUT /account/registries``); None without a token.

    The name defaults to the user's own. Pulls (the container executor) and the registry listings log in with it.
    """
    cred = db.scalar(select(Credential).where(Credential.user_id == user.id, Credential.kind == "registry",
                                              Credential.endpoint_id == registry_id))
    token = secret_box.decrypt(cred.secret_encrypted) if cred and cred.secret_encrypted else None
    return (cred.user_name or user.name, token) if token else None
