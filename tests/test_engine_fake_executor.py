"""The real JobEngine against an in-memory fake Executor: no process, no sandbox, no hub.

The engine is built as ``kqi_services.app`` builds it (session factory,
executor, stores, hub API, secret box, runs dir, server URL) and driven by
its public coroutines (``schedule``, ``watch``, ``halt``, ``reattach``); the
fake keeps its runs in a dict and ends them when a test says so. Runs are
inserted queued, as ``submit_run`` leaves them, without a model repository or
a dataset, so preparing them needs no git and no object.

The database is SQLite in a temp file: the engine prepares and keeps results
in worker threads, and an in-memory database would have to share its one
connection (and so its transactions) between them.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from kqi_services import orm
from kqi_services.accounts.secretbox import SecretBox
from kqi_services.db import make_engine, make_session_factory
from kqi_services.executor.base import Executor, RunActive, RunExists, RunHandle, RunNotFound, RunState
from kqi_services.executor.spec import RunSpec
from kqi_services.jobs import status as st
from kqi_services.jobs.engine import JobEngine
from kqi_services.jobs.queue import queue_position
from kqi_services.orm import Membership, Node, Run, RunFile, StorageEndpoint, Tenant, TokenTenant, User, utcnow
from kqi_services.storage import StoreRegistry
from kqi_services.storage.local import LocalStore

SERVER_URL = "http://127.0.0.1:8081/services/kqi"


class FakeExecutor(Executor):
    """Runs kept in a dict: ``start`` makes one running, the test ends it (``finish``, ``lose``)."""

    name = "fake"

    def __init__(self, root: str):
        self.root = root
        self.runs: dict[str, RunState] = {}
        self.specs: dict[str, RunSpec] = {}
        self.halts: list[str] = []
        self.lock = threading.Lock()

    # the interface
    def start(self, spec: RunSpec) -> RunHandle:
        spec.validate()
        with self.lock:
            if spec.run_id in self.runs:
                raise RunExists(spec.run_id)
            self.specs[spec.run_id] = spec
            self.runs[spec.run_id] = RunState(spec.run_id, "running", started_at="2024-01-01T00:00:00Z")
        with open(self.log_path(spec.run_id), "w") as f:
            f.write(f"log of {spec.run_id}\n")
        return RunHandle(spec.run_id, "fake", spec.run_id, self.log_path(spec.run_id))

    def status(self, run_id: str) -> RunState:
        with self.lock:
            if run_id not in self.runs:
                raise RunNotFound(run_id)
            return RunState(**self.runs[run_id].to_dict())

    def halt(self, run_id: str) -> bool:
        with self.lock:
            state = self.runs.get(run_id)
            if state is None:
                raise RunNotFound(run_id)
            self.halts.append(run_id)
            live = state.phase in ("starting", "running")
            if live:
                state.halted = True
            return live

    def running_runs(self) -> list[str]:
        with self.lock:
            return sorted(k for k, s in self.runs.items() if s.phase in ("starting", "running"))

    def run_ids(self) -> list[str]:
        with self.lock:
            return sorted(self.runs)

    def log_path(self, run_id: str) -> str:
        with self.lock:
            if run_id not in self.runs:
                raise RunNotFound(run_id)
        return os.path.join(self.root, f"{run_id}.log")

    def cleanup(self, run_id: str) -> None:
        with self.lock:
            state = self.runs.get(run_id)
            if state is None:
                raise RunNotFound(run_id)
            if state.phase in ("starting", "running"):
                raise RunActive(run_id)
            del self.runs[run_id]
            self.specs.pop(run_id, None)

    # what the test does to its runs
    def finish(self, run_id: str, exit_code: int = 0, oom_killed: bool = False, log: str = "") -> None:
        if log:
            with open(self.log_path(run_id), "a") as f:
                f.write(log)
        with self.lock:
            state = self.runs[run_id]
            state.phase, state.exit_code, state.oom_killed = "finished", exit_code, oom_killed
            state.finished_at = "2024-01-01T00:01:00Z"

    def lose(self, run_id: str) -> None:
        with self.lock:
            self.runs[run_id].phase = "lost"


class FakeHub:
    """The hub API as the engine uses it for trainings: told of stops and token deletions, never needed."""

    def __init__(self):
        self.calls: list[tuple] = []

    async def stop_server(self, user, server_name):
        self.calls.append(("stop_server", user, server_name))

    async def delete_token(self, user, token_id):
        self.calls.append(("delete_token", user, token_id))

    async def get_user(self, user):
        self.calls.append(("get_user", user))
        return {"name": user, "servers": {}}


class World:
    """A database with one tenant (quota cpu 2) and one node, a fake executor, and engines over them."""

    def __init__(self, tmp_path):
        self.db_engine = make_engine("sqlite:///" + str(tmp_path / "kqi.sqlite"))
        orm.Base.metadata.create_all(self.db_engine)
        self.session_factory = make_session_factory(self.db_engine)
        self.secret_box = SecretBox([Fernet.generate_key().decode()])
        self.store = LocalStore(str(tmp_path / "objects"), "store-secret")
        self.stores = StoreRegistry(self.store, self.secret_box)
        self.runs_dir = str(tmp_path / "runs")
        os.makedirs(tmp_path / "executor")
        self.executor = FakeExecutor(str(tmp_path / "executor"))
        self.hub = FakeHub()
        self.engines: list[JobEngine] = []
        with self.session_factory() as db:
            db.add(StorageEndpoint(id=1, name="local", kind="local", server_url="file://" + str(tmp_path),
                                   access_key="", secret_key_encrypted=self.secret_box.encrypt("")))
            db.flush()
            db.add(Tenant(id=1, name="lab", display_name="Lab", storage_id=1, quota_cpu=2))
            db.flush()
            user = User(id=1, name="alice")
            user.memberships.append(Membership(tenant_id=1, is_default=True))
            db.add(user)
            db.add(Node(id=1, name="node-a", partition="default", access_level=2, cpu=8, memory_gb=32, gpu=2))
            db.commit()

    def new_engine(self) -> JobEngine:
        """As kqi_services.app constructs it (its loop not started: the tests drive it)."""
        engine = JobEngine(self.session_factory, self.executor, self.stores, self.hub, self.secret_box,
                           self.runs_dir, SERVER_URL)
        self.engines.append(engine)
        return engine

    def queue(self, name: str, cpu: int = 1, gpu: int = 0, entry_point: str = "true") -> int:
        """A training as submit_run queues it (no model repository, no dataset)."""
        with self.session_factory() as db:
            order = (db.scalar(select(func.max(Run.queued_order))) or 0) + 1
            run = Run(kind="training", tenant_id=1, user_id=1, display_id=order, name=name, entry_point=entry_point,
                      options_json="{}", cpu=cpu, memory=1, gpu=gpu, status=st.PENDING, phase=st.QUEUED,
                      queued_order=order, created_by="alice", modified_by="alice")
            db.add(run)
            db.commit()
            return run.id

    def run(self, run_id: int) -> Run:
        with self.session_factory() as db:
            run = db.get(Run, run_id)
            db.expunge(run)
            return run

    def files(self, run_id: int) -> dict[str, bytes]:
        with self.session_factory() as db:
            rows = db.scalars(select(RunFile).where(RunFile.run_id == run_id)).all()
            found = {}
            for row in rows:
                with open(self.store.local_path(row.stored_path), "rb") as f:
                    found[row.file_name] = f.read()
            return found

    def position(self, run_id: int) -> int | None:
        with self.session_factory() as db:
            return queue_position(db, db.get(Run, run_id))

    def live_tokens(self) -> int:
        with self.session_factory() as db:
            return len(db.scalars(select(TokenTenant)).all())

    async def halt(self, engine: JobEngine, run_id: int) -> None:
        with self.session_factory() as db:
            await engine.halt(db, db.get(Run, run_id))

    def close(self):
        for engine in self.engines:
            pool = getattr(engine, "result_pool", None)
            if pool is not None:
                pool.shutdown()
        self.db_engine.dispose()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


async def until(predicate, what: str, engine: JobEngine | None = None, timeout: float = 5.0):
    """Poll ``predicate`` (calling ``engine.watch()`` between tries when given) until it is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if engine is not None:
            await engine.watch()
        await asyncio.sleep(0.01)


