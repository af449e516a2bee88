"""What the scheduler sees of the database: queued runs as requests, nodes with what holds them."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services.jobs.scheduler import JobRequest, NodeView, Resources, queue_positions
from kqi_services.orm import Node, Run, Tenant

from . import status as st


def run_request(run: Run) -> JobRequest:
    return JobRequest(f"{run.kind}-{run.id}", run.tenant_id, Resources(run.cpu, run.memory, run.gpu),
                      run.partition, run.queued_order or run.id)


def node_view(node: Node) -> NodeView:
    """A node row as the scheduler sees it, nothing held yet."""
    tenant_ids = frozenset(int(t) for t in node.assigned_tenant_ids.split(",") if t)
    return NodeView(node.name, node.partition, Resources(node.cpu, node.memory_gb, node.gpu),
                    access_level=node.access_level, tenant_ids=tenant_ids)


def node_views(db, holding: list) -> list[NodeView]:
    """Nodes with what ``holding`` (admitted runs and notebooks) already takes from them."""
    views = {n.name: node_view(n) for n in db.scalars(select(Node).order_by(Node.id))}
    for held in holding:
        view = views.get(held.node)
        if view is not None:
            view.used = view.used + Resources(held.cpu, held.memory, held.gpu)
            view.gpu_ids_in_use |= {int(g) for g in held.gpu_ids.split(",") if g}
    return list(views.values())


def holding_runs(db) -> list[Run]:
    """Every run that holds node resources now: admitted and not ended (preparing, starting, running)."""
    return list(db.scalars(select(Run).where(Run.phase.in_(st.HOLDING))).all())


def queued_runs(db) -> list[Run]:
    """The queue, first come first: runs waiting for admission."""
    return list(db.scalars(select(Run).where(Run.phase == st.QUEUED).order_by(Run.queued_order, Run.id)).all())


def visible_nodes(db, tenant: Tenant) -> list[Node]:
    """Nodes a tenant may run on (``NodeView.allows``): public ones and private ones assigned to it."""
    return [n for n in db.scalars(select(Node).order_by(Node.id)) if node_view(n).allows(tenant.id, None)]


def partitions_of(nodes) -> list[str]:
    return sorted({n.partition for n in nodes if n.partition})


def current_queue_positions(db) -> dict[str, int]:
    """{``{kind}-{id}``: its place} of every queued run (1 = next): one query for a whole list."""
    return queue_positions([run_request(r) for r in queued_runs(db)])


def queue_position(db, run: Run) -> int | None:
    """Where a queued run stands in the queue (1 = next); None once it left the queue."""
    if run.phase != st.QUEUED:
        return None
    return current_queue_positions(db).get(f"{run.kind}-{run.id}")
