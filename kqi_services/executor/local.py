"""The embedded executor: runs on this host, each in a sandbox under a supervisor of its own.

``LocalExecutor(runs_root)`` keeps one directory per run below ``runs_root``
(``supervisor.py`` lists its files). ``start`` writes the spec and launches
``python -m kqi_services.executor.supervisor RUN_DIR`` detached: through
``/bin/sh -c '… &'`` in a new session, so the supervisor is re-parented to
init at once and is neither a child of the service nor in its session or
process group; the service neither waits on it nor is waited on by it. A
fresh executor on the same ``runs_root`` (after a service restart) finds
everything from the files: a live supervisor (checked by its pid file and
``/proc/PID/cmdline``) means starting or running, ``status.json`` means
finished, neither means lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import kqi_services

from .base import Executor, ExecutorError, RunActive, RunExists, RunHandle, RunNotFound, RunState
from .cgroups import RunCgroup
from .forkserver import ForkServer, ForkServerError
from .spec import DEFAULT_PATH, RUN_ID_PATTERN, RunSpec, SpecError, check_absolute
from .supervisor import (
    HALT_FILE,
    MODULE,
    OPTIONS_FILE,
    PID_FILE,
    RUNNING_FILE,
    SPEC_FILE,
    STATUS_FILE,
    SUPERVISOR_LOG,
    read_json,
    supervisor_pid,
    write_json_atomic,
)

# Until the supervisor has written its pid file, a run is "starting", not "lost".
START_GRACE_S = 15.0


def image_notice(image: str) -> str:
    """What a run's log says first when it names an image: this executor does not run images."""
    return (f"[kqi] this platform runs jobs in its own environment: the image {image} is recorded, not used "
            "(set KQI_EXECUTOR=docker to run jobs in their images)\n")


