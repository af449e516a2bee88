"""Tenant isolation walked from the contract: tenant B calls every id-taking operation with tenant A's ids.

Two tenants, A and B, each get one of every kind of thing a tenant owns
(data with a file and a tag, a dataset, a training with an attached file, a
halted notebook, a private git endpoint and registry, a tenant role) and two
users (a plain member and a manager). Then, for every operation of the
contract (plus the routes the platform adds, ``contract.PLATFORM_ADDITIONS``):

- **path**: its path parameters that name a tenant-owned thing get A's ids
  (``PARAM_KINDS`` maps a parameter, per resource, to a kind of thing); the
  body is built from the contract's schema with B's own values. B must be
  refused with 403 or 404.
- **body** / **query**: each body field or query parameter that refers to a
  thing (``BODY_REFS``, ``QUERY_REFS``) gets A's id while everything else is
  B's own; B must get a 4xx (A's dataset in B's training, A's upload in B's
  data...).
- **filter**: list filters (``FILTER_REFS``) set to A's ids; any answer
  below 500 will do.
- **admin**: every ``/api/v2/admin/...`` operation, called by B's users, is 403.

``KQI_MATRIX_REPORT=FILE`` writes every case's answer there as JSON.
No answer may carry A's names or bytes (a 2xx's URLs are fetched and checked
too), and a 5xx is never held. A path the platform does not implement answers
404 (405 for a method), which holds. Afterwards A sees its things unchanged.
A new endpoint of the contract is covered without editing this file; a new
path parameter name fails ``test_every_path_parameter_has_a_meaning`` until
it is mapped. The figures (tried / held) are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import contract
import pytest
import requests
from conftest import Api, unique, upload, wait_until

pytestmark = pytest.mark.platform

OPERATIONS = contract.operations(with_additions=True)
ABSENT = 2147483000  # an id nothing has: admin paths whose thing B's tenant cannot own

# what a path parameter names: {(resource, name): kind}, ("*", name) for every resource
PARAM_KINDS = {
    ("data", "id"): "data", ("datasets", "id"): "dataset", ("aquarium", "id"): "dataset",
    ("training", "id"): "training", ("notebook", "id"): "notebook", ("internal/notebooks", "id"): "notebook",
    ("inferences", "id"): "inference", ("preprocessings", "id"): "preprocessing", ("experiment", "id"): "experiment",
    ("tenant/users", "id"): "user", ("tenant/roles", "id"): "role",
    ("admin/users", "id"): "user", ("admin/tenants", "id"): "tenant", ("admin/git", "id"): "git",
    ("admin/registry", "id"): "registry", ("admin/roles", "id"): "role",
    ("data", "fileId"): "data_file", ("data", "name"): "data_file_name",
    ("training", "fileId"): "run_file", ("training", "name"): "run_file_name",
    ("inferences", "fileId"): "run_file", ("inferences", "name"): "run_file_name",
    ("tenant/resource", "name"): "container", ("admin/resource", "name"): "container",
    ("git", "segments"): "git_segments", ("registries", "segments"): "image",
    ("*", "tag"): "tag", ("*", "dataId"): "data", ("*", "tenantId"): "tenant", ("*", "gitId"): "git",
    ("*", "registryId"): "registry", ("*", "owner"): "git_owner", ("*", "repositoryName"): "git_repository",
    ("*", "commitId"): "git_commit", ("*", "image"): "image",
    ("*", "versionId"): "training", ("*", "evaluationId"): "training",
}
# path parameters that name no tenant's thing (why)
NOT_TENANT_OWNED = {
    ("tenant/menus", "id"): "menu ids are the platform's, the same in every tenant",
}
# body fields that refer to a thing: {(resource, field path): kind}; an array field gets [id]
BODY_REFS = {
    ("*", "dataSetId"): "dataset", ("*", "parentIds"): "training", ("*", "inferenceIds"): "inference",
    ("*", "entries.*[].id"): "data", ("*", "flatEntries[].id"): "data", ("*", "dataId"): "data",
    ("*", "files[].storedPath"): "stored_path", ("*", "storedPath"): "stored_path",
    ("*", "gitModel.gitId"): "git", ("*", "containerImage.registryId"): "registry",
    ("*", "selectedHistoryIds"): "training", ("training", "id"): "training",
    ("account/gits", "id"): "git", ("account/registries", "id"): "registry",
}
# what a body needs for its target field to count: {target: {field: value}}, and B's thing in the path
TARGET_NEEDS = {"flatEntries[].id": {"isFlat": True}}
TARGET_SPARES = {"flatEntries[].id": {"dataset": "flat_dataset"}}  # PUT reads flatEntries of a flat one only
QUERY_REFS = {"storedPath": "stored_path"}
FILTER_REFS = {"Id": None, "ParentId": "training", "ParentInferenceId": "inference", "tag": "tag", "Tags": "tag"}
# B's own values for fields a valid body needs (by the field's last name)
DEFAULTS = {"name": lambda: unique("b"), "displayName": "B", "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0,
            "expiresIn": 3600, "image": "python", "tag": "3.11", "owner": "kqi", "repository": "model",
            "fileName": "b.txt", "tags[]": "b-tag", "memo": "b", "sortOrder": 9, "type": "Data", "partSum": 1,
            "path": "/"}
# B's own thing in the path of a body/query case, where the usual one would refuse for another reason
OWN_SPARES = {"dataset": "spare_dataset"}  # B's dataset that no run used (so PUT may change its entries)
# stand-ins for kinds no tenant can have yet (the run table is shared by every kind of run); used in paths
# only: a body field of such a kind (inferenceIds) is not tried, as a 2xx would not tell a leak from a skip
STAND_INS = {"inference": "training", "preprocessing": "training", "experiment": "training"}

# cases that fail for a server bug not yet fixed: {case id: reason} (xfail, strict)
KNOWN_BUGS: dict[str, str] = {}


def param_kind(resource: str, name: str) -> str | None:
    return PARAM_KINDS.get((resource, name)) or PARAM_KINDS.get(("*", name))


def ref_kind(resource: str, path: str) -> str | None:
    return BODY_REFS.get((resource, path)) or BODY_REFS.get(("*", path))


@dataclass(frozen=True)
class Case:
    """One request of the matrix: an operation, what carries A's id, who calls."""

    op: contract.Operation
    kind: str  # path, body, query, filter, admin
    target: str = ""  # the body field or query parameter carrying A's id
    caller: str = "member"

    @property
    def id(self) -> str:
        where = f" {self.target}" if self.target else ""
        return f"{self.kind}{where}: {self.op.id} as {self.caller}"


