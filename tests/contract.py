"""The KAMONOHASHI API v2 contract as tests walk it.

``tests/contract/kamonohashi-api-v2.swagger.json`` is a copy of the original
server's swagger file (the design's ``reference/`` copy; CI runs on a clean
clone without it). This module loads it, lists its operations with their
parameters and resolved body schemas, walks a body schema's fields, builds
a minimal body from a schema, and fills a path template.

``PLATFORM_ADDITIONS`` holds, in the contract's own format, the id-taking
routes this platform adds beyond the contract (the run log and copy-run,
the spawner's internal API), so the isolation matrix covers them too.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

CONTRACT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract", "kamonohashi-api-v2.swagger.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MISSING = object()


def _path_param(name="id", type_="integer") -> dict:
    return {"in": "path", "name": name, "required": True, "type": type_}


PLATFORM_ADDITIONS: dict[str, dict] = {
    # the live log of a run (text; ?offset= for the bytes after it)
    **{f"/api/v2/{kind}/{{id}}/log": {"get": {"parameters": [
        _path_param(), {"in": "query", "name": "offset", "type": "integer"}]}} for kind in ("training", "notebook")},
    # a new run with an existing run's settings, the body's fields winning
    "/api/v2/training/{id}/copy-run": {"post": {"parameters": [
        _path_param(), {"in": "body", "name": "body", "schema": {"type": "object"}}]}},
    # the API of the hub's notebook spawner: the service's own token only (401 to anyone else)
    "/api/v2/internal/notebooks/{id}": {"get": {"x-refused": [401], "parameters": [_path_param()]}},
    "/api/v2/internal/notebooks/{id}/spawn": {"post": {"x-refused": [401], "parameters": [
        _path_param(), {"in": "body", "name": "body", "schema": {"type": "object"}}]}},
    "/api/v2/internal/notebooks/{id}/stop": {"post": {"x-refused": [401], "parameters": [_path_param()]}},
}


@functools.cache
def _load_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def load(with_additions: bool = False) -> dict:
    """The swagger document (a fresh copy each call: callers may change it)."""
    spec = json.loads(_load_file(CONTRACT_PATH))
    if with_additions:
        spec["paths"].update(copy.deepcopy(PLATFORM_ADDITIONS))
    return spec


@dataclass(frozen=True)
class Operation:
    """One method of one path of the contract."""

    method: str
    path: str
    spec: dict
    definitions: dict

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def parameters(self) -> list[dict]:
        return self.spec.get("parameters", [])

    def params_in(self, where: str) -> list[dict]:
        return [p for p in self.parameters if p.get("in") == where]

    @property
    def path_params(self) -> list[str]:
        return [p["name"] for p in self.params_in("path")]

    @property
    def body_schema(self) -> dict | None:
        body = self.params_in("body")
        return resolve(body[0]["schema"], self.definitions) if body else None

    @property
    def resource(self) -> str:
        """What the path is about: its first segment after /api/v2 (two for admin/… and tenant/…)."""
        segments = [s for s in self.path.removeprefix("/api/v2/").split("/") if s]
        if segments and segments[0] in ("admin", "tenant", "account", "internal") and len(segments) > 1 \
                and not segments[1].startswith("{"):
            return "/".join(segments[:2])
        return segments[0] if segments else ""

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/api/v2/admin/")


def operations(with_additions: bool = False) -> list[Operation]:
    """Every (method, path) of the contract, in the file's order."""
    spec = load(with_additions)
    found = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                op = dict(item[method])
                op["parameters"] = shared + op.get("parameters", [])
                found.append(Operation(method, path, op, spec.get("definitions", {})))
    return found


def resolve(schema: dict, definitions: dict, _seen: tuple = ()) -> dict:
    """``schema`` with every ``$ref`` replaced by its definition (a recursive one becomes ``{}``)."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in _seen:
            return {}
        return resolve(definitions[name], definitions, _seen + (name,))
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: resolve(v, definitions, _seen) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = resolve(value, definitions, _seen)
        else:
            out[key] = value
    return out


def fields(schema: dict | None, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every field below a resolved schema as (path, schema): ``a.b``, ``a[]`` for items, ``a.*`` for map values."""
    if not schema:
        return
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield prefix + "[]", schema["items"]
        yield from fields(schema["items"], prefix + "[]")
    elif isinstance(schema.get("additionalProperties"), dict):
        yield prefix + ".*", schema["additionalProperties"]
        yield from fields(schema["additionalProperties"], prefix + ".*")
    for name, sub in (schema.get("properties") or {}).items():
        here = f"{prefix}.{name}" if prefix else name
        yield here, sub
        yield from fields(sub, here)


def build(schema: dict | None, value_for: Callable[[str, dict], Any], prefix: str = "",
          include: Callable[[str], bool] = lambda path: False) -> Any:
    """A minimal instance of a resolved schema.

    ``value_for(path, schema)`` gives a field's value (paths as ``fields``
    names them), or ``MISSING``; an object gets its required fields, every
    field ``value_for`` knows and every field ``include(path)`` asks for; a
    map gets one key, ``training``.
    """
    if schema is None:
        return None
    given = value_for(prefix, schema) if prefix else MISSING
    if given is not MISSING:
        return given
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        return [build(items, value_for, f"{prefix}[]", include)]
    if kind == "object" or "properties" in schema or "additionalProperties" in schema:
        if isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
            return {"training": build(schema["additionalProperties"], value_for, f"{prefix}.*", include)}
        required = set(schema.get("required", []))
        out = {}
        for name, sub in (schema.get("properties") or {}).items():
            here = f"{prefix}.{name}" if prefix else name
            if name in required or include(here) or value_for(here, sub) is not MISSING:
                out[name] = build(sub, value_for, here, include)
        return out
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1, "boolean": False, "string": "x"}.get(kind, "x")


def fill(path: str, values: dict[str, Any]) -> str:
    """A path template with its ``{name}`` parameters replaced by URL-quoted values."""
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path