class LocalExecutor(Executor):
    """Runs specs in bubblewrap sandboxes (else ``unshare``) on this host.

    Args:
        runs_root: the directory that holds one directory per run.
        sandbox: ``"auto"`` (bubblewrap when installed), ``"bwrap"`` or ``"unshare"``.
        cgroup_parent: the cgroup below which runs get theirs (absolute in
            each hierarchy); default ``/kqi`` on cgroup v2 and
            ``<the service's cgroup>/kqi`` on v1.
        extra_ro_paths: host paths every run sees read-only at the same
            place (a Python or conda installation outside ``/usr``).
        cgroups: False to run without per-run cgroups (no limits, no OOM
            detection; halts then signal the sandbox's PID namespace).
        python: the interpreter that runs the supervisors.
    """

    name = "local"

    def __init__(self, runs_root: str, sandbox: str = "auto", cgroup_parent: str = "",
                 extra_ro_paths: tuple[str, ...] = (), cgroups: bool = True, python: str = sys.executable):
        if sandbox not in ("auto", "bwrap", "unshare"):
            raise ValueError(f"unknown sandbox {sandbox!r}")
        for path in extra_ro_paths:
            check_absolute(path, "extra read-only path")
        self.runs_root = os.path.abspath(runs_root)
        self.sandbox = sandbox
        self.cgroup_parent = cgroup_parent
        self.extra_ro_paths = tuple(extra_ro_paths)
        self.cgroups = cgroups
        self.python = python
        self.fork_server = ForkServer(python, self._supervisor_env())

    def run_dir(self, run_id: str) -> str:
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
            raise RunNotFound(f"no run {run_id!r}")
        return os.path.join(self.runs_root, run_id)

    def _existing_run_dir(self, run_id: str) -> str:
        run_dir = self.run_dir(run_id)
        if not os.path.isfile(os.path.join(run_dir, SPEC_FILE)):
            raise RunNotFound(f"no run {run_id!r}")
        return run_dir

    def _spec(self, run_id: str) -> RunSpec:
        return RunSpec.from_dict(read_json(os.path.join(self._existing_run_dir(run_id), SPEC_FILE)) or {})

    def start(self, spec: RunSpec) -> RunHandle:
        spec.validate()
        run_dir = self.run_dir(spec.run_id)
        if spec.run_dir and spec.run_dir != run_dir:
            raise SpecError(f"run_dir must be {run_dir} on this executor")
        spec = replace(spec, run_dir=run_dir)
        os.makedirs(self.runs_root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(run_dir, 0o700)
        except FileExistsError:
            raise RunExists(f"run {spec.run_id} exists") from None
        write_json_atomic(os.path.join(run_dir, OPTIONS_FILE), data={
            "sandbox": self.sandbox, "cgroup_parent": self.cgroup_parent,
            "extra_ro_paths": list(self.extra_ro_paths), "cgroups": self.cgroups})
        write_json_atomic(os.path.join(run_dir, SPEC_FILE), {**spec.to_dict(), "registry_auth": None})  # no secrets on disk
        if spec.image:  # said plainly, never silently: the sandbox runs the host's own environment
            with open(spec.log_file, "a") as log:
                log.write(image_notice(spec.image))
        self._launch(run_dir)
        deadline = time.monotonic() + START_GRACE_S
        while (pid := supervisor_pid(run_dir)) is None:
            if os.path.exists(os.path.join(run_dir, STATUS_FILE)):
                break
            if time.monotonic() > deadline:
                raise ExecutorError(f"the supervisor of {spec.run_id} did not start; see "
                                    f"{os.path.join(run_dir, SUPERVISOR_LOG)}")
            time.sleep(0.002)
        return RunHandle(spec.run_id, self.name, str(pid or ""), spec.log_file)

    @staticmethod
    def _supervisor_env() -> dict[str, str]:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(kqi_services.__file__)))
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        return {"PATH": os.environ.get("PATH", DEFAULT_PATH), "PYTHONPATH": python_path, "LC_ALL": "C.UTF-8"}

    def _launch(self, run_dir: str) -> None:
        """Start the supervisor detached (see the module docstring)."""
        try:
            self.fork_server.launch(run_dir)
            return
        except ForkServerError:
            pass
        env = self._supervisor_env()
        subprocess.run(
            ["/bin/sh", "-c", 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 &', "kqi-launch",
             os.path.join(run_dir, SUPERVISOR_LOG), self.python, "-m", MODULE, run_dir],
            env=env, cwd="/", start_new_session=True, check=True, timeout=30,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self, run_id: str) -> RunState:
        run_dir = self._existing_run_dir(run_id)
        for attempt in range(2):
            finished = read_json(os.path.join(run_dir, STATUS_FILE))
            if finished is not None:
                return RunState(
                    run_id, "finished", exit_code=finished.get("exit_code"), signal=finished.get("signal"),
                    oom_killed=bool(finished.get("oom_killed")), halted=bool(finished.get("halted")),
                    error=finished.get("error") or "", notes=list(finished.get("notes") or []),
                    started_at=finished.get("started_at"), finished_at=finished.get("finished_at"))
            if attempt == 0 and supervisor_pid(run_dir) is not None:
                running = read_json(os.path.join(run_dir, RUNNING_FILE))
                if running is None:
                    return RunState(run_id, "starting")
                return RunState(run_id, "running", notes=list(running.get("notes") or []),
                                started_at=running.get("started_at"))
            # the supervisor may have written status.json just before it exited: read once more
        if not os.path.exists(os.path.join(run_dir, PID_FILE)):
            age = time.time() - os.path.getmtime(os.path.join(run_dir, SPEC_FILE))
            if age < START_GRACE_S:
                return RunState(run_id, "starting")
        running = read_json(os.path.join(run_dir, RUNNING_FILE)) or {}
        return RunState(run_id, "lost", started_at=running.get("started_at"),
                        error="the run's supervisor ended without a result", notes=list(running.get("notes") or []))

    def halt(self, run_id: str) -> bool:
        run_dir = self._existing_run_dir(run_id)
        with open(os.path.join(run_dir, HALT_FILE), "w"):
            pass
        pid = supervisor_pid(run_dir)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def run_ids(self) -> list[str]:
        try:
            names = os.listdir(self.runs_root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if RUN_ID_PATTERN.match(n)
                      and os.path.isfile(os.path.join(self.runs_root, n, SPEC_FILE)))

    def running_runs(self) -> list[str]:
        return [r for r in self.run_ids() if self.status(r).phase in ("starting", "running")]

    def log_path(self, run_id: str) -> str:
        return self._spec(run_id).log_file

    def shell_target(self, run_id: str):
        """The sandbox process a shell into the running ``run_id`` enters, with its cgroup and environment."""
        from .shell import ShellUnavailable, find_shell_target

        run_dir = self._existing_run_dir(run_id)
        phase = self.status(run_id).phase
        if phase != "running":
            raise ShellUnavailable(f"run {run_id} is {phase}, not running")
        running = read_json(os.path.join(run_dir, RUNNING_FILE)) or {}
        spec = self._spec(run_id)
        cgroup = RunCgroup.from_dict(running.get("cgroup") or {})
        return find_shell_target(run_id, running, spec.sandbox_env(), spec.workdir,
                                 tuple(p for p in cgroup.procs_files if os.path.exists(p)))

    def cleanup(self, run_id: str) -> None:
        run_dir = self._existing_run_dir(run_id)
        if self.status(run_id).phase in ("starting", "running"):
            raise RunActive(f"run {run_id} is still {self.status(run_id).phase}")
        running = read_json(os.path.join(run_dir, RUNNING_FILE))
        if running and running.get("cgroup"):
            leftover = RunCgroup.from_dict(running["cgroup"])
            leftover.paths = {k: p for k, p in leftover.paths.items() if os.path.isdir(p)}
            if leftover.paths:
                leftover.kill_all()
                leftover.remove()
        shutil.rmtree(run_dir)
