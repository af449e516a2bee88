"""The resource view (v2 Resource group): what runs where, for the admin's and the tenant's screens.

Hub-free, on an in-memory SQLite database (``kqi_services.jobs.resources``):
which runs are containers, what nodes and tenants hold, and the exact
models. The seeded world: tenant ``lab`` (quota 4 CPU, 8 GB, no GPU) and
tenant ``other`` (unlimited); a public node ``node-a`` (4 CPU, 16 GB, 2 GPU)
and ``node-b`` private to ``other``; runs in every phase, one on a node that
no longer exists and one on none.

On the real platform: a running training (``sleep 300``) shows in the admin's
nodes, tenants and containers, its details, events and log, and in its
tenant's view; a user of another tenant sees neither it nor its log (404);
non-admins get 403 on the admin paths; a member who did not start it may not
delete it (403); its owner's DELETE, the tenant manager's and an admin's
stop runs (``Killed``) and they leave the lists.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import submit, wait_for, wait_until
from sqlalchemy.pool import StaticPool

from kqi_services import orm
from kqi_services.accounts.users import MANAGER_ROLE_ID
from kqi_services.db import make_engine, make_session_factory
from kqi_services.jobs import resources
from kqi_services.orm import Membership, Node, Run, StorageEndpoint, Tenant, User

# hub-free: the core --------------------------------------------------------------------------------

SUBMITTED = datetime(2024, 5, 1, 9, 0, 0)
STARTED = datetime(2024, 5, 1, 9, 0, 30)


@pytest.fixture
def db():
    engine = make_engine("sqlite://", poolclass=StaticPool)
    orm.Base.metadata.create_all(engine)
    session = make_session_factory(engine)()
    session.add(StorageEndpoint(id=1, name="local", kind="local", server_url="file:///objects", access_key="",
                                secret_key_encrypted=b""))
    session.flush()
    session.add_all([
        Tenant(id=1, name="lab", display_name="Lab", storage_id=1, quota_cpu=4, quota_memory=8, quota_gpu=0),
        Tenant(id=2, name="other", display_name="Other", storage_id=1),
        Node(id=1, name="node-a", memo="the big one", partition="default", access_level=2, cpu=4, memory_gb=16,
             gpu=2),
        Node(id=2, name="node-b", access_level=1, cpu=8, memory_gb=32, gpu=0, assigned_tenant_ids="2",
             tensorboard_enabled=False, notebook_enabled=False),
    ])
    session.flush()
    alice = User(id=1, name="alice")
    alice.memberships.append(Membership(tenant_id=1, is_default=True))
    bob = User(id=2, name="bob")
    bob.memberships.append(Membership(tenant_id=2, is_default=True))
    session.add_all([alice, bob])
    session.flush()

    def run(id, kind, tenant_id, status, phase, node, cpu=1, memory=1, gpu=0, **extra):
        return Run(id=id, kind=kind, tenant_id=tenant_id, user_id=tenant_id, display_id=id, name=f"{kind}-run",
                   entry_point="true", cpu=cpu, memory=memory, gpu=gpu, status=status, phase=phase, node=node,
                   created_by="alice" if tenant_id == 1 else "bob", created_at=SUBMITTED, **extra)

    session.add_all([
        run(1, "training", 1, "Running", "running", "node-a", cpu=2, memory=4, gpu=1, gpu_ids="0",
            started_at=STARTED, partition="default"),
        run(2, "notebook", 2, "Pending", "preparing", "node-a", memory=2,
            condition_note="Preparing: cloning the model and staging the inputs"),
        run(3, "inference", 1, "Running", "running", "gone", started_at=STARTED),
        run(4, "preprocessing", 1, "Pending", "queued", None),
        run(5, "training", 1, "Completed", "ended", "node-a", started_at=STARTED),
        run(6, "training", 2, "Running", "running", "node-b", cpu=3, started_at=STARTED),
        run(7, "training", 1, "Pending", "starting", None),
    ])
    session.commit()
    yield session
    session.close()
    engine.dispose()


def names(models) -> list[str]:
    return [m["name"] for m in models]


def test_containers_are_the_runs_that_hold_resources(db):
    assert names(resources.containers(db)) == ["training-1", "notebook-2", "inference-3", "training-6",
                                               "training-7"]
    assert names(resources.containers(db, tenant_id=2)) == ["notebook-2", "training-6"]
    assert resources.containers(db, tenant_id=1)[0] == {
        "name": "training-1", "createdBy": "alice", "containerType": 1, "conditionNote": None,
        "cpu": 2, "memory": 4, "gpu": 1, "statusType": "Running", "status": "Running", "nodeName": "node-a",
        "tenantId": 1, "tenantName": "lab", "displayName": "Lab",
        "containerTypeName": "Training", "kind": "training", "runId": 1, "displayId": 1, "runName": "training-run",
        "phase": "running", "partition": "default", "gpuIds": [0], "createdAt": "2024-05-01T09:00:00Z",
        "startedAt": "2024-05-01T09:00:30Z",
    }
    notebook = resources.containers(db, tenant_id=2)[0]
    assert (notebook["containerType"], notebook["containerTypeName"], notebook["status"], notebook["statusType"],
            notebook["startedAt"]) == (5, "Notebook", "Pending", "None", None)
    assert notebook["conditionNote"].startswith("Preparing")


def test_find_container_only_in_its_tenant_while_it_holds_resources(db):
    assert resources.find_container(db, 1, "training-1").id == 1
    for tenant_id, name in [(2, "training-1"),  # another tenant's
                            (1, "inference-1"),  # another kind's key
                            (1, "preprocessing-4"),  # queued: holds nothing yet
                            (1, "training-5"),  # ended
                            (1, "training-"), (1, "training-x"), (1, "tensorboard-1"), (1, "training-01x"),
                            (1, "training-" + "9" * 19), (1, "training-" + "9" * 5000), (1, "training-１")]:
        assert resources.find_container(db, tenant_id, name) is None, name


def test_nodes_sum_what_their_containers_hold(db):
    nodes = resources.node_resources(db)
    assert names(nodes) == ["node-a", "node-b", "Unknown:gone", "*Unassigned*"]
    node_a = nodes[0]
    assert {k: v for k, v in node_a.items() if k != "containerResourceList"} == {
        "name": "node-a", "memo": "the big one", "partition": "default", "accessLevel": 2,
        "tensorBoardEnabled": True, "allocatableCpu": 4, "allocatableMemory": 16, "allocatableGpu": 2,
        "assignedCpu": 3, "assignedMemory": 6, "assignedGpu": 1,
        "cpuInfo": "3 / 4.0", "memoryInfo": "6 GB / 16.0 GB", "gpuInfo": "1 / 2.0",
        "id": 1, "accessLevelStr": "Public", "notebookEnabled": True,
    }
    assert names(node_a["containerResourceList"]) == ["training-1", "notebook-2"]
    assert (nodes[1]["assignedCpu"], names(nodes[1]["containerResourceList"])) == (3, ["training-6"])
    gone = nodes[2]
    assert (gone["accessLevel"], gone["allocatableCpu"], gone["assignedCpu"], gone["id"]) == (0, 0, 1, None)
    assert names(gone["containerResourceList"]) == ["inference-3"]
    assert names(nodes[3]["containerResourceList"]) == ["training-7"]


def test_a_tenant_sees_its_nodes_full_but_only_its_own_containers(db):
    lab = db.get(Tenant, 1)
    (node_a,) = resources.node_resources(db, lab)  # node-b is private to other; no Unknown/Unassigned entries
    assert (node_a["name"], node_a["assignedCpu"], node_a["assignedMemory"]) == ("node-a", 3, 6)
    assert names(node_a["containerResourceList"]) == ["training-1"]
    other = resources.node_resources(db, db.get(Tenant, 2))
    assert [(n["name"], names(n["containerResourceList"])) for n in other] == [
        ("node-a", ["notebook-2"]), ("node-b", ["training-6"])]


def test_tenants_show_usage_against_quota(db):
    lab, other = resources.tenant_resources(db)
    assert {k: v for k, v in lab.items() if k != "containerResourceList"} == {
        "id": 1, "name": "lab", "displayName": "Lab",
        "allocatableCpu": 4, "allocatableMemory": 8, "allocatableGpu": 0,
        "assignedCpu": 4, "assignedMemory": 6, "assignedGpu": 1,
        "cpuInfo": "4 / 4.0", "memoryInfo": "6 GB / 8.0 GB", "gpuInfo": "1 / Infinity",
    }
    assert names(lab["containerResourceList"]) == ["training-1", "inference-3", "training-7"]
    assert (other["assignedCpu"], other["cpuInfo"], other["memoryInfo"]) == (4, "4 / Infinity", "3 GB / Infinity")
    assert names(other["containerResourceList"]) == ["notebook-2", "training-6"]


def test_container_types_are_the_contracts_enum():
    assert resources.CONTAINER_TYPES == {0: "Unknown", 1: "Training", 2: "TensorBoard", 3: "Preprocessing",
                                         4: "Inferencing", 5: "Notebook", 6: "DeleteTenant"}


# on the platform -----------------------------------------------------------------------------------

ADMIN_PATHS = ["/admin/resource/nodes", "/admin/resource/tenants", "/admin/resource/containers",
               "/admin/resource/container-types"]


def listed(api, path, name) -> bool:
    return name in names(api.get(path).json())


def logged(api, path, text):
    """The answer of ``path`` once it is a 200 holding ``text``, else None."""
    r = api.get(path)
    return r if r.status_code == 200 and text in r.text else None


def in_nodes(nodes, name) -> list[dict]:
    return [n for n in nodes if name in names(n["containerResourceList"])]


@pytest.mark.platform
def test_a_running_training_in_the_resource_view(platform, admin, lab, new_tenant, new_user):
    api, tenant, owner = lab["api"], lab["tenant"], lab["user"]
    member = new_user([{"id": tenant["id"]}])
    member_api = platform.api().login(member["name"], member["password"])
    manager = new_user([{"id": tenant["id"], "roles": [MANAGER_ROLE_ID]}])
    manager_api = platform.api().login(manager["name"], manager["password"])
    elsewhere = new_tenant()
    stranger = new_user([{"id": elsewhere["id"]}])
    stranger_api = platform.api().login(stranger["name"], stranger["password"])
    first = submit(lab, "echo resource-view-marker; sleep 300")
    second = submit(lab, "sleep 300")
    runs = [first, second]
    try:
        details = wait_for(api, first["id"], statuses=("Running",), timeout=180)
        name, tid = f"training-{first['id']}", tenant["id"]
        admin_path = f"/admin/resource/containers/{tid}/{name}"

        # the admin's containers, its details, log and events
        (container,) = [c for c in admin.get("/admin/resource/containers").json() if c["name"] == name]
        assert {k: container[k] for k in ("tenantId", "tenantName", "createdBy", "containerType", "status",
                                          "statusType", "cpu", "memory", "gpu", "nodeName", "runId", "runName",
                                          "kind")} == {
            "tenantId": tid, "tenantName": tenant["name"], "createdBy": owner["name"], "containerType": 1,
            "status": "Running", "statusType": "Running", "cpu": 1, "memory": 1, "gpu": 0,
            "nodeName": details["node"], "runId": first["id"], "runName": first["name"], "kind": "training"}
        r = admin.get(admin_path)
        assert r.status_code == 200 and r.json()["name"] == name and r.json()["nodeName"] == details["node"]
        log = wait_until(lambda: logged(admin, f"{admin_path}/log", "resource-view-marker"), 60,
                         "the marker in the container's log")
        assert log.headers["Content-Type"].startswith("text/plain")
        assert admin.get(f"{admin_path}/events").status_code == 200
        assert {"id": 1, "name": "Training"} in admin.get("/admin/resource/container-types").json()

        # the admin's nodes and tenants: it is counted where it runs and in its tenant
        (node,) = in_nodes(admin.get("/admin/resource/nodes").json(), name)
        assert node["name"] == details["node"]
        assert node["assignedCpu"] == sum(c["cpu"] for c in node["containerResourceList"]) >= 1
        assert node["assignedMemory"] == sum(c["memory"] for c in node["containerResourceList"]) >= 1
        wait_for(api, second["id"], statuses=("Running",), timeout=180)
        (usage,) = [t for t in admin.get("/admin/resource/tenants").json() if t["id"] == tid]
        assert (usage["assignedCpu"], usage["assignedMemory"], usage["assignedGpu"]) == (2, 2, 0)
        assert sorted(names(usage["containerResourceList"])) == sorted([name, f"training-{second['id']}"])
        assert usage["cpuInfo"] == "2 / Infinity"  # the tenant's quota is unlimited

        # its tenant's view
        assert listed(api, "/tenant/resource/containers", name)
        assert api.get(f"/tenant/resource/containers/{name}").json()["status"] == "Running"
        assert in_nodes(api.get("/tenant/resource/nodes").json(), name)
        assert "resource-view-marker" in member_api.get(f"/tenant/resource/containers/{name}/log").text

        # another tenant sees neither it nor its log; admin paths are for admins
        assert stranger_api.get("/tenant/resource/containers").json() == []
        assert not in_nodes(stranger_api.get("/tenant/resource/nodes").json(), name)
        for path in (f"/tenant/resource/containers/{name}", f"/tenant/resource/containers/{name}/log"):
            assert stranger_api.get(path).status_code == 404, path
        assert stranger_api.delete(f"/tenant/resource/containers/{name}").status_code == 404
        for caller in (api, stranger_api):
            for path in ADMIN_PATHS + [admin_path, f"{admin_path}/log", f"{admin_path}/events"]:
                assert caller.get(path).status_code == 403, path
            assert caller.delete(admin_path).status_code == 403
        assert admin.get(f"/admin/resource/containers/{elsewhere['id']}/{name}").status_code == 404

        # a member who did not start it may not stop it; its owner may
        assert member_api.delete(f"/tenant/resource/containers/{name}").status_code == 403
        assert api.delete(f"/tenant/resource/containers/{name}").status_code == 204
        assert wait_for(api, first["id"], timeout=60)["status"] == "Killed"
        assert not listed(admin, "/admin/resource/containers", name)
        assert not listed(api, "/tenant/resource/containers", name)
        assert not in_nodes(admin.get("/admin/resource/nodes").json(), name)
        assert api.get(f"/tenant/resource/containers/{name}").status_code == 404
        assert admin.get(admin_path).status_code == 404

        # the tenant's manager stops another member's container; an admin one of any tenant
        assert manager_api.delete(f"/tenant/resource/containers/training-{second['id']}").status_code == 204
        third = submit(lab, "sleep 300")
        runs.append(third)
        wait_for(api, third["id"], statuses=("Running",), timeout=180)
        assert admin.delete(f"/admin/resource/containers/{tid}/training-{third['id']}").status_code == 204
        assert wait_for(api, second["id"], timeout=60)["status"] == "Killed"
        assert wait_for(api, third["id"], timeout=60)["status"] == "Killed"
        (usage,) = [t for t in admin.get("/admin/resource/tenants").json() if t["id"] == tid]
        assert (usage["assignedCpu"], usage["containerResourceList"]) == (0, [])
    finally:
        for run in runs:
            if api.get(f"/training/{run['id']}").json()["status"] in ("Pending", "Running"):
                api.post(f"/training/{run['id']}/halt")