async def admitted(world: World, engine: JobEngine, run_id: int) -> Run:
    """``schedule`` until the run runs (its preparation and start are tasks of the engine)."""
    await engine.schedule()
    return await until(lambda: (r := world.run(run_id)).status == st.RUNNING and r, f"run {run_id} to run")


async def ended(world: World, engine: JobEngine, run_id: int) -> Run:
    return await until(lambda: (r := world.run(run_id)).phase == st.ENDED and r, f"run {run_id} to end", engine)


async def test_admission_runs_what_fits_and_queues_what_is_over_quota(world):
    engine = world.new_engine()
    first, second = world.queue("first", cpu=2, gpu=1), world.queue("second", cpu=2)
    run = await admitted(world, engine, first)
    assert (run.status, run.phase, st.status_type(run.status)) == ("Running", "running", "Running")
    assert run.started_at is not None and run.completed_at is None
    assert (run.node, run.gpu_ids) == ("node-a", "0")
    assert run.run_token_id and world.live_tokens() == 1  # KQI_TOKEN issued for the run
    spec = world.executor.specs[f"training-{first}"]
    assert spec.env["TRAINING_ID"] == str(first) and spec.env["KQI_SERVER"] == SERVER_URL
    assert spec.env["CUDA_VISIBLE_DEVICES"] == "0" and spec.gpus == [0] and spec.workdir == "/kqi/git"
    assert {m.target for m in spec.mounts} == {"/kqi/git", "/kqi/input", "/kqi/output", "/kqi/attach"}

    waiting = world.run(second)  # the tenant's quota (cpu 2) is taken
    assert (waiting.status, waiting.phase, waiting.node, waiting.started_at) == ("Pending", "queued", None, None)
    assert world.position(second) == 1
    await engine.schedule()
    assert world.run(second).status == "Pending" and f"training-{second}" not in world.executor.runs

    # the first one's end frees the quota: the second is admitted at the next pass
    world.executor.finish(f"training-{first}")
    await ended(world, engine, first)
    run = await admitted(world, engine, second)
    assert run.node == "node-a" and world.position(second) is None


