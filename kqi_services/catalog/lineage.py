"""Lineage: the graph of what made what, around any data, dataset or run of a tenant.

Nodes are ``{type}:{id}``: ``data``, ``dataset``, ``training``,
``inference``, ``notebook`` and ``preprocessing`` (a history: the run that
processed one data). Edges point from what was used to what used it or
came of it:

| edge | from → to |
|---|---|
| ``input`` | data → the preprocessing history that processed it |
| ``output`` | preprocessing history → each data it produced |
| ``member`` | data → dataset (``dataType``: training/validation/testing, or none when flat) |
| ``dataset`` | dataset → the training, inference or notebook that used it |
| ``parent`` | parent run → the run that mounted it at /kqi/parent |

``graph`` walks both directions from the root up to ``depth`` steps, in
the root's tenant only, and stops at ``MAX_NODES`` (``truncated`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from kqi_services.errors import InvalidInput, NotFound
from kqi_services.orm import Data, DataSet, DataSetEntry, DataType, Preprocessing, Run, RunParent, Tenant

RUN_TYPES = ("training", "inference", "notebook", "preprocessing")
TYPES = ("data", "dataset", *RUN_TYPES)
MAX_DEPTH = 5
MAX_NODES = 500


@dataclass
class Graph:
    root: str
    nodes: dict[str, dict] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    truncated: bool = False

    def model(self) -> dict:
        return {"root": self.root, "nodes": list(self.nodes.values()), "edges": list(self.edges.values()),
                "truncated": self.truncated}


def key(node_type: str, node_id: int) -> str:
    return f"{node_type}:{node_id}"


class Lineage:
    """Reads one tenant's rows; each ``neighbours`` call is a few indexed queries."""

    def __init__(self, db, tenant: Tenant):
        self.db, self.tenant = db, tenant
        self._data_types = {t.id: t.name for t in db.scalars(select(DataType))}

    # nodes ----------------------------------------------------------------------------------
    def node(self, node_type: str, node_id: int) -> dict | None:
        """The node's fields, or None when it is not this tenant's (or not that type)."""
        if node_type == "data":
            row = self.db.get(Data, node_id)
            return None if row is None or row.tenant_id != self.tenant.id else self.data_node(row)
        if node_type == "dataset":
            row = self.db.get(DataSet, node_id)
            return None if row is None or row.tenant_id != self.tenant.id else self.dataset_node(row)
        run = self.db.get(Run, node_id)
        if run is None or run.tenant_id != self.tenant.id or run.kind != node_type:
            return None
        return self.run_node(run)

    @staticmethod
    def data_node(data: Data) -> dict:
        return {"key": key("data", data.id), "type": "data", "id": data.id, "name": data.name}

    @staticmethod
    def dataset_node(dataset: DataSet) -> dict:
        return {"key": key("dataset", dataset.id), "type": "dataset", "id": dataset.id, "name": dataset.name}

    def run_node(self, run: Run) -> dict:
        node = {"key": key(run.kind, run.id), "type": run.kind, "id": run.id, "name": run.name, "status": run.status}
        if run.kind == "preprocessing":
            pre = self.db.get(Preprocessing, run.preprocessing_id) if run.preprocessing_id else None
            node.update(preprocessId=run.preprocessing_id, dataId=run.input_data_id,
                        name=pre.name if pre else run.name)
        return node

    # edges ----------------------------------------------------------------------------------
    def neighbours(self, node: dict) -> list[tuple[dict, dict]]:
        """(neighbour node, edge) of every edge touching ``node``, both directions."""
        kind, node_id, here = node["type"], node["id"], node["key"]
        found: list[tuple[dict, dict]] = []

        def edge(src: str, dst: str, relation: str, **extra) -> dict:
            return {"from": src, "to": dst, "relation": relation, **extra}

        tenant_runs = select(Run).where(Run.tenant_id == self.tenant.id)
        if kind == "data":
            data = self.db.get(Data, node_id)
            if data.produced_by_run_id is not None:
                maker = self.db.get(Run, data.produced_by_run_id)
                if maker is not None and maker.tenant_id == self.tenant.id:
                    found.append((self.run_node(maker), edge(key("preprocessing", maker.id), here, "output")))
            for run in self.db.scalars(tenant_runs.where(Run.input_data_id == node_id)):
                found.append((self.run_node(run), edge(here, key("preprocessing", run.id), "input")))
            rows = self.db.execute(select(DataSet, DataSetEntry.data_type_id).join(
                DataSetEntry, DataSetEntry.dataset_id == DataSet.id).where(
                DataSetEntry.data_id == node_id, DataSet.tenant_id == self.tenant.id)).all()
            for dataset, type_id in rows:
                found.append((self.dataset_node(dataset), edge(here, key("dataset", dataset.id), "member",
                                                               dataType=self._data_types.get(type_id))))
        elif kind == "dataset":
            rows = self.db.execute(select(Data, DataSetEntry.data_type_id).join(
                DataSetEntry, DataSetEntry.data_id == Data.id).where(DataSetEntry.dataset_id == node_id)).all()
            for data, type_id in rows:
                found.append((self.data_node(data), edge(key("data", data.id), here, "member",
                                                         dataType=self._data_types.get(type_id))))
            for run in self.db.scalars(tenant_runs.where(Run.dataset_id == node_id)):
                found.append((self.run_node(run), edge(here, key(run.kind, run.id), "dataset")))
        elif kind == "preprocessing":
            run = self.db.get(Run, node_id)
            source = self.db.get(Data, run.input_data_id) if run.input_data_id else None
            if source is not None:
                found.append((self.data_node(source), edge(key("data", source.id), here, "input")))
            for data in self.db.scalars(select(Data).where(Data.produced_by_run_id == node_id)):
                found.append((self.data_node(data), edge(here, key("data", data.id), "output")))
        else:
            run = self.db.get(Run, node_id)
            if run.dataset_id is not None:
                dataset = self.db.get(DataSet, run.dataset_id)
                if dataset is not None:
                    found.append((self.dataset_node(dataset), edge(key("dataset", dataset.id), here, "dataset")))
            for link in run.parents:
                parent = self.db.get(Run, link.parent_id)
                if parent is not None:
                    found.append((self.run_node(parent), edge(key(parent.kind, parent.id), here, "parent")))
            children = select(Run).join(RunParent, RunParent.run_id == Run.id).where(
                RunParent.parent_id == node_id, Run.tenant_id == self.tenant.id)
            for child in self.db.scalars(children):
                found.append((self.run_node(child), edge(here, key(child.kind, child.id), "parent")))
        return found


def graph(db, tenant: Tenant, node_type: str, node_id: int, depth: int = 2) -> Graph:
    """The lineage around one node, ``depth`` steps each way (breadth first); NotFound outside the tenant."""
    if node_type not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}")
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be 1 to {MAX_DEPTH}")
    lineage = Lineage(db, tenant)
    root = lineage.node(node_type, node_id)
    if root is None:
        raise NotFound(f"No {node_type} {node_id} in this tenant")
    result = Graph(root["key"], {root["key"]: root})
    frontier = [root]
    for _ in range(depth):
        following = []
        for node in frontier:
            for neighbour, edge in lineage.neighbours(node):
                result.edges[(edge["from"], edge["to"], edge["relation"])] = edge
                if neighbour["key"] in result.nodes:
                    continue
                if len(result.nodes) >= MAX_NODES:
                    result.truncated = True
                    continue
                result.nodes[neighbour["key"]] = neighbour
                following.append(neighbour)
        frontier = following
    # edges to nodes left out by the cap are dropped, so every edge joins two listed nodes
    result.edges = {k: e for k, e in result.edges.items() if e["from"] in result.nodes and e["to"] in result.nodes}
    return result
