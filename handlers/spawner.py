"""The API the hub's notebook spawner calls (``kqi_spawner``); not for users.

Every request carries the kqi service's own hub API token (the spawner runs
inside the hub, which holds it in its config): ``Authorization: token …``.

- ``POST internal/notebooks`` — a spawn from the hub's own form: create the
  notebook for the user (or rerun their stopped one of that name).
- ``POST internal/notebooks/{id}/spawn`` — the server's command, environment
  and port: the engine may now admit and start it.
- ``GET internal/notebooks/{id}?wait=S&since=STATE`` — where it stands
  (queue position, preparing, started, ended and why), answered once it
  differs from ``since`` or after ``S`` seconds.
- ``POST internal/notebooks/{id}/stop`` — the hub stops the server: halt it
  and answer once it has ended.
- ``GET internal/spawn-options?user=NAME&serverName=S`` — what the hub's spawn
  form offers (the user's tenants, the tenant's datasets, git endpoints,
  registries and partitions, by name), or the stopped notebook of that server
  that a start reruns with its own last settings.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from sqlalchemy import select

from kqi_services import validation as v
from kqi_services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from kqi_services.jobs import status as st
from kqi_services.jobs.engine import JobEngine
from kqi_services.jobs.interactive import SpawnRequest
from kqi_services.jobs.kinds import NOTEBOOK
from kqi_services.jobs.queue import partitions_of, queue_position, visible_nodes
from kqi_services.jobs.submission import rerun_body, submit_run
from kqi_services.orm import DataSet, GitEndpoint, RegistryEndpoint, Run, Tenant, User

from .base import APIHandler

#: what the spawner sees of a notebook's phase: "running" once its server started (the spec is there)
SPAWNER_PHASES = {st.QUEUED: "queued", st.PREPARING: "preparing", st.STARTING: "running", st.RUNS: "running",
                  st.ENDED: "ended"}

WAIT_MAX_S = 30


class SpawnerAPIHandler(APIHandler):
    auth_required = False

    async def prepare(self):
        given = self.request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "token" or not hmac.compare_digest(token.encode(), self.kqi.api_token.encode()):
            raise Unauthorized("This API is for the hub's notebook spawner")

    @property
    def engine(self) -> JobEngine:
        return self.settings["engine"]

    def tenant_for(self, user: User, tenant_id) -> Tenant:
        if tenant_id in (None, ""):
            membership = user.default_membership
        else:
            try:
                membership = user.membership(int(tenant_id))
            except (TypeError, ValueError):
                raise InvalidInput("tenantId must be a tenant id") from None
        if membership is None:
            raise Forbidden(f"{user.name} is not a member of that tenant")
        return membership.tenant

    def server_notebook(self, user: User, tenant: Tenant, server_name: str) -> Run | None:
        """The user's latest notebook of that hub server in that tenant (a start of the server reruns it)."""
        return self.db.scalar(select(Run).where(
            Run.kind == NOTEBOOK.name, Run.user_id == user.id, Run.tenant_id == tenant.id,
            Run.server_name == server_name).order_by(Run.id.desc()).limit(1))

    def notebook(self, run_id) -> Run:
        run = self.db.get(Run, v.path_id(run_id))
        if run is None or run.kind != NOTEBOOK.name:
            raise NotFound(f"Notebook {run_id} not found")
        return run

    def state(self, run: Run) -> dict:
        """What the spawner shows and decides on."""
        phase = SPAWNER_PHASES[run.phase]
        position = queue_position(self.db, run)
        spawn = self.engine.spawn_of(run.id)
        return {"id": run.id, "status": run.status, "phase": phase, "queuePosition": position,
                "message": run.condition_note, "node": run.node,
                "expiresAt": run.expires_at.isoformat() + "Z" if run.expires_at else None,
                "spec": spawn.spec if spawn is not None and phase == "running" else None}


class SpawnerNotebooksHandler(SpawnerAPIHandler):
    """POST internal/notebooks {user, serverName, options}: the notebook of a spawn from the hub's form."""

    def post(self):
        body = v.require_object(self.get_json_body())
        user = User.find_by_name(self.db, v.string(body, "user", required=True, max_length=255))
        if user is None:
            raise NotFound("No such kqi user")
        options = v.field(body, "options", dict, default={}) or {}
        server_name = v.string(body, "serverName", max_length=255) or ""
        tenant = self.tenant_for(user, options.get("tenantId"))
        existing = self.server_notebook(user, tenant, server_name)
        if existing is not None:
            run = submit_run(self.db, NOTEBOOK, tenant, user, rerun_body(existing, options), rerun_of=existing,
                             server_name=server_name)
        else:
            body = {"name": server_name or "default", **{k: val for k, val in options.items() if k != "tenantId"}}
            run = submit_run(self.db, NOTEBOOK, tenant, user, body, server_name=server_name)
        self.write_json(self.state(run), 201)



