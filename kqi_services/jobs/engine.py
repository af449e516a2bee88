"""The job engine: queue → admission → preparation → executor → final status, for every job kind.

Runs enter the queue through ``submission.submit_run``; every status change
here is an event of ``status.TRANSITIONS`` applied with ``status.apply``
(admit → start, or serve → ready for a notebook, → end).

One asyncio loop in the kqi service drives it. ``kick()`` asks for a
scheduling pass (on submit, on every finish, and once a second anyway).
Admitted runs hold their resources from admission to their end: the engine
clones the model and stages the inputs in a worker thread (outside the
sandbox), then hands the executor a complete RunSpec. Finished runs get
their status from the executor's record, their log attached as
``{kind}_stdout_stderr_{id}.log``, ``output.zip`` when asked, and their
run token revoked. On start the engine re-attaches to runs the executor
still runs and marks lost ones Failed with a reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from kqi_services.accounts.tokens import bind_token, forget_cached_identities, issue_run_token, revoke_run_token
from kqi_services.accounts.users import registry_login
from kqi_services.catalog.preprocessings import OutputNotRegistered, discard_outputs, register_outputs
from kqi_services.jobs.gitmodel import GitModelError, clone, clone_url, resolve_commit
from kqi_services.jobs.scheduler import Resources, plan
from kqi_services.jobs.staging import StagedFile, data_layout, dataset_layout, stage

from ..apimodels import registry_path
from ..executor.base import Executor, RunNotFound, RunState
from ..executor.spec import DEFAULT_PATH, Mount, RunSpec
from ..orm import (
    Credential,
    Data,
    DataSet,
    GitEndpoint,
    Preprocessing,
    RegistryEndpoint,
    Run,
    StorageEndpoint,
    Tenant,
    User,
    utcnow,
)
from . import status as st
from .imagetools import ImageTools
from .interactive import SpawnRequest, link_workspace, notebook_command, notebook_path, spawner_variables
from .kinds import KINDS
from .queue import holding_runs, node_views, queued_runs, run_request
from .results import ResultPool, keep_results
from .runtime import (
    RunPaths,
    container_name,
    image_reference,
    preprocessing_variables,
    proxy_variables,
    run_environment,
    run_forwards,
    run_mounts,
)
from .spawns import NotebookSpawns

log = logging.getLogger("kqi.jobs")

#: run tokens are recorded by their SHA-256; anything else is the id of a hub token
LOCAL_TOKEN_ID = re.compile(r"^[0-9a-f]{64}$")
GIB = 1024**3
LOST_NOTE = "Lost: the run's supervisor is gone (the machine or the sandbox died)"
FORGOTTEN_NOTE = "Lost: the executor has no record of the run (its state was removed)"


def final_status(run: Run, state: RunState) -> tuple[str, str | None]:
    """The status a run ends with, and a note saying why when the platform is the cause."""
    if state.phase == "lost":
        return st.FAILED, LOST_NOTE
    if state.phase == "unknown":
        return st.FAILED, FORGOTTEN_NOTE
    if state.error:
        return st.ERROR, state.error
    if run.end_requested:
        return run.end_requested, None
    return st.exit_status(state.exit_code, halted=state.halted, oom_killed=state.oom_killed), None


@dataclass
class PreparedRun:
    """What preparing a run left on disk, for its spec."""

    paths: RunPaths
    parents: list[tuple[int, str]]  # (parent id, its output directory)
    repository_url: str
    commit: str
    git_token: str | None
    kind_variables: dict[str, str] = field(default_factory=dict)  # runtime.preprocessing_variables
    image: str = ""  # runtime.image_reference: with the registry's host
    registry_auth: dict | None = None  # the owner's registry login, for executors that pull images


class JobEngine(NotebookSpawns):
    """Owns the queue of every job kind; see the module docstring."""

    def __init__(self, session_factory, executor: Executor, stores, hub_api, secret_box, runs_dir: str,
                 server_url: str, poll_seconds: float = 1.0, busy_poll_seconds: float = 0.02,
                 token_seconds: int = 7 * 24 * 3600, hub_auth=None, prepare_ahead_count: int = 2,
                 run_network: str = "private", image_tools: ImageTools | None = None, default_image: str = ""):
        self.session_factory = session_factory
        self.executor = executor
        self.stores = stores
        self.hub_api = hub_api
        self.secret_box = secret_box
        self.runs_dir = runs_dir
        self.server_url = server_url
        self.run_network = run_network  # executor.spec.NETWORK_MODES
        # runs in their images (executors that use them): the platform's tools, and the image of runs naming none
        self.image_tools = image_tools or ImageTools.for_server(server_url)
        self.default_image = default_image
        self.poll_seconds = poll_seconds
        self.busy_poll_seconds = busy_poll_seconds
        self._active: dict[int, str] = {}  # running runs: id → executor key
        self._ahead: dict[int, asyncio.Future] = {}  # queued runs being prepared: id → its preparation
        self._spawns: dict[int, SpawnRequest] = {}  # notebooks whose spawner asked to start them
        self.prepare_ahead_count = prepare_ahead_count
        self.token_seconds = token_seconds
        self.hub_auth = hub_auth  # its identity cache forgets revoked run tokens at once
        self.last_tenant: int | None = None
        self._wake = asyncio.Event()
        self._launching: set[int] = set()
        self._finishing: set[int] = set()
        self._task: asyncio.Task | None = None
        self.result_pool = ResultPool()  # zips and log copies: threads of their own, a cap per tenant

    # the loop -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def kick(self) -> None:
        self._wake.set()

    def is_launching(self, run_id: int) -> bool:
        """Admitted, and still being prepared or started."""
        return run_id in self._launching

    def delete_run_files(self, run: Run) -> None:
        """A deleted run's files go: the executor's record (log, state) and its /kqi directories."""
        kind = KINDS[run.kind]
        self.forget_executor_run(kind.run_key(run.id))
        shutil.rmtree(RunPaths.of(self.runs_dir, kind, run.id).root, ignore_errors=True)

    async def _loop(self) -> None:
        try:
            await self.reattach()
        except Exception:  # noqa: BLE001 - the queue must run even if one old run cannot be followed
            log.exception("re-attaching to runs failed")
        last_full = 0.0
        while True:
            # While runs are active their ends are polled often, from memory (a file read per run);
            # the database is read, and the queue planned, when kicked and once per poll_seconds.
            try:
                await asyncio.wait_for(self._wake.wait(), self.busy_poll_seconds if self._active else self.poll_seconds)
            except TimeoutError:
                pass
            kicked = self._wake.is_set()
            self._wake.clear()
            try:
                now = asyncio.get_running_loop().time()
                if kicked or now - last_full >= self.poll_seconds:
                    last_full = now
                    await self.watch()
                    await self.schedule()
                else:
                    self.watch_active()
            except Exception:  # noqa: BLE001 - the loop must go on
                log.exception("job engine pass failed")

    # admission ----------------------------------------------------------------------------
    async def schedule(self) -> None:
        with self.session_factory() as db:
            pending = [r for r in queued_runs(db)
                       if not KINDS[r.kind].interactive or r.id in self._spawns]  # notebooks wait for their spawner
            if not pending:
                self.prepare_ahead([])
                return
            holding = holding_runs(db)
            nodes = node_views(db, holding)
            quotas: dict[int, Resources] = {}
            usage: dict[int, Resources] = {}
            for tenant in db.scalars(select(Tenant)):
                quotas[tenant.id] = Resources(tenant.quota_cpu, tenant.quota_memory, tenant.quota_gpu)
            for held in holding:
                usage[held.tenant_id] = usage.get(held.tenant_id, Resources()) + Resources(held.cpu, held.memory, held.gpu)
            by_key = {f"{r.kind}-{r.id}": r for r in pending}
            assignments = plan([run_request(r) for r in pending], nodes, quotas, usage, self.last_tenant)
            for a in assignments:
                run = by_key[a.job_id]
                st.apply(run, "admit", utcnow(), note="Preparing: cloning the model and staging the inputs")
                run.node = a.node
                run.gpu_ids = ",".join(map(str, a.gpu_ids))
                self.last_tenant = a.tenant_id
            db.commit()
            for a in assignments:
                run = by_key[a.job_id]
                self._active[run.id] = a.job_id
                self._launching.add(run.id)
                asyncio.get_running_loop().create_task(self.launch(run.id))
            admitted = {by_key[a.job_id].id for a in assignments}
            self.prepare_ahead([r.id for r in pending if r.id not in admitted])

    # preparation and start -----------------------------------------------------------------
    def prepare_ahead(self, queue: list[int]) -> None:
        """Clone and stage the next runs of the queue while they wait, so a freed slot starts one at once.

        At most ``prepare_ahead_count`` at a time; preparations of runs that
        left the queue (halted, deleted) are dropped.
        """
        waiting = set(queue)
        for run_id in [r for r in self._ahead if r not in waiting and r not in self._launching]:
            self._ahead.pop(run_id).add_done_callback(lambda f: f.exception())
        loop = asyncio.get_running_loop()
        for run_id in queue:
            if len(self._ahead) >= self.prepare_ahead_count:
                break
            if run_id not in self._ahead:
                self._ahead[run_id] = loop.run_in_executor(None, self.prepare, run_id)

    async def launch(self, run_id: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            ahead = self._ahead.pop(run_id, None)
            prepared = await (ahead if ahead is not None else loop.run_in_executor(None, self.prepare, run_id))
            with self.session_factory() as db:
                run = db.get(Run, run_id)
                spawn = self._spawns.get(run_id)
                if run.end_requested or (KINDS[run.kind].interactive and spawn is None):  # halted meanwhile
                    spec = None
                else:
                    spec = self.run_spec(run, prepared, self.run_token(db, run, spawn))
            if spec is None:
                await self.fail_to_start(run_id, "")
                return
            if spawn is None or spawn.run_here:
                await loop.run_in_executor(None, self.executor.start, spec)
            else:  # the spawner runs it (Kubernetes): it fetches the spec
                spawn.spec = spec.to_dict()
            with self.session_factory() as db:
                run = db.get(Run, run_id)
                if KINDS[run.kind].interactive:  # Running once the hub's route to it answers (watch)
                    st.apply(run, "serve", utcnow(), note="Starting: waiting for the notebook's server to answer")
                else:
                    st.apply(run, "start", utcnow())
                if run.expires_in:
                    run.expires_at = utcnow() + timedelta(seconds=run.expires_in)
                db.commit()
                if run.end_requested:  # halted while it was being started
                    await loop.run_in_executor(None, self.executor.halt, spec.run_id)
                log.info("%s started on %s", spec.run_id, run.node)
        except Exception as e:  # noqa: BLE001 - any failure to prepare is the run's Error
            log.warning("run %s could not start: %s", run_id, e)
            await self.fail_to_start(run_id, str(e) if isinstance(e, (GitModelError, ValueError)) else
                                     f"The platform could not start the run: {e}")
        finally:
            self._launching.discard(run_id)

    def run_token(self, db, run: Run, spawn: SpawnRequest | None) -> str:
        """KQI_TOKEN: a run token (revoked at the end), or a notebook's own hub token bound to its tenant."""
        user = db.get(User, run.user_id)
        if spawn is not None:
            bind_token(db, user, run.tenant_id, spawn.server_token, None, None)
            db.commit()
            return spawn.server_token
        token, run.run_token_id = issue_run_token(db, user, run.tenant_id, self.token_seconds)
        db.commit()
        return token

    def prepare(self, run_id: int) -> PreparedRun:
        """Clone the model and stage the inputs, afresh (a worker thread: blocking I/O is fine here).

        Runs while the run waits in the queue (``prepare_ahead``) or once it is admitted.
        """
        with self.session_factory() as db:
            run = db.get(Run, run_id)
            kind = KINDS[run.kind]
            paths = RunPaths.of(self.runs_dir, kind, run.id)
            for d in (paths.git, paths.input, paths.attach):  # a restart may have left a half-done one
                if os.path.isdir(d) and os.listdir(d):
                    shutil.rmtree(d)
            for d in (paths.git, paths.input, paths.output, paths.attach):
                os.makedirs(d, exist_ok=True)
            if kind.interactive:  # a rerun: the previous start's executor files go, /kqi/output stays
                self.forget_executor_run(kind.run_key(run.id))
                link_workspace(paths.output)
            repository_url, commit, git_token = "", "", None
            if run.git_id is not None:
                git = db.get(GitEndpoint, run.git_id)
                git_token = self.user_secret(db, run.user_id, "git", run.git_id)
                url = clone_url(git.repository_url, run.git_owner, run.git_repository)
                commit = resolve_commit(url, branch=run.git_branch, commit=run.git_commit, token=git_token)
                run.git_commit = commit
                db.commit()
                repository_url = clone(url, commit, paths.git, token=git_token).url
            tenant = db.get(Tenant, run.tenant_id)
            store = self.stores.for_endpoint(db.get(StorageEndpoint, tenant.storage_id))
            if run.dataset_id is not None:
                dataset = db.get(DataSet, run.dataset_id)
                stage(dataset_layout(db, dataset), store, paths.input, self.server_url)
            kind_variables = {}
            if run.input_data_id is not None:  # a preprocessing history: its data at /kqi/input/{dataId}/{file}
                data = db.get(Data, run.input_data_id)
                if data is None:
                    raise ValueError(f"The input data {run.input_data_id} was deleted")
                stage(data_layout(db, [data.id]), store, paths.input, self.server_url)
                pre = db.get(Preprocessing, run.preprocessing_id) if run.preprocessing_id else None
                kind_variables = preprocessing_variables(
                    run.preprocessing_id or 0, data.id, data.name,
                    [pre.name if pre else run.name, *(t.tag for t in data.tags)])
            self.stage_attachments(db, run, store, paths)
            parents = [(p.parent_id, RunPaths.of(self.runs_dir, KINDS[db.get(Run, p.parent_id).kind],
                                                 p.parent_id).output) for p in run.parents]
            image, auth = self.image_of(db, run)
            return PreparedRun(paths, parents, repository_url, commit, git_token, kind_variables, image, auth)

    def image_of(self, db, run: Run) -> tuple[str, dict | None]:
        """The run's image with its registry's host, and (for executors that pull) the owner's login there."""
        registry = db.get(RegistryEndpoint, run.registry_id) if run.registry_id else None
        image = image_reference(run.image, run.image_tag, registry_path(registry) if registry else None,
                                registry.service_type if registry else None)
        if not image and self.uses_images:
            return self.default_image, None
        if not image or registry is None or not self.uses_images:
            return image, None
        user = db.get(User, run.user_id)
        login = registry_login(db, self.secret_box, user, registry.id) if user is not None else None
        if login is None:
            return image, None
        return image, {"username": login[0], "password": login[1], "serveraddress": registry_path(registry).split("/")[0]}

    @property
    def uses_images(self) -> bool:
        """Whether the executor runs each run in its image (the container executor), not in this host's software."""
        return bool(getattr(self.executor, "uses_images", False))

    def forget_executor_run(self, key: str) -> None:
        try:
            self.executor.cleanup(key)
        except RunNotFound:
            pass

    def run_spec(self, run: Run, prepared: PreparedRun, run_token: str) -> RunSpec:
        """The complete spec of an admitted, prepared run (its GPUs are known only now)."""
        kind = KINDS[run.kind]
        gpu_ids = [int(g) for g in run.gpu_ids.split(",") if g]
        env = run_environment(
            kind, run.id, user_options=json.loads(run.options_json or "{}"), dataset_id=run.dataset_id,
            parent_ids=[p for p, _ in prepared.parents], repository_url=prepared.repository_url,
            commit=prepared.commit, git_token=prepared.git_token, server_url=self.server_url, run_token=run_token,
            entry_point=run.entry_point, zip_output=run.zip_output, gpu_ids=gpu_ids,
            proxies=proxy_variables(dict(os.environ)), kind_variables=prepared.kind_variables,
        )
        command, workdir, inbound_port = run.entry_point, "/kqi/git", None
        if self.uses_images:  # the kqi CLI installed where the image lacks it
            command = self.image_tools.job_command(command)
        spawn = self._spawns.get(run.id) if kind.interactive else None
        if spawn is not None and self.uses_images:  # a notebook in its image: the image's own python serves it
            env.update(spawner_variables(spawn.env))
            command = notebook_command(run.entry_point, self.image_tools.notebook_server(spawn.cmd),
                                       prelude=self.image_tools.notebook_prelude())
            workdir, inbound_port = "/kqi/output", spawn.port
        elif spawn is not None:  # a notebook: the hub's single-user server, opened in /kqi/output
            env.update(spawner_variables(spawn.env))
            env["PATH"] = notebook_path(spawn.cmd, DEFAULT_PATH)
            command, workdir, inbound_port = notebook_command(run.entry_point, spawn.cmd), "/kqi/output", spawn.port
        return RunSpec(
            run_id=kind.run_key(run.id), command=command, env=env, workdir=workdir,
            network=self.run_network, forwards=run_forwards(env, inbound_port),
            mounts=[Mount(h, t, ro) for h, t, ro in run_mounts(prepared.paths, prepared.parents)],
            cpu=float(run.cpu), memory_bytes=run.memory * GIB, gpus=gpu_ids,
            image=prepared.image, registry_auth=prepared.registry_auth,
            display_name=container_name(kind.name, run.name, run.id),
        )

    def stage_attachments(self, db, run: Run, store, paths: RunPaths) -> None:
        layout = [StagedFile(f.file_name, f.stored_path, f.file_name, f.size) for f in run.files]
        if layout:
            stage(layout, store, paths.attach, self.server_url)

    def user_secret(self, db, user_id, kind: str, endpoint_id) -> str | None:
        cred = db.scalar(select(Credential).where(Credential.user_id == user_id, Credential.kind == kind,
                                                  Credential.endpoint_id == endpoint_id))
        return self.secret_box.decrypt(cred.secret_encrypted) if cred and cred.secret_encrypted else None

    async def fail_to_start(self, run_id: int, reason: str) -> None:
        with self.session_factory() as db:
            run = db.get(Run, run_id)
            if run.phase != st.ENDED:
                st.apply(run, "end", utcnow(), final=run.end_requested or st.ERROR,
                         note=None if run.end_requested else reason)
                db.commit()
            await self.revoke_run_token(db, run)
        self.kick()

    # watching and finishing ----------------------------------------------------------------
    async def watch(self) -> None:
        """Follow every run the database says is running (and remember them for ``watch_active``)."""
        with self.session_factory() as db:
            running = db.execute(select(Run.id, Run.kind).where(Run.phase.in_(st.EXECUTING))).all()
            expired = db.scalars(select(Run).where(Run.phase.in_(st.EXECUTING), Run.expires_at.is_not(None),
                                                   Run.expires_at <= utcnow(), Run.end_requested.is_(None))).all()
            for run in expired:
                await self.halt(db, run, st.COMPLETED,
                                note=f"Stopped at the end of its lifetime ({run.expires_in / 3600:g} h)")
            for run in db.scalars(select(Run).where(Run.phase == st.STARTING, Run.end_requested.is_(None))).all():
                await self.mark_ready_when_served(db, run)
        self._active = {run_id: KINDS[kind].run_key(run_id) for run_id, kind in running
                        if run_id not in self._spawns or self._spawns[run_id].run_here}
        self.watch_active()

    def watch_active(self) -> None:
        """Finish the remembered running runs whose executor says they ended."""
        for run_id, key in list(self._active.items()):
            if run_id in self._launching or run_id in self._finishing:
                continue
            spawn = self._spawns.get(run_id)
            if spawn is not None and not spawn.run_here:  # the spawner runs it elsewhere: not the executor's
                continue
            try:
                state = self.executor.status(key)
            except RunNotFound:
                state = RunState(key, "unknown")
            if state.phase in ("finished", "lost", "unknown"):  # unknown: started, then forgotten by the executor
                self._finishing.add(run_id)
                asyncio.get_running_loop().create_task(self.finish(run_id, state))

    async def finish(self, run_id: int, state: RunState) -> None:
        """Keep the results, then record the final status (no transaction spans an await)."""
        try:
            try:
                with self.session_factory() as db:
                    tenant_id = db.get(Run, run_id).tenant_id
                kept_note = await self.result_pool.run(tenant_id, self.keep_results, run_id)
            except Exception as e:  # noqa: BLE001 - the status stands even if the log cannot be kept
                log.exception("could not keep the results of run %s", run_id)
                kept_note = f"The log or output.zip could not be attached: {e}"
            with self.session_factory() as db:
                run = db.get(Run, run_id)
                final, _ = final_status(run, state)
                registers = KINDS[run.kind].registers_data and final == st.COMPLETED and run.phase != st.ENDED
            registration_failed = None
            if registers:  # a completed preprocessing: its results become data, or it fails having made none
                try:
                    kept_note = "; ".join(n for n in (
                        kept_note, await self.result_pool.run(tenant_id, self.register_outputs, run_id)) if n) or None
                except Exception as e:  # noqa: BLE001 - the run fails with the reason; nothing was registered
                    if not isinstance(e, OutputNotRegistered):
                        log.exception("could not register the results of run %s", run_id)
                    registration_failed = f"The results were not registered (no data was made): {e}"
            with self.session_factory() as db:
                run = db.get(Run, run_id)
                final, note = final_status(run, state)
                if registration_failed:
                    final, note = st.FAILED, registration_failed
                elif registers and final != st.COMPLETED:  # halted while its results were registered: undone
                    tenant = db.get(Tenant, run.tenant_id)
                    discard_outputs(db, run, self.stores.for_endpoint(db.get(StorageEndpoint, tenant.storage_id)))
                if KINDS[run.kind].interactive:
                    note = note or self.notebook_end_note(run, final, state)
                if run.phase != st.ENDED:
                    st.apply(run, "end", utcnow(), final=final,
                             note="; ".join(n for n in (note, kept_note) if n) or None)
                    db.commit()
                log.info("%s-%s finished: %s", run.kind, run_id, final)
            self._active.pop(run_id, None)
            self._finishing.discard(run_id)
            self.kick()  # the freed resources go to the queue before the token is revoked
            spawn = self._spawns.pop(run_id, None)
            with self.session_factory() as db:
                run = db.get(Run, run_id)
                await self.revoke_run_token(db, run)
                if KINDS[run.kind].interactive and not (spawn and spawn.stopping_by_hub):
                    await self.tell_hub_stopped(db, run)
        finally:
            self._finishing.discard(run_id)

    def log_path(self, run: Run) -> str | None:
        """Where the executor writes the run's stdout and stderr (followed live by the log API); None if it has none."""
        try:
            return self.executor.log_path(KINDS[run.kind].run_key(run.id))
        except RunNotFound:
            return None

    def log_tail(self, run: Run, lines: int = 3) -> str:
        path = self.log_path(run)
        if path is None:
            return "no log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
                return " | ".join(f.read().decode(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "no log"

    def keep_results(self, run_id: int) -> str | None:
        """Attach the log (and output.zip when asked) to the run (a worker thread); notebooks keep none.

        Returns a note when output.zip is partial or missing (``results.keep_results``).
        """
        with self.session_factory() as db:
            run = db.get(Run, run_id)
            kind = KINDS[run.kind]
            if kind.interactive:
                return None
            log_path = self.log_path(run)
            tenant = db.get(Tenant, run.tenant_id)
            note = keep_results(db, run, kind, self.stores.for_endpoint(db.get(StorageEndpoint, tenant.storage_id)),
                                f"{tenant.name}/{kind.attached_prefix}", log_path,
                                RunPaths.of(self.runs_dir, kind, run.id))
            db.commit()
            return note

    def register_outputs(self, run_id: int) -> str | None:
        """A completed preprocessing's /kqi/output/{name} directories as data (a worker thread); a note or None."""
        with self.session_factory() as db:
            run = db.get(Run, run_id)
            tenant = db.get(Tenant, run.tenant_id)
            pre = db.get(Preprocessing, run.preprocessing_id) if run.preprocessing_id else None
            store = self.stores.for_endpoint(db.get(StorageEndpoint, tenant.storage_id))
            made, note = register_outputs(db, run, pre.name if pre else run.name, store, f"{tenant.name}/data",
                                          RunPaths.of(self.runs_dir, KINDS[run.kind], run.id).output)
            db.commit()
            log.info("preprocessing-%s registered data %s", run_id, made)
            return note

    async def revoke_run_token(self, db, run: Run) -> None:
        """End KQI_TOKEN: a run token's row goes; a hub token (runs started by older versions) is deleted."""
        if not run.run_token_id:
            return
        if LOCAL_TOKEN_ID.match(run.run_token_id):
            revoke_run_token(db, run.run_token_id)
        else:
            user = db.get(User, run.user_id)
            try:
                if user is not None:
                    await self.hub_api.delete_token(user.name, run.run_token_id)
            except Exception as e:  # noqa: BLE001 - the run is over either way
                log.warning("could not revoke the token of run %s: %s", run.id, e)
            if self.hub_auth is not None:
                forget_cached_identities(self.hub_auth)
        run.run_token_id = None
        db.commit()

    def run_state(self, run: Run) -> RunState:
        """The executor's view of a run; phase ``unknown`` when it never reached the executor."""
        key = KINDS[run.kind].run_key(run.id)
        try:
            return self.executor.status(key)
        except RunNotFound:
            return RunState(key, "unknown")

    # user actions --------------------------------------------------------------------------
    async def halt(self, db, run: Run, final: str = st.KILLED, note: str | None = None) -> None:
        """Stop a run with ``final`` (and ``note``): a queued one at once, an admitted one through its executor."""
        if run.phase in (st.QUEUED, st.OPENED_PHASE):  # nothing runs yet (or here): it ends at once
            st.apply(run, "end", utcnow(), final=final, note=note)
            db.commit()
            self._spawns.pop(run.id, None)
            return
        run.end_requested = final
        run.condition_note = note  # a preparing or starting note no longer says where it is
        db.commit()
        spawn = self._spawns.get(run.id)
        if spawn is not None and not spawn.run_here and run.id not in self._launching:
            # the spawner ran it elsewhere and stops it there: it ends here now
            if run.id not in self._finishing:
                self._finishing.add(run.id)
                asyncio.get_running_loop().create_task(self.finish(run.id, RunState(
                    KINDS[run.kind].run_key(run.id), "finished", exit_code=0, halted=True)))
            return
        if run.id not in self._launching:
            key = KINDS[run.kind].run_key(run.id)
            await asyncio.get_running_loop().run_in_executor(None, self.executor.halt, key)
        self.kick()

    # restarts ------------------------------------------------------------------------------
    async def reattach(self) -> None:
        """After a service (re)start: follow runs still running, fail the lost ones."""
        with self.session_factory() as db:
            for run in holding_runs(db):
                state = self.run_state(run)
                if state.phase in ("running", "starting", "finished"):
                    log.info("re-attached to %s-%s (%s)", run.kind, run.id, state.phase)
                    continue
                st.apply(run, "end", utcnow(), final=st.FAILED,
                         note=LOST_NOTE if state.phase != "unknown" else
                         "Lost: the service restarted while the run was being prepared" if run.phase == st.PREPARING
                         else FORGOTTEN_NOTE)
                db.commit()
                await self.revoke_run_token(db, run)
