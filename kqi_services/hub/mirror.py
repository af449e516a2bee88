"""Mirror of the kqi accounts in JupyterHub: users with their admin flag, tenants as groups.

The kqi database is the source of truth; these functions push its state to
the hub through its REST API. ``reconcile`` repairs any drift at service
start; the admin API calls the narrower ones after each change.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from kqi_services.hub.api import HubAPI
from kqi_services.orm import Tenant, User

log = logging.getLogger(__name__)

TENANT_ID_PROPERTY = "kqi_tenant_id"


def group_name(tenant: Tenant) -> str:
    return tenant.name


def group_properties(tenant: Tenant) -> dict:
    return {
        TENANT_ID_PROPERTY: tenant.id,
        "display_name": tenant.display_name,
        "quota": {"cpu": tenant.quota_cpu, "memory": tenant.quota_memory, "gpu": tenant.quota_gpu},
        "available_infinite_time_notebook": tenant.available_infinite_time_notebook,
    }


async def push_tenant(hub: HubAPI, tenant: Tenant) -> None:
    """Push one tenant's group; its members already exist in the hub."""
    await hub.ensure_group(group_name(tenant), [m.user.name for m in tenant.memberships],
                           group_properties(tenant))


async def push_user(hub: HubAPI, user: User, previous_tenants=()) -> None:
    """Push one user and every tenant group they are in or just left."""
    await hub.ensure_user(user.name, admin=user.is_admin)
    tenants = {m.tenant.id: m.tenant for m in user.memberships}
    for tenant in list(tenants.values()) + [t for t in previous_tenants if t.id not in tenants]:
        await push_tenant(hub, tenant)


async def reconcile(hub: HubAPI, db) -> None:
    """Make the hub's users and tenant groups match the kqi database."""
    users = db.scalars(select(User)).all()
    for user in users:
        await hub.ensure_user(user.name, admin=user.is_admin)
    tenants = db.scalars(select(Tenant)).all()
    wanted = {group_name(t) for t in tenants}
    for tenant in tenants:
        await push_tenant(hub, tenant)
    for group in await hub.list_groups():
        if TENANT_ID_PROPERTY in (group.get("properties") or {}) and group["name"] not in wanted:
            log.info("Removing hub group %s of a deleted tenant", group["name"])
            await hub.delete_group(group["name"])
