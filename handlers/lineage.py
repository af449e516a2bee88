"""Lineage API (added to the contract): ``GET /api/v2/lineage?type=data&id=12&depth=2``.

The graph around any data, dataset, training, inference, notebook or
preprocessing history of the caller's tenant (``catalog.lineage``): what
made it and what it was used for, both directions, ``depth`` steps (1-5).
"""

from __future__ import annotations

from kqi_services import validation as v
from kqi_services.catalog import lineage
from kqi_services.errors import InvalidInput

from .base import APIHandler


class LineageHandler(APIHandler):
    def get(self):
        node_type = self.get_query_argument("type", "")
        node_id = v.path_id(self.get_query_argument("id", ""), "id")
        depth_text = self.get_query_argument("depth", "2")
        if not depth_text.isdigit():
            raise InvalidInput("depth must be an integer from 1 to 5")
        graph = lineage.graph(self.db, self.require_tenant(), node_type, node_id, int(depth_text))
        self.write_json(graph.model())


default_handlers = [(r"api/v2/lineage", LineageHandler)]
