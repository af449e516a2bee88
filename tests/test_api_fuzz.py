"""A bounded property-based fuzz of the API from the contract (schemathesis): no answer >= 500, errors are JSON.

Schemathesis turns every operation of ``tests/contract/kamonohashi-api-v2.swagger.json``
into a Hypothesis strategy of requests, valid ones (positive) and ones that
break the schema (negative), taken in turns. They are sent through the hub's
proxy to ``/services/kqi`` with a plain user's token, then with the system
admin's, round-robin over the operations until ``KQI_FUZZ_SECONDS`` (default
150, split between the two) have passed. A 5xx, an error that is not JSON, or
no answer within 30 s fails the test, which lists the requests.

It runs on a platform of its own (``start_platform``, about 10 s here): the
admin's requests delete and change tenants, users, nodes, menus and
endpoints, which the shared ``platform`` of the other tests must keep. The
platform's node is deleted first, so that no fuzzed training or notebook is
ever admitted (a valid one is refused as never fitting, after every other
check): the fuzz starts no sandbox. What stays out, and why, is in
``EXCLUDED`` and ``PROTECTED``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import contract
import pytest
import requests
from conftest import upload

pytestmark = pytest.mark.platform

FUZZ_SECONDS = float(os.environ.get("KQI_FUZZ_SECONDS", "150"))
REQUEST_TIMEOUT = 30
EXAMPLES_PER_TURN = 3
# operations left out: (method, path) -> why
EXCLUDED = {
    ("POST", "/api/v2/admin/nodes"): "a node would let the queue admit fuzzed trainings and notebooks",
}
# (method, path) -> path parameter that may not name the fuzz's own users or tenants (they would lose their token)
PROTECTED = {
    ("DELETE", "/api/v2/admin/users/{id}"): "id", ("PUT", "/api/v2/admin/users/{id}"): "id",
    ("PUT", "/api/v2/admin/users/{id}/password"): "id", ("DELETE", "/api/v2/tenant/users/{id}"): "id",
    ("PUT", "/api/v2/tenant/users/{id}/roles"): "id", ("DELETE", "/api/v2/admin/tenants/{id}"): "id",
}


@dataclass
class FuzzLog:
    """What was sent and what failed, per caller."""

    sent: dict = field(default_factory=dict)
    skipped: int = 0
    failures: list = field(default_factory=list)
    unsatisfiable: set = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    resent: list = field(default_factory=list)  # bare 400s of the proxy, answered as JSON on a fresh connection

    def failure(self, who, kwargs, what):
        body = kwargs.get("json", kwargs.get("data"))
        body = json.dumps(body, ensure_ascii=False)[:300] if body is not None else ""
        query = kwargs.get("params") or ""
        self.failures.append(f"[{who}] {kwargs['method']} {kwargs['url']} query={query} body={body} -> {what}")


def absent_operations(operations, base_url: str, token: str) -> set:
    """The operations the platform does not implement: a JSON 404 "No such API endpoint", or 405."""
    absent = set()
    params = {(op.method, op.path): op.path_params for op in contract.operations()}
    for op in operations:
        path = contract.fill(op.path, {name: 1 for name in params[(op.method, op.path)]})
        r = requests.request(op.method.upper(), base_url + path, headers={"Authorization": f"Bearer {token}"},
                             timeout=REQUEST_TIMEOUT, json=None if op.method in ("get", "delete") else {})
        if r.status_code == 405 or (r.status_code == 404 and "No such API endpoint" in r.text):
            absent.add((op.method, op.path))
    return absent


def is_json_error(response: requests.Response) -> bool:
    try:
        return isinstance(response.json(), dict) and "message" in response.json()
    except ValueError:
        return False


def fuzz(operations, who: str, token: str, base_url: str, protected_ids: set, seconds: float, log: FuzzLog,
         implemented=lambda op: True, service_url: str = ""):
    """Send generated requests for ``operations`` as ``who`` until ``seconds`` have passed.

    Operations that ``implemented(op)`` says the platform lacks get one turn in each mode, the rest all the time.
    ``service_url`` is the kqi service's own address (behind the proxy), asked when the proxy refuses a request.
    """
    proxy_root = base_url.split("/services/")[0]
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    deadline = time.monotonic() + seconds
    session = requests.Session()
    log.sent.setdefault(who, 0)

    def send(op, case):
        if time.monotonic() > deadline:
            return
        name = PROTECTED.get((op.method.upper(), op.path))
        if name and str((case.path_parameters or {}).get(name)) in protected_ids:
            log.skipped += 1
            return
        kwargs = case.as_transport_kwargs(base_url=base_url)
        kwargs["headers"]["Authorization"] = f"Bearer {token}"
        log.sent[who] += 1
        try:
            r = session.request(**kwargs, timeout=REQUEST_TIMEOUT, allow_redirects=False)
        except requests.RequestException as e:
            log.failure(who, kwargs, f"no answer: {type(e).__name__}")
            return
        if r.status_code == 400 and not r.content and "Content-Type" not in r.headers:
            # a bare 400 with no headers of ours is the proxy's parser refusing what it read on this
            # kept-alive connection, not the service's answer: ask again on a fresh one, and say so
            log.resent.append(f"[{who}] {kwargs['method']} {kwargs['url']}")
            session.close()
            try:
                r = requests.request(**kwargs, timeout=REQUEST_TIMEOUT, allow_redirects=False)
            except requests.RequestException as e:
                log.failure(who, kwargs, f"no answer: {type(e).__name__}")
                return
            if r.status_code == 400 and not r.content and "Content-Type" not in r.headers and service_url:
                # the proxy's HTTP parser refuses the request line itself (control characters in the path): the
                # request never reaches the service, so ask the service directly, which must answer as always
                log.resent.append(f"[{who}] (to the service directly) {kwargs['method']} {kwargs['url']}")
                try:
                    r = requests.request(**{**kwargs, "url": service_url + kwargs["url"][len(proxy_root):]},
                                         timeout=REQUEST_TIMEOUT, allow_redirects=False)
                except requests.RequestException as e:
                    log.failure(who, kwargs, f"no answer from the service: {type(e).__name__}")
                    return
                if r.status_code == 400 and not r.content and "Content-Type" not in r.headers:
                    # tornado's HTTP/1 parser refused it too: a bare 400 (no body, no header of ours) comes only
                    # from there, before any handler runs (every handler of ours answers errors as JSON). Both
                    # parsers say it is not HTTP; it is listed with the exact URL and headers it was sent with
                    log.resent.append(f"[{who}] (refused by the service's HTTP parser too) {kwargs['method']} "
                                      f"{kwargs['url']!r} headers={ {k: v for k, v in kwargs['headers'].items() if k != 'Authorization'}!r}")
                    log.statuses[r.status_code] += 1
                    return
        log.statuses[r.status_code] += 1
        if r.status_code == 502 and any(p in kwargs["url"] for p in ("/api/v2/registries/", "/api/v2/git/")) \
                and is_json_error(r) and "cannot be reached" in r.json().get("message", ""):
            return  # a registry or git endpoint (Docker Hub's, GitHub's, seeded) asked for its listings: no network
            # here, and it says so
        if r.status_code >= 500:
            log.failure(who, kwargs, f"{r.status_code} {r.text[:300]}")
        elif r.status_code >= 400 and not is_json_error(r):
            log.failure(who, kwargs, f"{r.status_code} not a JSON error ({r.headers.get('Content-Type')}): "
                                     f"{r.text[:200]}")

    def turn_of(op, strategy):
        """One turn of examples of ``op`` (a function of its own: hypothesis refuses default arguments)."""

        @settings(max_examples=EXAMPLES_PER_TURN, deadline=None, phases=[Phase.generate], database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def one_turn(case):
            send(op, case)

        return one_turn

    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    turn = 0
    while time.monotonic() < deadline:
        mode = modes[turn % 2]
        for op in operations:
            if time.monotonic() > deadline:
                break
            if turn >= 2 and not implemented(op):
                continue
            try:
                strategy = op.as_strategy(generation_mode=mode)
            except Exception:  # noqa: BLE001 - an operation schemathesis cannot build requests for in this mode
                log.unsatisfiable.add(f"{op.method.upper()} {op.path} ({mode.name})")
                continue
            try:
                turn_of(op, strategy)()
            except Unsatisfiable:
                log.unsatisfiable.add(f"{op.method.upper()} {op.path} ({mode.name})")
        turn += 1


class FuzzFigures:
    """Prints the fuzz's figures at the end of the run (a pytest plugin)."""

    lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter):
        for line in self.lines:
            terminalreporter.write_line(line)


