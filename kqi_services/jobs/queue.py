"""What the scheduler sees of the database: queued runs as requests, nodes with what holds them."""

from __future__ import annotations

from sqlalchemy import select

from kqi_services.jobs.scheduler import JobRequest, NodeView, Resources, queue_positions

from ..orm import Node, Run
from . import status as st


def run_request(run: Run) -> JobRequest:
    return JobRequest(f"{run.kind}-{run.id}", run.tenant_id, Resources(run.cpu, run.memory, run.gpu),
                      run.partition, run.queued_order or run.id)


def node_views(db, holding: list) -> list[NodeView]:
    """Nodes with what ``holding`` (running runs, notebooks) already takes from them."""
    views = {}
    for n in db.scalars(select(Node).order_by(Node.id)):
        tenant_ids = frozenset(int(t) for t in n.assigned_tenant_ids.split(",") if t)
        views[n.name] = NodeView(n.name, n.partition, Resources(n.cpu, n.memory_gb, n.gpu),
                                 access_level=n.access_level, tenant_ids=tenant_ids)
    for held in holding:
        view = views.get(held.node)
        if view is not None:
            view.used = view.used + Resources(held.cpu, held.memory, held.gpu)
            view.gpu_ids_in_use |= {int(g) for g in held.gpu_ids.split(",") if g}
    return list(views.values())


def queue_position(db, run: Run) -> int | None:
    """Where a pending run stands in the queue (1 = next); None once it left the queue."""
    if run.status != st.PENDING:
        return None
    pending = db.scalars(select(Run).where(Run.status == st.PENDING)).all()
    return queue_positions([run_request(r) for r in pending]).get(f"{run.kind}-{run.id}")
