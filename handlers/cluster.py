"""Cluster API: quotas, partitions and nodes (admin CRUD and the tenant's view)."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.accounts import users as accounts
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.hub import mirror as hubmirror
from kqi_services.jobs.queue import partitions_of, visible_nodes
from kqi_services.orm import Node, Tenant

from .base import APIHandler


class QuotaListHandler(APIHandler):
    def get(self):
        self.require_admin()
        tenants = self.db.scalars(select(Tenant).order_by(Tenant.id)).all()
        self.write_json([apimodels.quota_model(t) for t in tenants])

    async def post(self):
        """Update the quotas of the listed tenants; 0 is unlimited, others are left as they are."""
        self.require_admin()
        body = self.get_json_body()
        if not isinstance(body, list):
            raise InvalidInput("The body must be a list of quotas")
        changed = []
        for i, item in enumerate(body):
            item = v.require_object(item, f"quota {i}")
            tenant = self.db.get(Tenant, v.integer(item, "tenantId", required=True))
            if tenant is None:
                raise InvalidInput(f"Tenant {item['tenantId']} does not exist")
            accounts.set_quota(tenant, item, self.actor)
            changed.append(tenant)
        async def push():
            for tenant in changed:
                await hubmirror.push_tenant(self.hub_api, tenant)

        await self.commit_then_mirror(push)
        tenants = self.db.scalars(select(Tenant).order_by(Tenant.id)).all()
        self.write_json([apimodels.quota_model(t) for t in tenants])


class TenantQuotaHandler(APIHandler):
    def get(self):
        self.write_json(apimodels.quota_model(self.require_tenant()))


class TenantPartitionsHandler(APIHandler):
    def get(self):
        self.write_json(partitions_of(visible_nodes(self.db, self.require_tenant())))


class AdminPartitionsHandler(APIHandler):
    def get(self):
        self.require_admin()
        self.write_json(partitions_of(self.db.scalars(select(Node)).all()))


class TenantNodesHandler(APIHandler):
    def get(self):
        nodes = visible_nodes(self.db, self.require_tenant())
        self.write_json([apimodels.node_resource_model(n) for n in nodes])


def apply_node_input(db, node: Node, body: dict, actor: str) -> None:
    v.require_object(body)
    node.name = v.string(body, "name", required=True, max_length=255, pattern=v.NODE_NAME)
    node.memo = v.string(body, "memo", max_length=1024)
    node.partition = v.string(body, "partition", max_length=255, pattern=v.NODE_NAME) or None
    node.access_level = v.integer(body, "accessLevel", required=True)
    if node.access_level not in apimodels.NODE_ACCESS_LEVELS:
        raise InvalidInput("accessLevel must be 0 (Disabled), 1 (Private) or 2 (Public)")
    tenant_ids = v.integer_list(body, "assignedTenantIds")
    for tid in tenant_ids:
        if db.get(Tenant, tid) is None:
            raise InvalidInput(f"Tenant {tid} does not exist")
    node.assigned_tenant_ids = ",".join(map(str, tenant_ids))
    node.tensorboard_enabled = v.boolean(body, "tensorBoardEnabled", default=True)
    node.notebook_enabled = v.boolean(body, "notebookEnabled", default=True)
    # added: capacity, detected for the embedded node, set here for others
    for field, attr, minimum in (("cpu", "cpu", 1), ("memory", "memory_gb", 1), ("gpu", "gpu", 0)):
        value = v.integer(body, field, minimum=minimum, maximum=1_000_000)
        if value is not None:
            setattr(node, attr, value)
    other = db.scalar(select(Node).where(Node.name == node.name))
    if other is not None and other is not node:
        raise Conflict(f"Node {node.name} already exists")
    node.modified_by = actor


def node_tenants(db, node: Node) -> list[Tenant]:
    ids = [int(i) for i in node.assigned_tenant_ids.split(",") if i]
    return [t for t in (db.get(Tenant, i) for i in ids) if t is not None]


class NodeListHandler(APIHandler):
    def get(self):
        self.require_admin()
        query = select(Node)
        name = self.get_query_argument("name", None)
        if name:
            query = query.where(Node.name.contains(name))
        self.write_json([apimodels.node_model(n) for n in self.page_of(query.order_by(Node.id))])

    def post(self):
        self.require_admin()
        node = Node(created_by=self.actor)
        apply_node_input(self.db, node, self.get_json_body(), self.actor)
        self.db.add(node)
        self.db.commit()
        self.write_json(apimodels.node_model(node), 201)


class NodeHandler(APIHandler):
    def find(self, node_id) -> Node:
        node = self.db.get(Node, v.path_id(node_id))
        if node is None:
            raise NotFound(f"Node {node_id} not found")
        return node

    def get(self, node_id):
        self.require_admin()
        node = self.find(node_id)
        self.write_json(apimodels.node_model(node, node_tenants(self.db, node)))

    def put(self, node_id):
        self.require_admin()
        node = self.find(node_id)
        apply_node_input(self.db, node, self.get_json_body(), self.actor)
        self.db.commit()
        self.write_json(apimodels.node_model(node))

    def delete(self, node_id):
        self.require_admin()
        self.db.delete(self.find(node_id))
        self.db.commit()
        self.set_status(204)
        self.finish()


class NodeAccessLevelsHandler(APIHandler):
    def get(self):
        self.require_admin()  # an admin screen's list, as every path under /admin
        self.write_json(apimodels.enum_infos(apimodels.NODE_ACCESS_LEVELS))


default_handlers = [
    (r"api/v2/admin/quotas", QuotaListHandler),
    (r"api/v2/tenant/quota", TenantQuotaHandler),
    (r"api/v2/tenant/partitions", TenantPartitionsHandler),
    (r"api/v2/admin/partitions", AdminPartitionsHandler),
    (r"api/v2/tenant/nodes", TenantNodesHandler),
    (r"api/v2/admin/nodes", NodeListHandler),
    (r"api/v2/admin/nodes/([^/]+)", NodeHandler),
    (r"api/v2/admin/node-access-levels", NodeAccessLevelsHandler),
]