@pytest.mark.parametrize("exit_code, oom_killed, status, status_type", [
    (0, False, "Completed", "Closed"),
    (3, False, "Failed", "Failed"),
    (137, True, "OOMKilled", "Failed"),
])
async def test_a_finished_run_gets_its_status_its_log_and_loses_its_token(world, exit_code, oom_killed, status,
                                                                          status_type):
    engine = world.new_engine()
    run_id = world.queue("job")
    await admitted(world, engine, run_id)
    world.executor.finish(f"training-{run_id}", exit_code=exit_code, oom_killed=oom_killed, log="the end\n")
    run = await ended(world, engine, run_id)
    assert (run.status, st.status_type(run.status), run.phase) == (status, status_type, "ended")
    assert run.completed_at is not None and run.completed_at >= run.started_at
    assert run.condition_note is None
    assert world.files(run_id) == {f"training_stdout_stderr_{run_id}.log": f"log of training-{run_id}\nthe end\n"
                                   .encode()}
    await until(lambda: world.live_tokens() == 0, "the run token to be revoked")
    assert world.run(run_id).run_token_id is None
    assert world.hub.calls == []  # a training's end needs nothing of the hub


async def test_halting_a_queued_run_kills_it_at_once(world):
    engine = world.new_engine()
    running, queued = world.queue("holds-quota", cpu=2), world.queue("waits", cpu=2)
    await admitted(world, engine, running)
    await world.halt(engine, queued)
    run = world.run(queued)
    assert (run.status, st.status_type(run.status), run.phase) == ("Killed", "Failed", "ended")
    assert run.completed_at is not None and run.started_at is None and run.node is None
    assert f"training-{queued}" not in world.executor.halts and f"training-{queued}" not in world.executor.runs
    await engine.schedule()
    assert world.run(queued).status == "Killed"  # not admitted later


async def test_halting_a_running_run_asks_the_executor_and_it_is_killed_when_it_ends(world):
    engine = world.new_engine()
    run_id = world.queue("long")
    key = f"training-{run_id}"
    await admitted(world, engine, run_id)
    await world.halt(engine, run_id)
    assert world.executor.halts == [key]
    assert world.run(run_id).status == "Running"  # until the executor says it ended
    await engine.watch()
    assert world.run(run_id).status == "Running"
    world.executor.finish(key, exit_code=143)  # SIGTERM's exit: a halt wins over it
    run = await ended(world, engine, run_id)
    assert (run.status, st.status_type(run.status)) == ("Killed", "Failed")
    assert f"training_stdout_stderr_{run_id}.log" in world.files(run_id)


async def test_a_lost_run_is_failed_with_a_lost_note(world):
    engine = world.new_engine()
    run_id = world.queue("doomed")
    await admitted(world, engine, run_id)
    world.executor.lose(f"training-{run_id}")
    run = await ended(world, engine, run_id)
    assert (run.status, st.status_type(run.status)) == ("Failed", "Failed")
    assert run.condition_note.startswith("Lost")


