"""Resource API (v2 Resource group): what runs where, for the admin's and the tenant's resource screens.

A container is a run that holds node resources, named by its run key
``{kind}-{id}`` (``kqi_services.jobs.resources``). Handlers check who asks
and call that core; stopping a container is the engine's halt.

Who may do what (the contract's tags and notes are silent; the original
gives the tenant paths to its tenant-manager menu):

* ``/api/v2/admin/resource/…``: system admins only (403 to anyone else),
  ``container-types`` included, as every admin path here.
* ``/api/v2/tenant/resource/…``: any member of the caller's selected tenant
  may read (its members see its runs and their logs anyway). Only that
  tenant's containers are found: another tenant's container name is a 404,
  on every path. On a node, ``assigned*`` counts every tenant's containers
  (how full the node is) while the list shows the tenant's own only.
* ``DELETE /api/v2/tenant/resource/containers/{name}`` needs the tenant
  manager role, being the one who started the run, or being a system admin
  (403 otherwise).

``DELETE …/containers/…`` halts the run as ``…/{id}/halt`` does and
answers 204 (the contract's) at once; the run ends ``Killed`` when its
executor has stopped it, and leaves the lists then. Its ``modifiedBy``, its
condition note while it stops, and the service log say who did it. A
container that has ended is a 404.

``…/log`` answers the run's stdout and stderr as ``text/plain`` (the
original's file download ``{tenant}_{name}_log``), its last 4 MiB at most:
``X-Log-Start`` says where in the log the body starts and ``X-Log-Offset``
where it ends (``…/{kind}/{id}/log?offset=`` goes on from there).
"""

from __future__ import annotations

import os

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts.users import MANAGER_ROLE_ID
from kqi_services.errors import Forbidden, NotFound
from kqi_services.jobs import resources
from kqi_services.jobs import status as st
from kqi_services.jobs.engine import JobEngine
from kqi_services.jobs.kinds import KINDS
from kqi_services.orm import Run, Tenant

from .base import APIHandler

#: the most of a log one ``…/log`` answers (its end)
LOG_LIMIT = 4 * 1024 * 1024


class ContainerBase(APIHandler):
    """Finds containers for the admin paths (any tenant) and the tenant paths (the selected one)."""

    @property
    def engine(self) -> JobEngine:
        return self.settings["engine"]

    def admin_container(self, tenant_id, name) -> tuple[Tenant, Run]:
        self.require_admin()
        tenant = self.db.get(Tenant, v.path_id(tenant_id, "tenantId"))
        if tenant is None:
            raise NotFound(f"Tenant ID {tenant_id} is not found")
        return tenant, self.container(tenant, name)

    def tenant_container(self, name) -> tuple[Tenant, Run]:
        tenant = self.require_tenant()
        return tenant, self.container(tenant, name)

    def container(self, tenant: Tenant, name: str) -> Run:
        run = resources.find_container(self.db, tenant.id, name)
        if run is None:
            raise NotFound(f"Container {name} is not found: no run of this tenant holds resources by that name")
        return run

    def write_details(self, run: Run) -> None:
        self.write_json(resources.container_models(self.db, [run])[0])

    async def stop(self, run: Run) -> None:
        """Halt the container's run (``Killed``) and answer 204."""
        self.log.info("%s stops container %s of tenant %s from the resource view",
                      self.actor, resources.container_name(run), run.tenant_id)
        run.modified_by = self.actor
        await self.engine.halt(self.db, run, st.KILLED, f"Stopping: deleted from the resource view by {self.actor}")
        self.set_status(204)
        self.finish()

    def write_log(self, tenant: Tenant, run: Run) -> None:
        """The end of the run's log (at most ``LOG_LIMIT`` bytes) as text; empty while it has none."""
        path = self.engine.log_path(run)
        body, start = b"", 0
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                start = max(0, size - LOG_LIMIT)
                body = os.pread(f.fileno(), size - start, start) if size > start else b""
        name = resources.container_name(run)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{tenant.name}_{name}_log"')
        self.set_header("X-Log-Start", str(start))
        self.set_header("X-Log-Offset", str(start + len(body)))
        self.set_header("X-Run-Status", run.status)
        self.finish(body)


# admin ---------------------------------------------------------------------------------------------


class AdminNodesHandler(ContainerBase):
    def get(self):
        self.require_admin()
        self.write_json(resources.node_resources(self.db))


class AdminTenantsHandler(ContainerBase):
    def get(self):
        self.require_admin()
        self.write_json(resources.tenant_resources(self.db))


class AdminContainersHandler(ContainerBase):
    def get(self):
        self.require_admin()
        self.write_json(resources.containers(self.db))


class ContainerTypesHandler(ContainerBase):
    def get(self):
        self.require_admin()
        self.write_json(apimodels.enum_infos(resources.CONTAINER_TYPES))


class AdminContainerHandler(ContainerBase):
    def get(self, tenant_id, name):
        _, run = self.admin_container(tenant_id, name)
        self.write_details(run)

    async def delete(self, tenant_id, name):
        _, run = self.admin_container(tenant_id, name)
        await self.stop(run)


class AdminContainerLogHandler(ContainerBase):
    def get(self, tenant_id, name):
        self.write_log(*self.admin_container(tenant_id, name))


class AdminContainerEventsHandler(ContainerBase):
    """The run's events (``…/{kind}/{id}/events``): its condition, and its image pull while one runs."""

    def get(self, tenant_id, name):
        _, run = self.admin_container(tenant_id, name)
        pull = self.engine.executor.pull_progress(resources.container_name(run))
        self.write_json(apimodels.run_events_model(run, KINDS[run.kind], pull))


# tenant --------------------------------------------------------------------------------------------


class TenantContainersHandler(ContainerBase):
    def get(self):
        self.write_json(resources.containers(self.db, self.require_tenant().id))


class TenantNodesHandler(ContainerBase):
    def get(self):
        self.write_json(resources.node_resources(self.db, self.require_tenant()))


class TenantContainerHandler(ContainerBase):
    def get(self, name):
        _, run = self.tenant_container(name)
        self.write_details(run)

    async def delete(self, name):
        tenant, run = self.tenant_container(name)
        user = self.principal.user
        membership = user.membership(tenant.id)
        manager = membership is not None and MANAGER_ROLE_ID in membership.roles
        if not (user.is_admin or manager or run.user_id == user.id):
            raise Forbidden("Deleting a container needs the tenant manager role or being the one who started it")
        await self.stop(run)


class TenantContainerLogHandler(ContainerBase):
    def get(self, name):
        self.write_log(*self.tenant_container(name))


default_handlers = [
    (r"api/v2/admin/resource/nodes", AdminNodesHandler),
    (r"api/v2/admin/resource/tenants", AdminTenantsHandler),
    (r"api/v2/admin/resource/containers", AdminContainersHandler),
    (r"api/v2/admin/resource/container-types", ContainerTypesHandler),
    (r"api/v2/admin/resource/containers/([^/]+)/([^/]+)", AdminContainerHandler),
    (r"api/v2/admin/resource/containers/([^/]+)/([^/]+)/log", AdminContainerLogHandler),
    (r"api/v2/admin/resource/containers/([^/]+)/([^/]+)/events", AdminContainerEventsHandler),
    (r"api/v2/tenant/resource/containers", TenantContainersHandler),
    (r"api/v2/tenant/resource/nodes", TenantNodesHandler),
    (r"api/v2/tenant/resource/containers/([^/]+)", TenantContainerHandler),
    (r"api/v2/tenant/resource/containers/([^/]+)/log", TenantContainerLogHandler),
]
