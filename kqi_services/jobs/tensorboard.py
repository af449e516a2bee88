"""TensorBoards of trainings: one TensorBoard process per training, for a limited time.

``TensorBoardManager.start`` runs ``tensorboard`` over the ``/kqi/output`` of
a training (and of the trainings selected beside it, each shown as a run
named ``{id}-{name}``) as a child of the kqi service, in a session and
process group of its own, under the path prefix
``{service prefix}tensorboard/{id}``, so the service's proxy handler
forwards request paths unchanged.

Where it listens: in a network namespace of its own (``executor/netns.py``)
on ``127.0.0.1:6006``, relayed by a thread of the service to a unix socket
in its work directory (``tensorboard.sock``, in the service's state, mode
0700) — the only way in, used by the service's authenticated proxy. No run
of any tenant can reach it. Where no namespace can be made (not root, or no
bubblewrap) it listens on a free loopback port of the host (``--port 0``,
read from its log), as it did before runs had networks of their own.

By default it runs in a bubblewrap sandbox (``executor.sandbox.bwrap_argv``)
that sees the host's ``/usr`` and ``/etc``, the Python it runs with and the
outputs, read-only, and nothing of the service's state: TensorBoard's
plugins open paths named inside the logs (the projector's config, for one),
and symlinks in an output resolve inside the sandbox. Without bubblewrap it
does not start (503): unsandboxed, over a directory of symlinks to the
outputs, it would follow a run's symlinks to the host's files; only an admin's
``sandbox = "none"`` runs it so.

Lifecycle: ``Pending`` until it serves, ``Running``, ``Failed`` when it ended
on its own (its log tail says why); ``stop`` kills its process group.
``watch`` stops every TensorBoard whose lifetime is over and, once at
service start, kills TensorBoards an earlier service left behind (found by
their pid files). They do not outlive the service anyway: the sandbox
dies with its parent (``--die-with-parent``), the unsandboxed process
through ``setpriv --pdeathsig KILL``. A restarted service forgets them;
users start them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from traitlets import Enum, Float, Integer, List, Unicode, default
from traitlets.config import Configurable

from kqi_services.errors import Unavailable
from kqi_services.executor.netns import NetworkUnavailable, PortForward, PrivateNetwork, Relay
from kqi_services.executor.sandbox import bwrap_argv, probe_host
from kqi_services.executor.spec import DEFAULT_PATH, Mount, RunSpec

log = logging.getLogger("kqi.tensorboard")

PENDING, RUNNING, FAILED = "Pending", "Running", "Failed"
LOGDIR = "/kqi/tensorboard"
LOG_NAME = "tensorboard.log"
PID_NAME = "pid"
SOCKET_NAME = "tensorboard.sock"
PRIVATE_PORT = 6006  # inside a TensorBoard's own network namespace
SERVING_LINE = re.compile(rb"TensorBoard \S+ at http://[^\s/]+:(\d+)/")
LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class LogSource:
    """A training's output directory on the host, shown to TensorBoard as one run."""

    training_id: int
    name: str
    host_path: str

    @property
    def label(self) -> str:
        return f"{self.training_id}-{LABEL_UNSAFE.sub('-', self.name)}"


def tensorboard_argv(command: list[str], logdir: str, path_prefix: str, port: int = 0) -> list[str]:
    """TensorBoard's command line: loopback only (``port`` 0: one the OS picks), served under ``path_prefix``."""
    return [*command, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
            "--path_prefix", path_prefix.rstrip("/")]


def sandbox_spec(training_id: int, sources: list[LogSource], argv: list[str],
                 forward: PortForward | None = None) -> RunSpec:
    """The sandbox of a TensorBoard: each source read-only at ``/kqi/tensorboard/{label}``.

    With ``forward`` it runs in the network namespace prepared for it;
    without, on the host's network.
    """
    return RunSpec(
        run_id=f"tensorboard-{training_id}", command="exec " + shlex.join(argv), workdir=LOGDIR,
        mounts=[Mount(s.host_path, f"{LOGDIR}/{s.label}", read_only=True) for s in sources],
        network="private" if forward else "host", forwards=[forward] if forward else [],
    ).validate()


