"""A shell into a running training: ``GET api/v2/training/{id}/shell``, a websocket terminal.

Added to the contract (the original's [Shell起動] button opens a root shell
in the running container). The executor's ``shell_target`` says where the
shell goes and the target opens it: inside the run's sandbox for the local
executor (``kqi_services/executor/shell.py``: its namespaces, root, cgroup
and environment, no capabilities), a Docker exec in the run's container for
the container executor (``kqi_services/executor/docker_shell.py``). The
socket speaks terminado's JSON protocol, so JupyterLab's terminal widget and
xterm.js attach to it as they are:

* client → server: ``["stdin", text]``, ``["set_size", rows, cols, …]``;
* server → client: ``["setup", {}]`` once, ``["stdout", text]``, and
  ``["disconnect", 1]`` when the shell ends, then the socket closes.

Authentication is the API's (Bearer token, the service's OAuth cookie, or
``?token=`` in the URL, which is what websocket clients in browsers can
send). A cookie-authenticated socket must come from a page of this origin.
Everything that can fail — no token (401), another tenant's training
(404), a training that is not running (409) — fails before the upgrade, as
JSON. Closing the socket hangs up the terminal and kills every process the
shell started; a halt of the training ends the shell with the run.
"""

from __future__ import annotations

import asyncio
import codecs
import json

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from kqi_services.errors import Conflict, InvalidInput, KqiError
from kqi_services.executor.base import ExecutorError, RunNotFound
from kqi_services.executor.docker_shell import ContainerShell
from kqi_services.executor.shell import ShellProcess, ShellUnavailable
from kqi_services.jobs import status as st
from kqi_services.jobs.kinds import INFERENCE, TRAINING, JobKind

from .runs import RunBase

READ_SIZE = 64 * 1024
MAX_PENDING_INPUT = 4 * 1024 * 1024
MAX_WINDOW = 10_000
PING_INTERVAL_S = 30
SETUP_WAIT_S = 15


class NotSupported(KqiError):
    status = 501