class SpawnerSpawnHandler(SpawnerAPIHandler):
    """POST internal/notebooks/{id}/spawn {user, cmd, env, port, runHere}."""

    def post(self, run_id):
        run = self.notebook(run_id)
        body = v.require_object(self.get_json_body())
        user = self.db.get(User, run.user_id)
        if user is None or body.get("user") != user.name:
            raise Forbidden("That notebook is another user's")
        if run.phase != st.QUEUED:
            raise Conflict(f"Notebook {run.id} is {run.status}; rerun it to start it again")
        cmd = v.field(body, "cmd", list, required=True)
        env = v.field(body, "env", dict, required=True)
        if not cmd or not all(isinstance(c, str) for c in cmd):
            raise InvalidInput("cmd must be a list of strings")
        if not all(isinstance(k, str) and isinstance(val, str) for k, val in env.items()):
            raise InvalidInput("env must map names to strings")
        port = v.integer(body, "port", required=True, minimum=1, maximum=65535)
        self.engine.request_spawn(run.id, SpawnRequest(cmd, env, port, run_here=v.boolean(body, "runHere", default=True)))
        self.write_json(self.state(run))


class SpawnerStateHandler(SpawnerAPIHandler):
    """GET internal/notebooks/{id}?wait=S&since=PHASE."""

    async def get(self, run_id):
        wait = min(float(self.get_query_argument("wait", "0") or 0), WAIT_MAX_S)
        since = self.get_query_argument("since", "")
        deadline = time.monotonic() + wait
        while True:
            run = self.notebook(run_id)
            state = self.state(run)
            if not since or f"{state['phase']}:{state['queuePosition']}" != since or time.monotonic() >= deadline:
                break
            self.db.rollback()  # no transaction stays open across the wait
            await asyncio.sleep(0.05)
        self.write_json(state)


class SpawnerStopHandler(SpawnerAPIHandler):
    """POST internal/notebooks/{id}/stop: halt it (the hub stops the server) and answer once it ended."""

    async def post(self, run_id):
        run = self.notebook(run_id)
        self.engine.stopping_by_hub(run.id)
        if run.status in st.ACTIVE:
            await self.engine.halt(self.db, run, st.KILLED)
        deadline = time.monotonic() + float(self.get_query_argument("wait", "20"))
        while time.monotonic() < deadline:
            self.db.rollback()
            run = self.notebook(run_id)
            if run.status not in st.ACTIVE:
                break
            await asyncio.sleep(0.1)
        self.write_json(self.state(run))


base = "api/v2/internal/notebooks"
#: the most datasets the spawn form lists (newest first)
FORM_DATASETS = 500


class SpawnOptionsHandler(SpawnerAPIHandler):
    """GET internal/spawn-options?user=NAME&serverName=S[&tenantId=T]: the spawn form's choices, or its rerun."""

    def get(self):
        user = User.find_by_name(self.db, self.get_query_argument("user", ""))
        if user is None:
            raise NotFound("No such kqi user")
        server_name = self.get_query_argument("serverName", "")
        tenant = self.tenant_for(user, self.get_query_argument("tenantId", None))
        last = self.server_notebook(user, tenant, server_name)
        datasets = self.db.execute(select(DataSet.id, DataSet.name).where(DataSet.tenant_id == tenant.id)
                                   .order_by(DataSet.id.desc()).limit(FORM_DATASETS)).all()
        gits = [self.db.get(GitEndpoint, g.git_id) for g in tenant.gits]
        registries = [self.db.get(RegistryEndpoint, r.registry_id) for r in tenant.registries]
        self.write_json({
            "rerun": {"id": last.id, "name": last.name, "status": last.status} if last is not None else None,
            "tenant": {"id": tenant.id, "name": tenant.name, "displayName": tenant.display_name},
            "tenants": [{"id": m.tenant.id, "name": m.tenant.name, "displayName": m.tenant.display_name,
                         "default": m.is_default} for m in sorted(user.memberships, key=lambda m: m.tenant_id)],
            "datasets": [{"id": i, "name": n} for i, n in datasets],
            "gits": [{"id": g.id, "name": g.name} for g in gits if g is not None],
            "defaultGitId": tenant.default_git_id,
            "registries": [{"id": r.id, "name": r.name} for r in registries if r is not None],
            "defaultRegistryId": tenant.default_registry_id,
            "partitions": partitions_of(visible_nodes(self.db, tenant)),
        })


default_handlers = [
    (r"api/v2/internal/spawn-options", SpawnOptionsHandler),
    (base, SpawnerNotebooksHandler),
    (rf"{base}/([0-9]+)", SpawnerStateHandler),
    (rf"{base}/([0-9]+)/spawn", SpawnerSpawnHandler),
    (rf"{base}/([0-9]+)/stop", SpawnerStopHandler),
]