def serving_port(log: bytes) -> int | None:
    """The port TensorBoard announced in its log (``TensorBoard 2.x at http://127.0.0.1:PORT/…``)."""
    match = SERVING_LINE.search(log)
    return int(match.group(1)) if match else None


def remaining_time(seconds: float) -> str:
    """The contract's ``remainingTime``: ``"{d}d {h}h {m}m"``.

    >>> remaining_time(3 * 3600 + 59), remaining_time(90061), remaining_time(-5)
    ('0d 3h 0m', '1d 1h 1m', '0d 0h 0m')
    """
    minutes = max(int(seconds), 0) // 60
    return f"{minutes // 1440}d {minutes % 1440 // 60}h {minutes % 60}m"


@dataclass
class TensorBoard:
    """One TensorBoard process and what it shows."""

    training_id: int
    tenant_id: int
    mounted_ids: tuple[int, ...]
    expires_at: float
    process: subprocess.Popen
    work_dir: str
    port: int | None = None
    started_at: float = field(default_factory=time.time)
    relay: Relay | None = None  # of its own namespace; then it is reached at ``socket_path`` only

    @property
    def socket_path(self) -> str | None:
        """The unix socket the service's proxy connects to, when it has a namespace of its own."""
        return os.path.join(self.work_dir, SOCKET_NAME) if self.relay is not None else None

    @property
    def name(self) -> str:
        return f"tensorboard-{self.training_id}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.work_dir, LOG_NAME)

    @property
    def status(self) -> str:
        if self.process.poll() is not None:
            return FAILED
        if self.port is None:
            try:
                with open(self.log_path, "rb") as f:
                    self.port = serving_port(f.read(64 * 1024))
            except FileNotFoundError:
                pass
        return RUNNING if self.port else PENDING

    def remaining(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(os.fstat(f.fileno()).st_size - limit, 0))
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


