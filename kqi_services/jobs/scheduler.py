"""Admission decisions of the job queue: quotas, partitions, nodes and GPUs, as pure functions.

A job (or a notebook) asks for whole CPU cores, GB of memory and whole GPUs,
optionally on one partition. It is admitted when its tenant's quota (0 =
unlimited) and one node that the tenant may use have room; GPUs are whole
devices given to one job at a time. Waiting jobs are served FIFO within a
tenant (a tenant's later job never overtakes its first) and round-robin
between the tenants whose first job fits. No I/O here: the engine builds the
views from the database and applies the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC, PRIVATE, DISABLED = 2, 1, 0


@dataclass(frozen=True)
class Resources:
    cpu: int = 0
    memory: int = 0
    gpu: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.gpu - other.gpu)

    def within(self, limit: Resources) -> bool:
        """Each amount is at most the limit's; a limit of 0 means unlimited (a quota)."""
        return all(limit_value == 0 or value <= limit_value for value, limit_value in
                   ((self.cpu, limit.cpu), (self.memory, limit.memory), (self.gpu, limit.gpu)))

    def fits_in(self, free: Resources) -> bool:
        return self.cpu <= free.cpu and self.memory <= free.memory and self.gpu <= free.gpu


@dataclass
class NodeView:
    """A node's capacity and what running jobs and notebooks already hold on it."""

    name: str
    partition: str | None
    capacity: Resources
    used: Resources = field(default_factory=Resources)
    gpu_ids_in_use: set[int] = field(default_factory=set)
    access_level: int = PUBLIC
    tenant_ids: frozenset[int] = frozenset()

    def allows(self, tenant_id: int, partition: str | None) -> bool:
        if self.access_level == DISABLED:
            return False
        if self.access_level == PRIVATE and tenant_id not in self.tenant_ids:
            return False
        return partition in (None, "") or self.partition == partition

    @property
    def free(self) -> Resources:
        return self.capacity - self.used

    def free_gpu_ids(self) -> list[int]:
        return [i for i in range(self.capacity.gpu) if i not in self.gpu_ids_in_use]

    def take(self, request: Resources) -> list[int]:
        gpus = self.free_gpu_ids()[: request.gpu]
        self.used = self.used + request
        self.gpu_ids_in_use |= set(gpus)
        return gpus


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    tenant_id: int
    resources: Resources
    partition: str | None
    order: int  # submission order: smaller first


@dataclass(frozen=True)
class Assignment:
    job_id: str
    tenant_id: int
    node: str
    gpu_ids: tuple[int, ...]


def refusal(request: JobRequest, nodes: list[NodeView], quota: Resources) -> str | None:
    """Why a request can never run (checked at submit), or None when it could."""
    r = request.resources
    if r.cpu < 1 or r.memory < 1 or r.gpu < 0:
        return "cpu and memory must be at least 1 and gpu at least 0"
    if not r.within(quota):
        return (f"The request (cpu {r.cpu}, memory {r.memory} GB, gpu {r.gpu}) is above the tenant's quota "
                f"(cpu {quota.cpu or 'unlimited'}, memory {quota.memory or 'unlimited'}, "
                f"gpu {quota.gpu or 'unlimited'})")
    usable = [n for n in nodes if n.allows(request.tenant_id, request.partition)]
    if not usable:
        where = f"in partition {request.partition!r}" if request.partition else "for this tenant"
        return f"No node is available {where}"
    if not any(r.fits_in(n.capacity) for n in usable):
        biggest = max(usable, key=lambda n: (n.capacity.gpu, n.capacity.cpu, n.capacity.memory)).capacity
        return (f"No node could ever hold cpu {r.cpu}, memory {r.memory} GB, gpu {r.gpu} "
                f"(the largest has cpu {biggest.cpu}, memory {biggest.memory} GB, gpu {biggest.gpu})")
    return None


def plan(pending: list[JobRequest], nodes: list[NodeView], quotas: dict[int, Resources],
         usage: dict[int, Resources], last_tenant: int | None = None) -> list[Assignment]:
    """The jobs to start now, and where. ``nodes`` and ``usage`` are updated as if they started.

    ``last_tenant`` is the tenant served last time, so the round-robin goes on
    from the next one.
    """
    queues: dict[int, list[JobRequest]] = {}
    for job in sorted(pending, key=lambda j: j.order):
        queues.setdefault(job.tenant_id, []).append(job)
    tenants = sorted(queues)
    if last_tenant is not None:
        later = [t for t in tenants if t > last_tenant]
        tenants = later + [t for t in tenants if t <= last_tenant]
    assignments: list[Assignment] = []
    progress = True
    while progress:
        progress = False
        for tenant in tenants:
            queue = queues[tenant]
            if not queue:
                continue
            job = queue[0]
            if not (usage.get(tenant, Resources()) + job.resources).within(quotas.get(tenant, Resources())):
                continue
            node = best_node(job, nodes)
            if node is None:
                continue
            gpus = node.take(job.resources)
            usage[tenant] = usage.get(tenant, Resources()) + job.resources
            assignments.append(Assignment(job.job_id, tenant, node.name, tuple(gpus)))
            queue.pop(0)
            progress = True
    return assignments


def best_node(job: JobRequest, nodes: list[NodeView]) -> NodeView | None:
    """The fitting node that leaves the least room (keeps big nodes free for big jobs)."""
    fitting = [n for n in nodes if n.allows(job.tenant_id, job.partition) and job.resources.fits_in(n.free)]
    if not fitting:
        return None
    return min(fitting, key=lambda n: (n.free.gpu - job.resources.gpu, n.free.cpu, n.free.memory, n.name))


def queue_positions(pending: list[JobRequest]) -> dict[str, int]:
    """1-based place of each waiting job in submission order."""
    return {job.job_id: i for i, job in enumerate(sorted(pending, key=lambda j: j.order), start=1)}