FIGURES = FuzzFigures()


def test_fuzzed_requests_never_get_a_server_error(request, start_platform, tmp_path):
    import hypothesis.configuration
    import schemathesis

    if not request.config.pluginmanager.is_registered(FIGURES):
        request.config.pluginmanager.register(FIGURES, "kqi-api-fuzz")

    hypothesis.configuration.set_hypothesis_home_dir(str(tmp_path / "hypothesis"))  # not the repository
    platform = start_platform()
    admin = platform.api().login("admin", platform.admin_password)
    for node in admin.get("/admin/nodes").json():
        assert admin.delete(f"/admin/nodes/{node['id']}").status_code < 300
    tenant = admin.post("/admin/tenants", {"tenantName": "fuzz", "displayName": "Fuzz", "gitIds": [1],
                                           "registryIds": [1], "storageId": 1}).json()
    user = admin.post("/admin/users", {"name": "fuzz-user", "password": "user-pass-123", "systemRoles": [],
                                       "tenants": [{"id": tenant["id"], "default": True, "roles": [2, 3]}]}).json()
    member = platform.api().login("fuzz-user", "user-pass-123")
    # a few things with small ids, which Hypothesis draws often
    data = member.post("/data", {"name": "fuzz-data", "tags": ["fuzz"]}).json()
    ticket = upload(member, "f.csv", b"a,b\n1,2\n")
    member.post(f"/data/{data['id']}/files", {"files": [{"fileName": "f.csv", "storedPath": ticket["storedPath"]}]})
    member.post("/datasets", {"name": "fuzz-dataset", "entries": {"training": [{"id": data["id"]}]}})
    me = admin.get("/account").json()
    protected = {str(x) for x in (tenant["id"], user["id"], me.get("userId"), me["selectedTenant"]["id"])}

    schema = schemathesis.openapi.from_path(contract.CONTRACT_PATH)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in EXCLUDED]
    seed = int(os.environ.get("KQI_FUZZ_SEED", random.randrange(1 << 30)))
    random.Random(seed).shuffle(operations)

    log = FuzzLog()
    base_url = platform.url + "/services/kqi"
    absent = absent_operations(operations, base_url, member.token)
    implemented = lambda op: (op.method, op.path) not in absent  # noqa: E731
    service_url = f"http://127.0.0.1:{int(platform.url.rsplit(':', 1)[1]) + 3}"  # KQI_SERVICE_PORT: port+3
    fuzz(operations, "user", member.token, base_url, protected, FUZZ_SECONDS / 2, log, implemented, service_url)
    fuzz(operations, "admin", admin.token, base_url, protected, FUZZ_SECONDS / 2, log, implemented, service_url)

    failures = log.failures
    server_errors = sum(1 for f in failures if " -> 5" in f)
    FIGURES.lines.append(f"api fuzz (seed {seed}, {FUZZ_SECONDS:.0f} s, {len(operations)} operations, "
                         f"{len(operations) - len(absent)} implemented): requests sent "
          + ", ".join(f"{who} {n}" for who, n in log.sent.items()) + f"; total {sum(log.sent.values())}; "
          f"5xx {server_errors}; other failures {len(failures) - server_errors}; skipped (protected ids) "
          f"{log.skipped}; excluded: {', '.join(' '.join(k) for k in EXCLUDED)}")
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(log.statuses.items()))
    FIGURES.lines.append(f"  answers by status: {statuses}")
    FIGURES.lines.append(f"  bare 400s of the proxy, sent again on a fresh connection: {len(log.resent)}"
                         + "".join(f"\n    {r}" for r in log.resent[:20]))
    FIGURES.lines.extend("  " + f for f in failures[:60])
    assert admin.get("/account").status_code == 200, "the fuzz lost the admin"
    assert not failures, f"{len(failures)} failed requests:\n" + "\n".join(failures[:60])