class TensorBoardManager(Configurable):
    """Starts, finds, expires and stops the TensorBoards of trainings (at most one per training).

    Args:
        state_dir: where each TensorBoard keeps its log and pid file (``{state_dir}/{training id}/``).
        url_prefix: the URL path TensorBoards are served under, ending in ``/``
            (``/services/kqi/tensorboard/``); a training's is ``{url_prefix}{id}/``.
    """

    default_lifetime = Integer(
        3 * 3600, help="Seconds a TensorBoard runs when the request names no expiresIn (or 0)."
    ).tag(config=True)

    max_lifetime = Integer(
        24 * 3600, help="Most seconds a TensorBoard runs; a longer expiresIn is cut to this."
    ).tag(config=True)

    start_timeout = Float(
        30.0, help="Seconds a request waits for a starting TensorBoard to serve before answering Pending."
    ).tag(config=True)

    check_interval = Float(1.0, help="Seconds between checks for TensorBoards whose lifetime is over.").tag(
        config=True)

    sandbox = Enum(
        ["auto", "bwrap", "none"], "auto",
        help="""How TensorBoard is isolated: `bwrap` (a bubblewrap sandbox that sees only the outputs
        it shows, the Python it runs with, /usr and /etc; `auto` is the same), or `none` (unsandboxed,
        over symlinks to the outputs: it follows symlinks a run leaves there, so it can show host
        files — only for hosts without tenants to keep apart). Without bubblewrap, `auto` refuses
        to start TensorBoards.""",
    ).tag(config=True)

    command = List(
        Unicode(),
        help="""The TensorBoard command, before its options; default this Python's
        `tensorboard.main`, e.g. ["/opt/tb/bin/tensorboard"].""",
    ).tag(config=True)

    @default("command")
    def _command_default(self):
        return [sys.executable, "-m", "tensorboard.main"]

    extra_ro_paths = List(
        Unicode(),
        help="""Host paths the sandbox shows read-only at the same place so that `command` runs
        there; default this Python's environment and installation when they are outside /usr.""",
    ).tag(config=True)

    @default("extra_ro_paths")
    def _extra_ro_paths_default(self):
        roots = dict.fromkeys(os.path.realpath(p) for p in (sys.prefix, sys.base_prefix))
        return [p for p in roots if p != "/usr" and not p.startswith("/usr/")]

    def __init__(self, state_dir: str, url_prefix: str, **kwargs):
        super().__init__(**kwargs)
        self.state_dir = state_dir
        self.url_prefix = url_prefix if url_prefix.endswith("/") else url_prefix + "/"
        self.boards: dict[int, TensorBoard] = {}

    def url(self, training_id: int) -> str:
        return f"{self.url_prefix}{training_id}/"

    def lifetime(self, expires_in: int | None) -> int:
        """Seconds to run: ``expires_in``, the default when it is None or 0, at most ``max_lifetime``."""
        return min(expires_in or self.default_lifetime, self.max_lifetime)

    # the boards ----------------------------------------------------------------------------
    def get(self, training_id: int) -> TensorBoard | None:
        """The training's TensorBoard, None if there is none or its lifetime is over (then it is stopped)."""
        board = self.boards.get(training_id)
        if board is not None and board.remaining() <= 0:
            self.stop(training_id)
            return None
        return board

    def start(self, training_id: int, tenant_id: int, sources: list[LogSource], lifetime: int) -> TensorBoard:
        """Start a TensorBoard over ``sources`` (the training's own output first).

        One that runs or starts over the same sources is returned as it is;
        one that failed or shows other trainings is replaced.
        """
        mounted = tuple(s.training_id for s in sources[1:])
        current = self.get(training_id)
        if current is not None and current.status != FAILED and current.mounted_ids == mounted:
            return current
        self.stop(training_id)
        work_dir = os.path.join(self.state_dir, str(training_id))
        shutil.rmtree(work_dir, ignore_errors=True)
        os.makedirs(work_dir, mode=0o700)
        relay = self.private_network(work_dir)
        network = relay.network if relay else None
        try:
            argv = self.argv(training_id, sources, work_dir, relay is not None)
            env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "HOME": work_dir, "LC_ALL": "C.UTF-8"}
            with open(os.path.join(work_dir, LOG_NAME), "wb") as output:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                           cwd=work_dir, env=env, start_new_session=True,
                                           preexec_fn=network.enter if network else None)
        except BaseException:
            if relay is not None:
                relay.close()
            raise
        with open(os.path.join(work_dir, PID_NAME), "w") as f:
            f.write(str(process.pid))
        board = TensorBoard(training_id, tenant_id, mounted, time.time() + lifetime, process, work_dir,
                            relay=relay)
        self.boards[training_id] = board
        log.info("Started TensorBoard of training %d (pid %d, %d s, showing %s)", training_id, process.pid,
                 lifetime, ", ".join(s.label for s in sources))
        return board

    def private_network(self, work_dir: str) -> Relay | None:
        """A network namespace for a sandboxed TensorBoard, relayed to its unix socket; None when
        there can be none (no bubblewrap, or not root: it then listens on the host's loopback)."""
        if self.sandbox == "none" or not probe_host().bwrap:
            return None
        try:
            network = PrivateNetwork.create()
        except NetworkUnavailable as e:
            log.warning("TensorBoards listen on the host's loopback: %s", e)
            return None
        relay = Relay(network, [PortForward("in", PRIVATE_PORT, "unix:" + os.path.join(work_dir, SOCKET_NAME))])
        relay.bind()
        relay.start()  # a thread of its own, stopped with the TensorBoard (or with the service)
        return relay

    def argv(self, training_id: int, sources: list[LogSource], work_dir: str, own_network: bool = False) -> list[str]:
        """The command line: sandboxed when bubblewrap may be used, else over a directory of symlinks."""
        path_prefix = self.url(training_id)
        layout = probe_host() if self.sandbox != "none" else None
        if layout is not None and layout.bwrap:
            forward = PortForward("in", PRIVATE_PORT, "unix:" + os.path.join(work_dir, SOCKET_NAME))
            argv = tensorboard_argv(self.command, LOGDIR, path_prefix, PRIVATE_PORT if own_network else 0)
            spec = sandbox_spec(training_id, sources, argv, forward if own_network else None)
            return bwrap_argv(spec, layout, tuple(self.extra_ro_paths))
        if self.sandbox != "none":  # unsandboxed it would follow a run's symlinks to the host's files
            raise Unavailable("TensorBoard needs bubblewrap (apt-get install bubblewrap), which this host lacks; "
                              "an admin may set TensorBoardManager.sandbox = 'none' to run it unsandboxed")
        links = os.path.join(work_dir, "logs")
        os.mkdir(links)
        for s in sources:
            os.symlink(s.host_path, os.path.join(links, s.label))
        argv = tensorboard_argv(self.command, links, path_prefix)
        setpriv = shutil.which("setpriv")
        return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv

    async def wait_serving(self, board: TensorBoard, timeout: float | None = None) -> bool:
        """Wait until ``board`` serves (True), fails or ``timeout`` passes (False)."""
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        while (status := board.status) == PENDING and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return status == RUNNING

    def stop(self, training_id: int) -> bool:
        """Kill the training's TensorBoard (its whole process group); False if there was none."""
        board = self.boards.pop(training_id, None)
        if board is None:
            return False
        kill_group(board.process.pid)
        try:
            board.process.wait(5)
        except subprocess.TimeoutExpired:
            log.error("TensorBoard of training %d (pid %d) did not end", training_id, board.process.pid)
        if board.relay is not None:
            board.relay.close()
        shutil.rmtree(board.work_dir, ignore_errors=True)
        log.info("Stopped TensorBoard of training %d", training_id)
        return True

    def stop_all(self) -> int:
        """Stop every TensorBoard; how many there were."""
        return sum(self.stop(training_id) for training_id in list(self.boards))

    # lifetimes -------------------------------------------------------------------------------
    def check(self, now: float | None = None) -> None:
        """Stop the TensorBoards whose lifetime is over."""
        for training_id, board in list(self.boards.items()):
            if board.remaining(now) <= 0:
                log.info("TensorBoard of training %d reached its lifetime", training_id)
                self.stop(training_id)

    def clean_stale(self) -> int:
        """Kill the TensorBoards an earlier service left behind (by their pid files); how many."""
        killed = 0
        try:
            names = [n for n in os.listdir(self.state_dir) if n.isdigit() and int(n) not in self.boards]
        except FileNotFoundError:
            return 0
        for name in names:
            work_dir = os.path.join(self.state_dir, name)
            try:
                with open(os.path.join(work_dir, PID_NAME)) as f:
                    pid = int(f.read().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except (OSError, ValueError):
                cmdline = b""
            # the path prefix is the last argument of both command lines
            if b"tensorboard" in cmdline and self.url(int(name)).rstrip("/").encode() + b"\0" in cmdline:
                kill_group(pid)
                killed += 1
            shutil.rmtree(work_dir, ignore_errors=True)
        if killed:
            log.warning("Killed %d TensorBoards left by an earlier kqi service", killed)
        return killed

    async def watch(self) -> None:
        """Run for the service's life: clean up after an earlier one, then enforce lifetimes."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.clean_stale()
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                self.check()
            except Exception:  # noqa: BLE001 - logged; the next check tries again
                log.exception("Checking TensorBoard lifetimes failed")


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (TensorBoard keeps no state worth a graceful end)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