class ShellHandler(RunBase, WebSocketHandler):
    """The websocket of one shell; see the module's docstring for the protocol."""

    kind: JobKind = TRAINING
    shell: ShellProcess | ContainerShell | None = None
    terminal_fd: int | None = None
    ended = False

    def set_default_headers(self):
        self.set_header("Cache-Control", "no-store")

    @property
    def ping_interval(self):
        return self.settings.get("websocket_ping_interval", PING_INTERVAL_S)

    async def prepare(self):
        token = self.get_query_argument("token", "")
        if token and "Authorization" not in self.request.headers:
            self.request.headers["Authorization"] = f"Bearer {token}"
        await super().prepare()
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise InvalidInput("This is a websocket (terminado's protocol): connect with 'Upgrade: websocket'")
        if self.principal.via_cookie:
            self.check_same_origin()
        run = self.find(self.path_args[0])
        label = f"{self.kind.name.capitalize()} {run.id}"
        if run.status != st.RUNNING:
            raise Conflict(f"{label} is {run.status}; a shell opens only while it is Running")
        self.run_key = self.kind.run_key(run.id)
        self.target = await self.find_target(run, label)
        self.db.close()
        self._db = None

    async def find_target(self, run, label: str):
        """Where the shell goes (the executor's ``shell_target``); waits while a just-admitted run is still being
        set up."""
        executor = self.settings["executor"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETUP_WAIT_S
        while True:
            try:
                return await loop.run_in_executor(None, executor.shell_target, self.run_key)
            except (RunNotFound, ShellUnavailable) as e:
                error = e
            except ExecutorError as e:
                raise NotSupported(str(e)) from None
            self.db.refresh(run)
            if run.status != st.RUNNING:
                raise Conflict(f"{label} is {run.status}; a shell opens only while it is Running")
            try:
                phase = executor.status(self.run_key).phase
            except RunNotFound:  # still being prepared (git clone, staging)
                phase = "starting"
            if loop.time() > deadline or phase not in ("starting", "running"):
                raise Conflict(f"{label} cannot take a shell now: {error}")
            await asyncio.sleep(0.25)

    def check_origin(self, origin: str) -> bool:
        # token clients may come from anywhere; cookie-authenticated ones were checked in prepare
        return True

    async def get(self, run_id):
        try:
            self.shell = await asyncio.get_running_loop().run_in_executor(None, self.target.open)
        except ShellUnavailable as e:
            raise Conflict(str(e)) from None
        except ExecutorError as e:
            self.log.error("Shell into %s failed: %s", self.run_key, e)
            raise KqiError(f"The shell could not be started: {e}") from None
        self.log.info("%s opened a shell into %s (pid %s)", self.actor, self.run_key, self.shell.pid)
        try:
            await super().get(run_id)
        finally:
            if self.get_status() != 101:
                self.end_shell()

    # the socket --------------------------------------------------------------------------
    def open(self, run_id):
        self.loop = IOLoop.current()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = bytearray()
        self.reading = True
        self.ended = False
        self.send(["setup", {}])
        self.terminal_fd = self.shell.fileno()
        self.loop.add_handler(self.terminal_fd, self.on_terminal, IOLoop.READ)
        # a container shell may hold output that came with the engine's response: read once without waiting
        self.loop.add_callback(self.on_terminal, self.terminal_fd, IOLoop.READ)
        if self.shell.exit_fd is not None:
            self.loop.add_handler(self.shell.exit_fd, self.on_shell_exit, IOLoop.READ)
        else:
            self.loop.spawn_callback(self.poll_shell)

    def on_message(self, message):
        try:
            msg = json.loads(message)
        except (TypeError, ValueError):
            return
        if not isinstance(msg, list) or not msg or self.ended:
            return
        if msg[0] == "stdin" and len(msg) >= 2 and isinstance(msg[1], str):
            self.pending += msg[1].encode("utf-8", "replace")
            if len(self.pending) > MAX_PENDING_INPUT:
                self.finish_shell(1009, "The shell does not read its input")
                return
            self.flush_input()
        elif msg[0] == "set_size" and len(msg) >= 3:
            try:
                rows, cols = (min(max(int(v), 1), MAX_WINDOW) for v in msg[1:3])
            except (TypeError, ValueError):
                return
            self.shell.resize(rows, cols)

    def on_close(self):
        self.end_shell()

    # the terminal --------------------------------------------------------------------------
    def send(self, msg):
        """Write one message; returns its future (None once the socket is closed)."""
        try:
            sent = self.write_message(json.dumps(msg, ensure_ascii=False))
        except WebSocketClosedError:
            self.end_shell()
            return None
        sent.add_done_callback(_retrieve)
        return sent

    def watch(self):
        """Ask the loop for what the terminal can do now: output (unless the client lags), input room."""
        if self.ended:
            return
        events = (IOLoop.READ if self.reading else 0) | (IOLoop.WRITE if self.pending else 0)
        self.loop.update_handler(self.shell.fileno(), events)

    def on_terminal(self, fd, events):
        if self.ended:
            return
        if events & IOLoop.WRITE:
            self.flush_input()
        if events & (IOLoop.READ | IOLoop.ERROR):
            self.read_output()

    def read_output(self) -> bool:
        """Forward one read of output; False once nothing holds the terminal open on the shell's side."""
        data = self.shell.read(READ_SIZE)
        if data is None:
            return True
        if not data:
            self.finish_shell()
            return False
        text = self.decoder.decode(data)
        if text:
            sent = self.send(["stdout", text])
            if sent is not None and not sent.done() and not self.ended:
                # back-pressure: read on once the client has taken this
                self.reading = False
                self.watch()
                sent.add_done_callback(self.resume_reading)
        return True

    def resume_reading(self, _future):
        self.reading = True
        self.watch()

    def flush_input(self):
        while self.pending and not self.ended:
            try:
                taken = self.shell.write(bytes(self.pending[:READ_SIZE]))
            except OSError:
                self.pending.clear()
                break
            if not taken:
                break
            del self.pending[:taken]
        self.watch()

    def on_shell_exit(self, fd, events):
        self.drain_and_finish()

    async def poll_shell(self):
        """Without an exit descriptor: ask every half second (off the loop: it may ask the engine)."""
        while True:
            await asyncio.sleep(0.5)
            shell = self.shell
            if self.ended or shell is None:
                return
            try:
                alive = await asyncio.get_running_loop().run_in_executor(None, shell.shell_alive)
            except Exception:  # noqa: BLE001 - a shell that cannot be asked is taken as ended
                self.log.exception("Could not check shell %s in %s", shell.pid, shell.run_id)
                alive = False
            if not alive:
                if shell is self.shell:
                    self.drain_and_finish()
                return

    def drain_and_finish(self):
        """The shell ended: forward what it wrote last, then say so and close."""
        for _ in range(64):
            if self.ended:
                return
            data = self.shell.read(READ_SIZE)
            if not data:
                break
            text = self.decoder.decode(data)
            if text:
                self.send(["stdout", text])
        self.finish_shell()

    def finish_shell(self, code: int = 1000, reason: str = "The shell ended"):
        if self.ended:
            return
        tail = self.decoder.decode(b"", final=True)
        if tail:
            self.send(["stdout", tail])
        self.send(["disconnect", 1])
        self.end_shell()
        self.close(code, reason)

    def end_shell(self):
        """Stop watching the terminal and kill every process of the shell (off the loop)."""
        shell, self.shell = self.shell, None
        if shell is None:
            return
        self.ended = True
        loop = IOLoop.current()
        for fd in (self.terminal_fd, shell.exit_fd):
            if fd is not None:
                loop.remove_handler(fd)
        loop.run_in_executor(None, self.terminate, shell)

    def terminate(self, shell: ShellProcess | ContainerShell) -> None:
        try:
            done = shell.terminate()
        except Exception:  # noqa: BLE001 - logged; nothing else can be done from here
            self.log.exception("Could not end shell %s in %s", shell.pid, shell.run_id)
            return
        if done:
            self.log.info("Shell %s in %s ended", shell.pid, shell.run_id)
        else:
            self.log.error("Processes of shell %s in %s could not be killed", shell.pid, shell.run_id)


def _retrieve(future) -> None:
    """A write that failed because the client went away needs no report."""
    if not future.cancelled():
        future.exception()


def handlers_for(kind: JobKind) -> list:
    return [(rf"{kind.routes_base}/([0-9]+)/shell", ShellHandler, {"kind": kind})]


default_handlers = handlers_for(TRAINING) + handlers_for(INFERENCE)