def derive_cases() -> list[Case]:
    cases = []
    for op in OPERATIONS:
        for caller in ("member", "manager"):
            if op.is_admin:
                cases.append(Case(op, "admin", caller=caller))
                continue
            if any(param_kind(op.resource, p) for p in op.path_params):
                cases.append(Case(op, "path", caller=caller))
            for path, _ in contract.fields(op.body_schema):
                if ref_kind(op.resource, path) and ref_kind(op.resource, path) not in STAND_INS:
                    cases.append(Case(op, "body", path, caller))
            for p in op.params_in("query"):
                if p["name"] in QUERY_REFS:
                    cases.append(Case(op, "query", p["name"], caller))
            if any(p["name"] in FILTER_REFS for p in op.params_in("query")):
                cases.append(Case(op, "filter", caller=caller))
    return cases


CASES = derive_cases()


# the two tenants ---------------------------------------------------------------------------------------------


@dataclass
class TenantWorld:
    """A tenant with one of every kind of thing, its users' clients, and the strings only it may see."""

    label: str
    ids: dict
    member: Api
    manager: Api
    markers: list = field(default_factory=list)

    def value(self, kind: str):
        return self.ids[STAND_INS.get(kind, kind)]

    def halt_active_runs(self):
        """Halt and wait out this tenant's Pending or Running trainings and notebooks."""
        for kind in ("training", "notebook"):
            for run in self.member.get(f"/{kind}").json():
                if run["status"] in ("Pending", "Running"):
                    self.member.post(f"/{kind}/{run['id']}/halt")
                    wait_until(lambda kind=kind, run=run: self.member.get(f"/{kind}/{run['id']}").json()["status"]
                               not in ("Pending", "Running"), 60, f"{self.label}'s {kind} {run['id']} to end")


def _created(r, code=201) -> dict:
    assert r.status_code == code, r.text
    return r.json()


