"""An interactive shell inside a running run's sandbox (the original's [Shell起動]).

``find_shell_target`` finds, from a run's ``running.json``, the process whose
namespaces and root the shell enters; ``open_shell`` starts ``/bin/bash -i``
(else ``/bin/sh -i``) there on a pseudo-terminal and returns a
``ShellProcess`` (the terminal's master side, resize, exit watch, terminate).

Which process: the supervisor's ``sandbox_pid`` is bubblewrap's (or
``unshare``'s) outer process, still in the host's PID namespace — entering
it would give a host shell. Its child is the init of the sandbox's PID
namespace; the init's oldest child is the run's command (PID 2 under
bubblewrap; under the ``unshare`` fallback the ``chroot``ed command, whose
init keeps the host's root). The target is that command — the first child
whose root is not the host's; never the init, which under bubblewrap holds
an unfinished root (the host's under ``/oldroot``) until it forks the
command — and the shell enters all of its namespaces that differ from the
service's (net, user, cgroup, IPC, UTS, time, PID,
mount: the network first, as the run's own network namespace belongs to the
host's user namespace) and its root.

How it starts: the service opens the target's namespace files and root as
descriptors, checks that the target is still the same process (start time),
allocates the terminal in the sandbox's own ``devpts`` (``/dev/ptmx`` below
the target's root, so ``tty`` inside says ``/dev/pts/N``; the host's when that
fails) and runs ``python -m kqi_services.executor.shellhelper CONFIG_FD``
with the descriptors and the terminal as stdin/stdout/stderr. That helper
(``shellhelper``, a program of its own) writes its own pid to the run's
``cgroup.procs`` files first (so it and everything it starts are counted
against the run's limits and die with a halt), enters the namespaces (the
network, then the user's), ``chroot``s to the target's root, closes every
other descriptor and forks: the child — in the run's PID namespace — makes
itself a session leader with the terminal as its controlling terminal, drops
every capability (bounding, inheritable and ambient sets) and sets
no-new-privileges as bubblewrap's ``--cap-drop ALL`` does for the run, and
executes the shell with the run's environment (``COLUMNS``/``LINES`` left
out: the terminal has a real size). The helper reports the shell's pid and
exits; the sandbox's init adopts the shell. Nothing secret goes on a command
line: the configuration travels in a memfd.

Ending: ``terminate`` hangs up the terminal and signals every process of the
shell — in the run's PID namespace and either in the shell's session or
carrying its ``KQI_SHELL_ID`` (processes that ``setsid`` away keep the
variable) — SIGHUP, then SIGKILL until none is left; the run's own
processes are never touched. A halt kills the shell with the rest of the
cgroup.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
import uuid
from dataclasses import dataclass, field

import kqi_services

from .base import ExecutorError
from .cgroups import is_zombie_or_gone
from .spec import DEFAULT_PATH

#: the helper program run inside the run's namespaces (``python -m``)
MODULE = "kqi_services.executor.shellhelper"
# the network first: a run's own network namespace belongs to the host's user namespace (its supervisor
# made it), where the shell may no longer act once it is in the sandbox's; then the user namespace,
# which gives the rights to enter the namespaces it owns
NAMESPACES = ("net", "user", "cgroup", "ipc", "uts", "time", "pid", "mnt")
MARKER_VAR = "KQI_SHELL_ID"
DROPPED_VARS = ("COLUMNS", "LINES")
DEFAULT_TERM = "xterm-256color"
START_TIMEOUT_S = 20.0

TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431


class ShellUnavailable(ExecutorError):
    """No shell can be opened into the run now (it is not running, or its sandbox is not ready)."""


@dataclass(frozen=True)
class ShellTarget:
    """Where a shell into a running run goes.

    Attributes:
        run_id: the run.
        pid: the sandbox process whose namespaces and root the shell enters.
        start_time: its start time (``/proc/PID/stat`` field 22), to notice a reused pid.
        procs_files: the ``cgroup.procs`` files of the run's cgroup(s).
        env: the shell's environment: the run's, less ``COLUMNS``/``LINES``, with ``TERM``.
        workdir: where the shell starts (the run's working directory).
    """

    run_id: str
    pid: int
    start_time: int
    procs_files: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    def open(self, rows: int = 24, cols: int = 80) -> ShellProcess:
        """Start the shell (``open_shell``); every executor's target has this opener (``docker_shell``'s too)."""
        return open_shell(self, rows, cols)


def shell_environment(run_env: dict[str, str]) -> dict[str, str]:
    """The shell's environment from the run's (``RunSpec.sandbox_env()``)."""
    env = {k: v for k, v in run_env.items() if k not in DROPPED_VARS}
    env.setdefault("TERM", DEFAULT_TERM)
    return env


# /proc ------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _ns_inode(pid: int | str, name: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{name}").st_ino
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Live children of ``pid``, oldest first."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields and fields[0] not in ("Z", "X") and int(fields[1]) == pid:
                found.append((int(fields[19]), int(name)))
    return [p for _, p in sorted(found)]


def _root_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def find_shell_target(run_id: str, running: dict, env: dict[str, str], workdir: str,
                      procs_files: tuple[str, ...] = ()) -> ShellTarget:
    """The process of a running sandbox that a shell enters (see the module's docstring).

    Args:
        run_id: the run.
        running: its ``running.json`` (``sandbox_pid``, ``supervisor_pid``).
        env: the run's environment (``RunSpec.sandbox_env()``).
        workdir: the run's working directory.
        procs_files: the ``cgroup.procs`` files of the run's cgroup(s).

    Raises:
        ShellUnavailable: the sandbox is gone or not set up yet.
    """
    sandbox_pid = running.get("sandbox_pid")
    fields = _stat_fields(sandbox_pid) if isinstance(sandbox_pid, int) else None
    if not isinstance(sandbox_pid, int) or not fields or fields[0] in ("Z", "X") or int(fields[1]) != running.get("supervisor_pid"):
        raise ShellUnavailable(f"the sandbox of {run_id} is not running")
    own_pid_ns = _ns_inode("self", "pid")
    inits = [c for c in _children(sandbox_pid) if _ns_inode(c, "pid") not in (None, own_pid_ns)]
    host_root = _root_id("/")
    if inits:
        init = inits[0]
        # never the init itself: under bubblewrap it builds the root (the host's under /oldroot)
        # until it forks the command, its first child
        for pid in _children(init):
            root = _root_id(f"/proc/{pid}/root")
            begun = start_time(pid)
            if root is not None and root != host_root and begun is not None \
                    and _ns_inode(pid, "pid") == _ns_inode(init, "pid"):
                return ShellTarget(run_id, pid, begun, tuple(procs_files), shell_environment(env), workdir)
    raise ShellUnavailable(f"the sandbox of {run_id} is still being set up; try again in a moment")


# starting ---------------------------------------------------------------------------------


def _open_namespaces(pid: int) -> list[tuple[str, int]]:
    """Descriptors of ``pid``'s namespaces that differ from this process's, in the order to enter them."""
    opened = []
    try:
        for name in NAMESPACES:
            try:
                fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # a kernel without that namespace type
                continue
            if os.fstat(fd).st_ino == _ns_inode("self", name):
                os.close(fd)
            else:
                opened.append((name, fd))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def _open_terminal(root_fd: int) -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal: in the sandbox's devpts when it has one.

    ``dev`` and ``dev/pts`` are mount points in both sandboxes (the run cannot
    replace them) and ``O_NOFOLLOW`` refuses a link in place of ``ptmx``: the
    service, root on the host, opens nothing else a run could point it to.
    """
    try:
        master = os.open("dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW,
                         dir_fd=root_fd)
    except OSError:
        master = None
    if master is not None:
        try:
            if not stat.S_ISCHR(os.fstat(master).st_mode):
                raise OSError(errno.ENOTTY, "not a pseudo-terminal multiplexer")
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            return master, fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            os.close(master)
    master, slave = os.openpty()
    os.set_blocking(master, False)
    return master, slave


def _read_report(fd: int, proc: subprocess.Popen, timeout: float) -> str:
    """What the helper wrote on its report pipe until every writer closed it."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            proc.wait()
            raise ExecutorError("the shell did not start in time")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return data.decode(errors="replace")
            data += chunk


def open_shell(target: ShellTarget, rows: int = 24, cols: int = 80,
               python: str = sys.executable) -> ShellProcess:
    """Start an interactive shell inside ``target``'s sandbox (blocking; well under a second).

    Raises:
        ShellUnavailable: the target process is gone (the run ended meanwhile).
        ExecutorError: the shell could not be started.
    """
    marker = uuid.uuid4().hex
    closing: list[int] = []
    try:
        namespaces = _open_namespaces(target.pid)
        closing += [fd for _, fd in namespaces]
        root_fd = os.open(f"/proc/{target.pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        closing.append(root_fd)
    except OSError:
        for fd in closing:
            os.close(fd)
        raise ShellUnavailable(f"{target.run_id} is not running any more") from None
    master = None
    try:
        # the descriptors are the target's only if it is still the process found before
        if start_time(target.pid) != target.start_time or is_zombie_or_gone(target.pid):
            raise ShellUnavailable(f"{target.run_id} is not running any more")
        names = {name for name, _ in namespaces}
        root = os.fstat(root_fd)
        if not {"pid", "mnt"} <= names or (root.st_dev, root.st_ino) == _root_id("/"):
            raise ExecutorError(f"refusing a shell into {target.run_id}: its process is not in a sandbox")
        master, slave = _open_terminal(root_fd)
        closing.append(slave)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        pid_ns = os.fstat(dict((n, fd) for n, fd in namespaces)["pid"]).st_ino
        report_r, report_w = os.pipe()
        closing += [report_r, report_w]
        config_fd = os.memfd_create("kqi-shell-config", os.MFD_CLOEXEC)
        closing.append(config_fd)
        os.write(config_fd, json.dumps({
            "procs": list(target.procs_files), "namespaces": namespaces, "root": root_fd,
            "report": report_w, "workdir": target.workdir,
            "env": {**target.env, MARKER_VAR: marker},
        }).encode())
        os.lseek(config_fd, 0, os.SEEK_SET)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(kqi_services.__file__)))
        try:
            proc = subprocess.Popen(
                [python, "-m", MODULE, str(config_fd)], stdin=slave, stdout=slave, stderr=slave, cwd="/",
                pass_fds=[config_fd, report_w, root_fd] + [fd for _, fd in namespaces],
                env={"PATH": DEFAULT_PATH, "PYTHONPATH": package_root, "LC_ALL": "C.UTF-8"})
        except OSError as e:
            raise ExecutorError(f"cannot start the shell helper: {e}") from None
        for fd in closing[:]:
            if fd != report_r:
                os.close(fd)
                closing.remove(fd)
        report = _read_report(report_r, proc, START_TIMEOUT_S)
        proc.wait(START_TIMEOUT_S)
        lines = report.splitlines()
        pids = [int(line.split()[1]) for line in lines if line.startswith("pid ")]
        errors = [line[len("error "):] for line in lines if line.startswith("error ")]
        shell = ShellProcess(master, pids[0] if pids else 0, pid_ns, marker, target.run_id)
        master = None
        if errors or not pids:
            shell.terminate(grace=0)
            raise ExecutorError("the shell could not start: " + ("; ".join(errors) or f"exit {proc.returncode}"))
        return shell
    finally:
        for fd in closing:
            os.close(fd)
        if master is not None:
            os.close(master)


class ShellProcess:
    """A shell started by ``open_shell``: its terminal, its processes, its end.

    Attributes:
        pid: the shell's pid (host numbering); it leads its own session.
        run_id: the run it is in.
    """

    def __init__(self, master: int, pid: int, pid_ns: int, marker: str, run_id: str):
        self.master: int | None = master
        self.pid = pid
        self.pid_ns = pid_ns
        self.marker = marker
        self.run_id = run_id
        self.exit_fd: int | None = None
        if pid:
            try:
                self.exit_fd = os.pidfd_open(pid)
            except (OSError, AttributeError):
                self.exit_fd = None

    def _master(self) -> int:
        """The terminal's master side; EBADF once ``close`` let go of it."""
        if self.master is None:
            raise OSError(errno.EBADF, "the shell's terminal is closed")
        return self.master

    def fileno(self) -> int:
        return self._master()

    def read(self, size: int = 65536) -> bytes | None:
        """Output of the terminal; None when none is there yet, b"" once nothing holds it open."""
        try:
            return os.read(self._master(), size)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Type ``data`` into the terminal; returns how much it took (0 when its buffer is full)."""
        try:
            return os.write(self._master(), data)
        except BlockingIOError:
            return 0

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size (the foreground job gets SIGWINCH)."""
        fcntl.ioctl(self._master(), termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def shell_alive(self) -> bool:
        return bool(self.pid) and self.pid in self.processes()

    def processes(self) -> set[int]:
        """Live processes of this shell: in the run's PID namespace, in its session or carrying its marker."""
        return shell_processes(self.pid_ns, self.pid, self.marker)

    def close(self) -> None:
        """Close the terminal (a hang-up for the shell) and the exit watch."""
        for attr in ("master", "exit_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                setattr(self, attr, None)
                os.close(fd)

    def terminate(self, grace: float = 1.0, timeout: float = 10.0) -> bool:
        """Hang up, SIGHUP every process of the shell, SIGKILL what is left after ``grace`` seconds.

        Returns whether none is left (blocking: call it off the event loop).
        """
        self.close()
        return end_processes(self.processes, grace, timeout)


def shell_processes(pid_ns: int | None, session: int, marker: str) -> set[int]:
    """Live processes of a shell: in the PID namespace ``pid_ns``, in the session ``session`` (its leader's pid)
    or carrying the shell's ``KQI_SHELL_ID`` ``marker`` (processes that ``setsid`` away keep the variable)."""
    tag = f"{MARKER_VAR}={marker}".encode()
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or _ns_inode(name, "pid") != pid_ns:
            continue
        fields = _stat_fields(int(name))
        if not fields or fields[0] in ("Z", "X"):
            continue
        if session and int(fields[3]) == session:
            found.add(int(name))
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.add(int(name))
        except OSError:
            pass
    return found


def end_processes(processes, grace: float, timeout: float) -> bool:
    """SIGHUP (and SIGCONT) what ``processes()`` lists, then SIGKILL what is left after ``grace`` seconds, until none
    is left or ``timeout`` has passed; whether none is left."""
    if grace > 0:
        _signal_all(processes(), (signal.SIGHUP, signal.SIGCONT))
        end = time.monotonic() + grace
        while time.monotonic() < end and processes():
            time.sleep(0.02)
    deadline = time.monotonic() + timeout
    while True:
        pids = processes()
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        _signal_all(pids, (signal.SIGKILL,))
        time.sleep(0.02)


def _signal_all(pids, signals) -> None:
    for pid in pids:
        for sig in signals:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