async def test_a_new_engine_reattaches_to_what_runs_and_fails_what_the_executor_does_not_know(world):
    engine = world.new_engine()
    alive, forgotten = world.queue("alive"), world.queue("forgotten")
    await admitted(world, engine, alive)
    await admitted(world, engine, forgotten)
    # the service restarts; meanwhile the executor lost every trace of one run (another machine, a wiped disk)
    del world.executor.runs[f"training-{forgotten}"]
    again = world.new_engine()
    await again.reattach()
    run = world.run(alive)
    assert (run.status, run.phase, run.node) == ("Running", "running", "node-a")
    run = world.run(forgotten)
    assert (run.status, st.status_type(run.status), run.phase) == ("Failed", "Failed", "ended")
    assert run.condition_note and run.condition_note.startswith("Lost"), run.condition_note
    assert run.completed_at is not None
    # the new engine follows the re-attached run to its end
    world.executor.finish(f"training-{alive}", exit_code=0)
    assert (await ended(world, again, alive)).status == "Completed"


async def test_a_running_run_the_executor_forgets_while_the_service_runs_is_failed(world):
    engine = world.new_engine()
    run_id = world.queue("vanishes")
    await admitted(world, engine, run_id)
    del world.executor.runs[f"training-{run_id}"]
    run = await until(lambda: (r := world.run(run_id)).phase == st.ENDED and r, "the run to end", engine, timeout=1)
    assert run.status == "Failed" and run.condition_note.startswith("Lost")


async def test_a_run_that_finished_while_the_service_was_down_ends_after_reattach(world):
    engine = world.new_engine()
    run_id = world.queue("quick")
    await admitted(world, engine, run_id)
    world.executor.finish(f"training-{run_id}", exit_code=3)
    again = world.new_engine()
    await again.reattach()
    assert world.run(run_id).status == "Running"  # its end is recorded by the watch, with its results
    run = await ended(world, again, run_id)
    assert run.status == "Failed" and f"training_stdout_stderr_{run_id}.log" in world.files(run_id)


async def test_a_run_the_executor_refuses_to_start_ends_in_error_with_the_reason(world, monkeypatch):
    engine = world.new_engine()
    run_id = world.queue("refused")

    def refuse(spec):
        raise RuntimeError("no sandbox tool on this host")

    monkeypatch.setattr(world.executor, "start", refuse)
    await engine.schedule()
    run = await until(lambda: (r := world.run(run_id)).phase == st.ENDED and r, "the run to end")
    assert (run.status, st.status_type(run.status)) == ("Error", "Error")
    assert "no sandbox tool on this host" in run.condition_note
    await until(lambda: world.live_tokens() == 0, "the run token to be revoked")


async def test_the_engine_loop_runs_a_queued_run_to_its_end_when_kicked(world):
    """``start`` and ``kick`` as the service uses them: no direct call of the passes."""
    engine = world.new_engine()
    engine.poll_seconds = 0.05
    engine.start()
    try:
        run_id = world.queue("looped")
        engine.kick()
        await until(lambda: world.run(run_id).status == "Running", "the loop to start the run")
        world.executor.finish(f"training-{run_id}")
        run = await until(lambda: (r := world.run(run_id)).phase == st.ENDED and r, "the loop to end it")
        assert run.status == "Completed" and run.completed_at is not None
    finally:
        await stop_loop(engine)


async def stop_loop(engine: JobEngine) -> None:
    """Cancel the engine's loop task; again while it goes on (Python 3.11's wait_for can swallow a cancel).

    The engine has no stop (the service never stops its loop), so this reaches for its task.
    """
    task = getattr(engine, "_task", None)
    for _ in range(100):
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task], timeout=0.05)
    raise AssertionError("the engine's loop did not stop when cancelled")



def test_the_fake_keeps_to_the_executor_contract(tmp_path):
    fake = FakeExecutor(str(tmp_path))
    with pytest.raises(RunNotFound):
        fake.status("training-1")
    fake.start(RunSpec("training-1", "true"))
    with pytest.raises(RunExists):
        fake.start(RunSpec("training-1", "true"))
    assert fake.running_runs() == ["training-1"] and fake.run_ids() == ["training-1"]
    with pytest.raises(RunActive):
        fake.cleanup("training-1")
    assert fake.halt("training-1") is True and fake.status("training-1").halted
    fake.finish("training-1", exit_code=143)
    assert fake.running_runs() == [] and fake.halt("training-1") is False
    fake.cleanup("training-1")
    assert fake.run_ids() == [] and utcnow() is not None