def make_world(platform, admin, git, label: str) -> TenantWorld:
    secret = unique(f"secret-{label}")  # in every name of this tenant's things
    source = admin.get(f"/admin/git/endpoints/{git['id']}").json()
    git_id = _created(admin.post("/admin/git/endpoints", {
        "name": f"{secret}-git", "serviceType": 0, "repositoryUrl": source["repositoryUrl"],
        "apiUrl": source["apiUrl"]}))["id"]
    registry_id = _created(admin.post("/admin/registry/endpoints", {
        "name": f"{secret}-registry", "host": "registry.invalid", "portNo": 443, "serviceType": 4,
        "apiUrl": "https://registry.invalid", "registryUrl": "https://registry.invalid"}))["id"]
    tenant = _created(admin.post("/admin/tenants", {
        "tenantName": unique(f"iso-{label}"), "displayName": secret, "gitIds": [1, git_id], "defaultGitId": git_id,
        "registryIds": [1, registry_id], "storageId": 1}))
    role = _created(admin.post("/admin/roles", {"name": unique(f"role-{label}"), "displayName": f"{secret} role",
                                                "sortOrder": 50, "tenantId": tenant["id"]}))
    users = {}
    for who, roles in (("member", [2]), ("manager", [2, 3])):
        users[who] = _created(admin.post("/admin/users", {
            "name": unique(f"{label}-{who}"), "password": "user-pass-123", "systemRoles": [],
            "tenants": [{"id": tenant["id"], "default": True, "roles": roles}]}))
    member = platform.api().login(users["member"]["name"], "user-pass-123")
    manager = platform.api().login(users["manager"]["name"], "user-pass-123")

    tag, file_name, payload = f"{secret}-tag", f"{secret}.csv", f"bytes of {secret}\n".encode()
    data = _created(member.post("/data", {"name": f"{secret} data", "tags": [tag]}))
    ticket = upload(member, file_name, payload)
    files = _created(member.post(f"/data/{data['id']}/files",
                                 {"files": [{"fileName": file_name, "storedPath": ticket["storedPath"]}]}))
    dataset, spare, flat = (_created(member.post("/datasets", {
        "name": f"{secret} {which}", "entries": {"training": [{"id": data["id"]}]}, "isFlat": which == "flat",
        "flatEntries": [{"id": data["id"]}]})) for which in ("dataset", "spare", "flat"))
    run = _created(member.post("/training/run", {
        "name": f"{secret}-run"[:30], "containerImage": {"image": "python", "tag": "3.11"},
        "dataSetId": dataset["id"], "gitModel": {"gitId": git_id, "owner": "kqi", "repository": "model"},
        "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0}))
    attached = upload(member, f"{secret}-attached.txt", payload, kind="TrainingHistoryAttachedFiles")
    run_file = _created(member.post(f"/training/{run['id']}/files",
                                    {"fileName": attached["fileName"], "storedPath": attached["storedPath"]}))
    notebook = _created(member.post("/notebook/run", {"name": f"{secret}-nb"[:30], "cpu": 1, "memory": 1, "gpu": 0,
                                                      "expiresIn": 3600, "dataSetId": dataset["id"]}))
    member.post(f"/notebook/{notebook['id']}/halt")
    ended = ("Completed", "Failed", "Killed", "Error", "OOMKilled", "UserCanceled")
    for kind, thing in (("training", run), ("notebook", notebook)):
        wait_until(lambda kind=kind, thing=thing: member.get(f"/{kind}/{thing['id']}").json()["status"] in ended, 120,
                   f"{label}'s {kind} to end")
    ids = {"tenant": tenant["id"], "user": users["member"]["id"], "role": role["id"], "git": git_id,
           "registry": registry_id, "data": data["id"], "data_file": files["files"][0]["fileId"],
           "data_file_name": file_name, "tag": tag, "stored_path": ticket["storedPath"], "dataset": dataset["id"],
           "spare_dataset": spare["id"], "flat_dataset": flat["id"], "training": run["id"],
           "run_file": run_file["fileId"], "run_file_name": attached["fileName"],
           "notebook": notebook["id"], "container": f"training-{run['id']}", "git_owner": "kqi",
           "git_repository": "model", "git_commit": git["commit"], "git_segments": "kqi/model", "image": "python"}
    return TenantWorld(label, ids, member, manager, markers=[secret, payload.decode().strip()])


def snapshot(world: TenantWorld) -> dict:
    """What A's member sees of A's things (signed file URLs replaced by the bytes they serve)."""
    ids, api = world.ids, world.member
    seen = {}
    for path in (f"/data/{ids['data']}", f"/data/{ids['data']}/files", f"/datasets/{ids['dataset']}",
                 f"/training/{ids['training']}", f"/training/{ids['training']}/files", f"/notebook/{ids['notebook']}",
                 "/data/datatags", "/account", "/tenant"):
        r = api.get(path, params={"withUrl": "true"} if path.endswith("/files") else None)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        if isinstance(body, list):
            for item in body:
                if isinstance(item, dict) and item.get("url"):
                    item["url"] = requests.get(item.pop("url"), timeout=30).content
        if isinstance(body, dict):
            body.pop("remainingSeconds", None)
        seen[path] = body
    return seen


class MatrixSummary:
    """Collects each case's verdict; prints tried / held at the end of the run (a pytest plugin)."""

    def __init__(self):
        self.results: dict[str, tuple[bool, str]] = {}
        self.control: dict[str, int] = {}

    def record(self, case: Case, held: bool, how: str):
        self.results[case.id] = (held, how)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.results:
            return
        write = terminalreporter.write_line
        write("isolation matrix (tenant B with tenant A's ids, from the contract):")
        for kind in ("path", "body", "query", "filter", "admin"):
            mine = {k: v for k, v in self.results.items() if k.startswith(kind)}
            if mine:
                held = sum(1 for ok, _ in mine.values() if ok)
                absent = sum(1 for ok, how in mine.values() if ok and how.startswith("absent"))
                write(f"  {kind:<6} tried {len(mine):4d} / held {held:4d} (of which not implemented: {absent})")
        held = sum(1 for ok, _ in self.results.values() if ok)
        if self.control:
            ok = sum(1 for code in self.control.values() if code < 300)
            write(f"  control: A's member reads A's things by the same GETs: {ok} of {len(self.control)} answer 2xx")
        write(f"  total  tried {len(self.results):4d} / held {held:4d}")
        for case_id, (ok, how) in self.results.items():
            if not ok:
                known = " (known, xfail: outside issue 10)" if case_id in KNOWN_BUGS else ""
                write(f"  NOT HELD{known} {case_id}: {how[:160]}")
        if os.environ.get("KQI_MATRIX_REPORT"):
            with open(os.environ["KQI_MATRIX_REPORT"], "w") as f:
                json.dump({"results": self.results, "control": self.control}, f, indent=1, ensure_ascii=False)
            write(f"  every case's answer: {os.environ['KQI_MATRIX_REPORT']}")


SUMMARY = MatrixSummary()


@pytest.fixture(scope="module")
def worlds(request, platform, admin, git_endpoint):  # noqa: F811 - the imported fixture
    if not request.config.pluginmanager.is_registered(SUMMARY):
        request.config.pluginmanager.register(SUMMARY, "kqi-isolation-matrix")
    a = make_world(platform, admin, git_endpoint, "a")
    b = make_world(platform, admin, git_endpoint, "b")
    yield {"a": a, "b": b, "before": snapshot(a)}
    a.halt_active_runs()
    b.halt_active_runs()


# one case ----------------------------------------------------------------------------------------------------


def request_of(case: Case, a: TenantWorld, b: TenantWorld):
    """(method, path, query, body) of a case: A's id where the case puts it, B's own everywhere else."""
    op = case.op
    values = {}
    for name in op.path_params:
        kind = param_kind(op.resource, name)
        if kind is None:
            values[name] = ABSENT if case.kind == "admin" else 1
        elif case.kind in ("path", "admin"):
            values[name] = a.value(kind)
        else:
            spares = {**OWN_SPARES, **TARGET_SPARES.get(case.target, {})}
            values[name] = b.value(spares.get(kind, kind))

    def value_for(path, schema):
        kind = ref_kind(op.resource, path)
        if kind:
            world = a if (case.kind == "body" and path == case.target) else b
            value = world.value(kind)
            return [value] if schema.get("type") == "array" else value
        leaf = path.rsplit(".", 1)[-1]
        if case.kind == "body" and leaf in TARGET_NEEDS.get(case.target, {}):
            return TARGET_NEEDS[case.target][leaf]
        value = DEFAULTS.get(leaf, contract.MISSING)
        return value() if callable(value) else value

    query = {}
    for p in op.params_in("query"):
        name = p["name"]
        if case.kind == "query" and name == case.target:
            query[name] = a.value(QUERY_REFS[name])
        elif case.kind == "filter" and name in FILTER_REFS:
            query[name] = a.value(FILTER_REFS[name] or param_kind(op.resource, "id") or "data")
        elif name in QUERY_REFS:
            query[name] = b.value(QUERY_REFS[name])
        elif p.get("required"):
            query[name] = DEFAULTS.get(name, (p.get("enum") or [1 if p.get("type") == "integer" else "x"])[0])
    def include(path):  # the target field and the fields above it
        rest = case.target[len(path):] if case.kind == "body" and case.target.startswith(path) else None
        return rest is not None and rest[:1] in ("", ".", "[")

    body = contract.build(op.body_schema, value_for, include=include) if op.body_schema is not None else None
    return op.method.upper(), contract.fill(op.path, values).removeprefix("/api/v2"), query, body


def leaked(response: requests.Response, markers: list[str], sent: str) -> list[str]:
    """A's strings in the answer (or in what its URLs serve), except those B itself sent."""
    markers = [m for m in markers if m not in sent]
    found = [m for m in markers if m in response.text]
    if response.status_code < 300:
        for url in set(re.findall(r"https?://[^\s\"'<>\\]+", response.text)):
            try:
                served = requests.get(url, timeout=10).text
            except requests.RequestException:
                continue
            found += [f"{m} (via {url})" for m in markers if m in served]
    return found


def verdict(case: Case, r: requests.Response) -> tuple[bool, str]:
    code = r.status_code
    try:
        message = r.json().get("message", "") if r.headers.get("Content-Type", "").startswith("application/json") \
            else r.text[:200]
    except (ValueError, AttributeError):
        message = r.text[:200]
    how = f"{code} {message}"[:300]
    if code >= 500:
        return False, how
    if (code == 404 and "No such API endpoint" in message) or code == 405:
        return True, "absent: " + how
    refused = set(case.op.spec.get("x-refused", []))
    if case.kind == "admin":
        return code in {403} | refused, how
    if case.kind == "path":
        return code in {403, 404} | refused, how
    if case.kind in ("body", "query"):
        return 400 <= code < 500, how
    return True, how  # filter: any answer below 500 without A's strings


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c.id])] if c.id in KNOWN_BUGS
                 else []) for c in CASES])
