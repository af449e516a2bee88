"""The per-run supervisor: ``python -m kqi_services.executor.supervisor RUN_DIR``.

One small process per run, started detached by the local executor (a new
session, re-parented to init), so a run outlives the service that started it
and a restarted service re-attaches through the files below. It reads
``spec.json``, makes the run's cgroup, starts the sandbox with stdout and
stderr appended to the log, waits, and leaves the result in ``status.json``.

Files of a run directory:

``spec.json``       the ``RunSpec``; ``options.json`` the executor's sandbox options
``supervisor.pid``  this process: its pid and start time (alive while ``/proc/PID/stat`` shows that start time)
``running.json``    written once the sandbox runs: its pid, start time, cgroup, notes
``status.json``     the result: {state: "finished", exit_code, signal, oom_killed, halted, error, …}
``halt``            a halt was asked (the executor also sends this process SIGTERM)

The sandbox joins the cgroup before it executes: the forked child writes its
own pid to ``cgroup.procs`` (``preexec_fn``) before ``exec``, so bubblewrap
and everything it starts are born inside and no process can escape between
start and join. A halt sends SIGTERM to every process of the run (the
cgroup's members, else the sandbox's PID namespace), waits the spec's grace
period, then SIGKILLs whatever is left, repeatedly until the cgroup is empty.
The sandbox's own init is tied to this process (``--die-with-parent`` /
``--kill-child`` and a parent-death signal), so killing the supervisor takes
the whole run down with it: a run is never left without its supervisor.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

from .cgroups import RunCgroup, is_zombie_or_gone
from .netns import NetworkUnavailable, PrivateNetwork, Relay, loopback_source, start_outside_network
from .sandbox import (
    OUTSIDE_RESOLV_CONF,
    RESOLV_CONF,
    SandboxUnavailable,
    bwrap_invocation,
    probe_host,
    sandbox_command,
    unshare_environment,
)
from .spec import DEFAULT_PATH, RunSpec

MODULE = "kqi_services.executor.supervisor"
SPEC_FILE = "spec.json"
OPTIONS_FILE = "options.json"
PID_FILE = "supervisor.pid"
RUNNING_FILE = "running.json"
STATUS_FILE = "status.json"
HALT_FILE = "halt"
ROOT_DIR = "root"
SUPERVISOR_LOG = "supervisor.log"
POLL_S = 0.05
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_atomic(path: str, data: dict, durable: bool = False) -> None:
    """Write ``data`` so that readers see the old file or the whole new one.

    ``durable`` also syncs it to disk first (for results that must survive a
    machine crash; files that only matter while the machine is up skip it).
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, ``/proc/PID/stat`` field 22), or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def supervisor_pid(run_dir: str) -> int | None:
    """The pid of the run's live supervisor, or None (no pid file, gone, a zombie or a reused pid).

    The pid file holds the pid and its start time, so a pid the kernel gave
    to another process since is not taken for the supervisor.
    """
    try:
        with open(os.path.join(run_dir, PID_FILE)) as f:
            pid_text, started = (f.read().split() + [""])[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if started and process_start_time(pid) == started and not is_zombie_or_gone(pid):
        return pid
    return None


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def namespace_pids(sandbox_pid: int) -> set[int]:
    """Processes in the PID namespace the sandbox process created (when no cgroup tracks them)."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    children = [p for p in pids if _parent_pid(p) == sandbox_pid]
    namespaces = set()
    for child in children:
        try:
            namespaces.add(os.readlink(f"/proc/{child}/ns/pid"))
        except OSError:
            pass
    namespaces.discard(os.readlink("/proc/self/ns/pid"))
    found = set()
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") in namespaces:
                found.add(pid)
        except OSError:
            pass
    return found



def cgroup_name(spec) -> str:
    """The run's cgroup name: its id plus a hash of its run dir, so that two platforms on one
    host (each numbering runs from 1) never share, and so never kill, each other's cgroups."""
    return f"{spec.run_id}-{hashlib.sha256(spec.run_dir.encode()).hexdigest()[:12]}"

class Supervisor:
    """Runs one run directory's spec to its end."""

    def __init__(self, run_dir: str):
        self.run_dir = os.path.abspath(run_dir)
        self.halt_requested = False
        self.spec: RunSpec | None = None
        self.cgroup = RunCgroup()
        self.notes: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.started_at: str | None = None
        self.network: PrivateNetwork | None = None
        self.outside: subprocess.Popen | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def _on_signal(self, signum, frame):
        self.halt_requested = True

    def _halt_asked(self) -> bool:
        return self.halt_requested or os.path.exists(self.path(HALT_FILE))

    def _child_setup(self):
        """In the forked child, before exec: die with this process, join the run's cgroup."""
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for procs in self.cgroup.procs_files:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        if self.network is not None:
            self.network.enter()

    def _prepare_network(self, spec: RunSpec) -> RunSpec:
        """The run's own network namespace and its relay (``netns.py``); the spec the sandbox gets.

        Where no namespace can be made (not root) the run shares the host's
        network, and its log says so.
        """
        if not spec.prepared_network:
            return spec
        try:
            self.network = PrivateNetwork.create()
        except NetworkUnavailable as e:
            self.notes.append(f"a network namespace of its own ({e}): the run shares the host's network")
            return replace(spec, network="host")
        relay = Relay(self.network, spec.forwards, loopback_source(spec.run_dir or spec.run_id))
        relay.bind()
        relay.start()
        if spec.network == "outside":
            slirp = shutil.which("slirp4netns")
            if not slirp:
                self.notes.append("the outside network (slirp4netns is not installed): only the forwards are reachable")
            else:
                with open(self.path(RESOLV_CONF), "w") as f:
                    f.write(OUTSIDE_RESOLV_CONF)
                self.outside = start_outside_network(self.network, slirp)
        return spec

    def run(self) -> int:
        # handlers first: the executor signals only a supervisor whose pid file exists
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with open(self.path(PID_FILE) + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {process_start_time(os.getpid())}\n")
        os.replace(self.path(PID_FILE) + ".tmp", self.path(PID_FILE))
        result = {"exit_code": None, "signal": None, "error": ""}
        oom_before = None
        try:
            spec = self.spec = RunSpec.from_dict(read_json(self.path(SPEC_FILE)) or {})
            options = read_json(self.path(OPTIONS_FILE)) or {}
            if options.get("cgroups", True):
                self.cgroup = RunCgroup.create(cgroup_name(spec), spec.cpu, spec.memory_bytes,
                                               spec.pids_max, parent=options.get("cgroup_parent", ""))
            else:
                self.cgroup = RunCgroup(notes=["cgroups are turned off: memory, CPU and process limits are "
                                               "not enforced and OOM kills are not detected"])
            oom_before = self.cgroup.oom_kill_count()
            self.notes += self.cgroup.notes
            result.update(self._run_sandbox(spec, options))
        except Exception as e:  # noqa: BLE001 - the platform could not run it: say why in the status
            result["error"] = f"{type(e).__name__}: {e}"
        finally:
            self._finish(result, oom_before)
        return 0

    def _run_sandbox(self, spec: RunSpec, options: dict) -> dict:
        missing = [m.host_path for m in spec.mounts if not os.path.exists(m.host_path)]
        if missing:
            return {"error": "mount sources do not exist: " + ", ".join(missing)}
        root_dir = self.path(ROOT_DIR)
        os.makedirs(root_dir, exist_ok=True)
        spec = self._prepare_network(spec)
        try:
            kind, argv, sandbox_notes = sandbox_command(
                spec, probe_host(), root_dir, options.get("sandbox", "auto"),
                tuple(options.get("extra_ro_paths", ())))
        except SandboxUnavailable as e:
            return {"error": str(e)}
        self.notes += sandbox_notes
        os.makedirs(os.path.dirname(spec.log_file), exist_ok=True)
        env = {"PATH": DEFAULT_PATH, "LC_ALL": "C.UTF-8"}
        pass_fds: tuple[int, ...] = ()
        if kind == "bwrap":  # its options (paths, variables, tokens) travel in a descriptor
            options_fd = os.memfd_create("kqi-bwrap-args", 0)
            argv, bwrap_options = bwrap_invocation(argv, options_fd)
            os.write(options_fd, bwrap_options)
            os.lseek(options_fd, 0, os.SEEK_SET)
            pass_fds = (options_fd,)
        else:
            env = unshare_environment(spec)
        with open(spec.log_file, "ab", buffering=0) as log:
            for note in self.notes:
                log.write(f"[kqi] not enforced: {note}\n".encode())
            if self._halt_asked():
                return {"halted": True}
            try:
                proc = self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             cwd="/", env=env, close_fds=True, pass_fds=pass_fds,
                                             preexec_fn=self._child_setup)
            finally:
                for fd in pass_fds:
                    os.close(fd)
        self.started_at = now_iso()
        write_json_atomic(self.path(RUNNING_FILE), {
            "state": "running", "supervisor_pid": os.getpid(), "sandbox_pid": proc.pid,
            "sandbox": kind, "started_at": self.started_at, "cgroup": self.cgroup.to_dict(),
            "notes": self.notes})
        return self._wait(proc, spec.halt_grace_s)

    def _run_pids(self, proc: subprocess.Popen) -> set[int]:
        if self.cgroup.version:
            return self.cgroup.pids()
        return namespace_pids(proc.pid)

    def _wait(self, proc: subprocess.Popen, grace_s: float) -> dict:
        """Wait for the sandbox; on a halt, SIGTERM the run, then SIGKILL it after ``grace_s``."""
        halted, kill_at = False, None
        try:  # readable when the sandbox exits: its end is seen at once, not at the next poll
            exited = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            exited = None
        while proc.poll() is None:
            if not halted and self._halt_asked():
                halted, kill_at = True, time.monotonic() + grace_s
                # not the sandbox process itself: its death would SIGKILL the rest at once
                for pid in self._run_pids(proc) - {proc.pid}:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            if kill_at is not None and time.monotonic() >= kill_at:
                self._kill_run(proc)
                kill_at = None
            if exited is None:
                time.sleep(POLL_S)
            else:
                select.select([exited], [], [], POLL_S)
        if exited is not None:
            os.close(exited)
        rc = proc.returncode
        return {"exit_code": rc if rc >= 0 else 128 - rc, "signal": -rc if rc < 0 else None,
                "halted": halted or self._halt_asked()}

    def _kill_run(self, proc: subprocess.Popen) -> None:
        if self.cgroup.version:
            self.cgroup.kill_all()
        else:
            for pid in namespace_pids(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if proc.poll() is None:
            proc.kill()

    def _finish(self, result: dict, oom_before: int | None) -> None:
        """Kill what is left, read the OOM counter, remove the cgroup, write status.json."""
        if self.proc is not None and self.proc.poll() is None:
            self._kill_run(self.proc)
            self.proc.wait()
        if self.cgroup.version and not self.cgroup.kill_all():
            self.notes.append("some processes of the run could not be killed")
        if self.outside is not None:
            self.outside.kill()
            self.outside.wait()
        oom_after = self.cgroup.oom_kill_count()
        if self.cgroup.version and not self.cgroup.remove():
            self.notes.append("the run's cgroup could not be removed")
        try:
            os.rmdir(self.path(ROOT_DIR))
        except OSError:
            pass
        if result.get("error") and self.spec is not None:
            try:
                with open(self.spec.log_file, "a") as log:
                    log.write(f"[kqi] error: {result['error']}\n")
            except OSError:
                pass
        write_json_atomic(self.path(STATUS_FILE), durable=True, data={
            "state": "finished",
            "exit_code": result.get("exit_code"),
            "signal": result.get("signal"),
            "oom_killed": bool(oom_after and oom_after > (oom_before or 0)),
            "halted": bool(result.get("halted")),
            "error": result.get("error", ""),
            "started_at": self.started_at,
            "finished_at": now_iso(),
            "notes": self.notes,
        })


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print(f"usage: python -m {MODULE} RUN_DIR", file=sys.stderr)
        return 2
    return Supervisor(argv[0]).run()


if __name__ == "__main__":
    sys.exit(main())
