"""The admission rules of the job queue, without a hub: quotas, partitions, GPUs, FIFO and round-robin."""

from kqi_services.jobs.scheduler import PRIVATE, JobRequest, NodeView, Resources, plan, queue_positions, refusal


def node(name="n1", cpu=4, memory=16, gpu=0, partition="default", **kw):
    return NodeView(name, partition, Resources(cpu, memory, gpu), **kw)


def job(jid, tenant=1, cpu=1, memory=1, gpu=0, partition=None, order=None):
    return JobRequest(jid, tenant, Resources(cpu, memory, gpu), partition, order if order is not None else int(jid[1:]))


def test_refusal_at_submit():
    nodes = [node(cpu=4, memory=16, gpu=2), node("cpuonly", cpu=8, memory=8, partition="cpu")]
    assert refusal(job("j1", cpu=2), nodes, Resources()) is None
    assert "largest" in refusal(job("j1", cpu=64), nodes, Resources())
    assert "No node could ever hold" in refusal(job("j1", gpu=3), nodes, Resources())
    assert "gpu 1" in refusal(job("j1", gpu=1, partition="cpu"), nodes, Resources())
    assert "partition 'nope'" in refusal(job("j1", partition="nope"), nodes, Resources())
    assert "quota" in refusal(job("j1", cpu=3), nodes, Resources(cpu=2))
    assert refusal(job("j1", cpu=3), nodes, Resources(cpu=0, memory=4)) is None
    assert "at least 1" in refusal(job("j1", cpu=0), nodes, Resources())
    private = [node(access_level=PRIVATE, tenant_ids=frozenset({7}))]
    assert refusal(job("j1", tenant=1), private, Resources()) is not None
    assert refusal(job("j1", tenant=7), private, Resources()) is None


def test_fifo_within_a_tenant_and_capacity():
    n = node(cpu=2, memory=16)
    pending = [job("j1", cpu=2), job("j2", cpu=1), job("j3", cpu=1)]
    first = plan(pending, [n], {}, {})
    assert [a.job_id for a in first] == ["j1"]
    # j2 waits behind the full node; a later small job of the same tenant does not overtake it
    n2 = node(cpu=2, memory=16, used=Resources(1, 1, 0))
    assert [a.job_id for a in plan([job("j4", cpu=2), job("j5", cpu=1)], [n2], {}, {})] == []


def test_round_robin_between_tenants_that_fit():
    nodes = [node(cpu=4, memory=16)]
    pending = [job("j1", tenant=1), job("j2", tenant=1), job("j3", tenant=1), job("j4", tenant=1),
               job("j5", tenant=2), job("j6", tenant=2)]
    got = plan(pending, nodes, {}, {})
    assert [(a.job_id, a.tenant_id) for a in got] == [("j1", 1), ("j5", 2), ("j2", 1), ("j6", 2)]
    # next time the round starts after the tenant served last
    again = plan([job("j7", tenant=1), job("j8", tenant=2)], [node(cpu=1)], {}, {}, last_tenant=1)
    assert [a.job_id for a in again] == ["j8"]


def test_quota_holds_a_tenant_but_not_others():
    nodes = [node(cpu=8, memory=32)]
    quotas = {1: Resources(cpu=2)}
    usage = {1: Resources(cpu=2, memory=2)}
    got = plan([job("j1", tenant=1), job("j2", tenant=2)], nodes, quotas, usage)
    assert [a.job_id for a in got] == ["j2"]


def test_gpus_are_whole_devices_given_once():
    n = node(cpu=8, memory=32, gpu=2)
    got = plan([job("j1", gpu=1), job("j2", gpu=1), job("j3", gpu=1)], [n], {}, {})
    assert [a.gpu_ids for a in got] == [(0,), (1,)]
    n3 = node(cpu=8, memory=32, gpu=4, gpu_ids_in_use={0, 2}, used=Resources(0, 0, 2))
    assert plan([job("j9", gpu=2)], [n3], {}, {})[0].gpu_ids == (1, 3)


def test_partitions_and_best_fit():
    big, small = node("big", cpu=16, memory=64), node("small", cpu=2, memory=8)
    got = plan([job("j1", cpu=2)], [big, small], {}, {})
    assert got[0].node == "small"
    gpu = node("gpu", cpu=4, memory=16, gpu=1, partition="gpu")
    got = plan([job("j2", partition="gpu")], [big, gpu], {}, {})
    assert got[0].node == "gpu"


def test_queue_positions_follow_submission_order():
    assert queue_positions([job("j3"), job("j1"), job("j2", tenant=2)]) == {"j1": 1, "j2": 2, "j3": 3}