def test_tenant_b_is_refused_tenant_a_things(worlds, case):
    a, b = worlds["a"], worlds["b"]
    method, path, query, body = request_of(case, a, b)
    api = getattr(b, case.caller)
    r = api.request(method, path, json=body, params=query or None)
    sent = f"{path} {query} {body}"
    held, how = verdict(case, r)
    found = leaked(r, a.markers, sent)
    if found:
        held, how = False, f"{how}; A's strings in the answer: {found}"
    SUMMARY.record(case, held, how)
    if r.status_code < 300 and method != "GET":
        b.halt_active_runs()  # a run it wrongly started must not hold the name or the cores for the next cases
    assert held, f"{method} {path} query={query} body={body} as B's {case.caller} -> {how}"


def test_the_ids_are_real_for_their_owner(worlds):
    """Control: A's member reads A's things by the same requests (so B's refusals are not wrong URLs or ids)."""
    a = worlds["a"]
    answered = {}
    for case in CASES:
        if case.kind == "path" and case.caller == "member" and case.op.method == "get":
            method, path, query, _ = request_of(case, a, a)
            answered[case.op.id] = a.member.request(method, path, params=query or None).status_code
    SUMMARY.control = answered
    for must in ("/api/v2/data/{id}", "/api/v2/data/{id}/files", "/api/v2/data/{id}/files/{name}",
                 "/api/v2/datasets/{id}", "/api/v2/training/{id}", "/api/v2/training/{id}/files",
                 "/api/v2/training/{id}/files/{name}/size", "/api/v2/notebook/{id}", "/api/v2/training/{id}/log"):
        assert answered[f"GET {must}"] == 200, (must, answered[f"GET {must}"])


def test_tenant_a_still_sees_its_things_unchanged(worlds):
    """After every case above (run after them, in file order): A's things are as they were."""
    after = snapshot(worlds["a"])
    for path, before in worlds["before"].items():
        assert after[path] == before, path


def test_every_path_parameter_has_a_meaning():
    """A path parameter of a user path is a kind of tenant A's thing, or says why it is no tenant's."""
    unknown = sorted({f"{op.id}: {name}" for op in OPERATIONS if not op.is_admin for name in op.path_params
                      if not param_kind(op.resource, name) and (op.resource, name) not in NOT_TENANT_OWNED})
    assert not unknown, "map these in PARAM_KINDS or NOT_TENANT_OWNED: " + ", ".join(unknown)


def test_the_matrix_covers_the_contract():
    """Every contract path with a parameter, and every admin path, is in the matrix."""
    covered = {c.op.id for c in CASES}
    missing = [op.id for op in OPERATIONS if (op.is_admin or any(param_kind(op.resource, p) for p in op.path_params))
               and op.id not in covered]
    assert not missing
    assert len({c.op.id for c in CASES if c.kind == "path"}) > 100
