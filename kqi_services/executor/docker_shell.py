"""A shell into a running container job: a Docker exec on a terminal (the container executor's shells).

``DockerExecutor.shell_target`` returns a ``ContainerShellTarget`` (the run's
container, its environment less ``COLUMNS``/``LINES``, its working
directory); ``ContainerShellTarget.open`` starts the shell and returns a
``ContainerShell``, which the websocket handler drives exactly as the local
sandbox's ``shell.ShellProcess``: a non-blocking descriptor to read and write,
``resize``, ``shell_alive``, ``terminate``.

How it starts: an exec of ``/bin/sh -c "… exec bash -i (else sh -i)"`` as
root (``0:0``, as the run's command) in the container, on a terminal, with
the run's environment and a per-shell ``KQI_SHELL_ID`` marker; every value
travels in the API's request body, nothing secret on a command line (the
command unsets ``COLUMNS``/``LINES``, which an exec inherits from the
container's own environment: the terminal has a real size). The
exec's attach connection (``exec_start(socket=True)``, the engine's raw
stream after an HTTP upgrade) is the terminal: what the shell writes arrives
on it, what is sent goes to its input. Output the HTTP client had already
buffered with the response's headers is handed out by the first ``read``.
The window size is the engine's ``exec_resize``.

Where the engine runs on this host (the exec's ``Pid`` is a process here, in
the PID namespace of the container's own process), the shell's processes are
those of that namespace in the shell's session or carrying its marker, as in
``shell.py``. Elsewhere (a remote engine, a service in a container of its
own) only the engine knows them: ``shell_alive`` asks ``exec_inspect`` and
``terminate`` signals the marked processes from a second exec inside the
container.

Ending: the engine closes the connection when the shell exits (its last
output first), so the handler sees the end as the end of the stream.
``exit_fd`` is None: a pidfd would fire while the last output is still on
its way through the engine; ``shell_alive`` also says True for a moment
after the exit (``DRAIN_S``) for the same reason. ``terminate`` hangs up
(closes the connection: a Docker exec outlives its client) and then signals
every process of the shell SIGHUP, then SIGKILL until none is left; the
run's own processes are never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .base import ExecutorError
from .shell import (
    MARKER_VAR,
    START_TIMEOUT_S,
    ShellUnavailable,
    _ns_inode,
    _stat_fields,
    end_processes,
    shell_processes,
)

#: bash where the image has one, else sh; the run's COLUMNS/LINES (the exec inherits the container's
#: environment) would fight the terminal's real size
SHELL_COMMAND = ["/bin/sh", "-c", "unset COLUMNS LINES; "
                 "if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi"]
#: run inside the container where its processes are not visible here: send the signals ``$@`` to every
#: process carrying the marker given in KQI_SHELL_KILL (in the environment, not on the command line),
#: print their pids
KILL_SCRIPT = ('for d in /proc/[0-9]*; do '
               'if tr "\\000" "\\n" < "$d/environ" 2>/dev/null | grep -qxF "' + MARKER_VAR + '=$KQI_SHELL_KILL"; '
               'then for s in "$@"; do kill -"$s" "${d#/proc/}" 2>/dev/null; done; echo "${d#/proc/}"; fi; done')
#: how long an ended shell still counts as alive: its last output passes through the engine first
DRAIN_S = 1.0


@dataclass(frozen=True)
class ContainerShellTarget:
    """Where a shell into a running container run goes.

    Attributes:
        run_id: the run.
        container_id: its container.
        env: the shell's environment (``shell.shell_environment`` of the container's).
        workdir: where the shell starts (the run's working directory).
        container_pid: the container's own process as the engine reports it (0: unknown).
        client: the ``docker.DockerClient`` of the engine.
    """

    run_id: str
    container_id: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    container_pid: int = 0
    client: Any = field(default=None, repr=False, compare=False)

    def open(self, rows: int = 24, cols: int = 80) -> ContainerShell:
        """Start the shell (blocking; well under a second); see ``open_container_shell``."""
        return open_container_shell(self, rows, cols)


def _engine_errors() -> tuple[type[BaseException], ...]:
    import docker
    import requests

    return docker.errors.DockerException, requests.RequestException


def _explanation(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return explanation.decode() if isinstance(explanation, bytes) else explanation or str(error)


def _container_running(api, container_id: str) -> bool:
    try:
        return bool(api.inspect_container(container_id).get("State", {}).get("Running"))
    except _engine_errors():
        return False


def open_container_shell(target: ContainerShellTarget, rows: int = 24, cols: int = 80) -> ContainerShell:
    """Start an interactive shell in ``target``'s container (an exec on a terminal).

    Raises:
        ShellUnavailable: the container is not running (any more).
        ExecutorError: the engine could not start the shell.
    """
    api = target.client.api
    marker = uuid.uuid4().hex
    try:
        exec_id = api.exec_create(target.container_id, SHELL_COMMAND, stdin=True, tty=True,
                                  environment={**target.env, MARKER_VAR: marker}, workdir=target.workdir,
                                  user="0:0")["Id"]
        connection = api.exec_start(exec_id, tty=True, socket=True)
    except _engine_errors() as e:
        if not _container_running(api, target.container_id):
            raise ShellUnavailable(f"{target.run_id} is not running any more") from None
        raise ExecutorError(f"the engine did not start the shell: {_explanation(e)}") from None
    try:
        shell = ContainerShell(api, exec_id, connection, target, marker)
    except ExecutorError:
        connection.close()
        raise
    try:
        shell._wait_started()
        shell.resize(rows, cols)
    except BaseException:
        shell.terminate(grace=0)
        raise
    return shell


def _raw_socket(connection) -> socket.socket:
    """The socket under what ``exec_start(socket=True)`` returns (a ``SocketIO`` for unix and tcp engines)."""
    sock = getattr(connection, "_sock", connection)
    if not isinstance(sock, socket.socket):
        raise ExecutorError(f"the engine's connection is not a socket ({type(connection).__name__})")
    return sock


def _buffered_output(connection) -> bytes:
    """Output that arrived with the response's headers and sits in the HTTP client's read buffer.

    Call with the socket non-blocking: ``peek`` then reads nothing more than what is there.
    """
    try:
        reader = connection._response.raw._fp.fp
        data = reader.peek()
        return reader.read(len(data)) if data else b""
    except (AttributeError, ValueError, OSError):
        return b""


class ContainerShell:
    """A shell started by ``open_container_shell``: its terminal (the exec's connection), processes, end.

    Attributes:
        pid: the exec's process as the engine reports it (host numbering where the engine is local; 0
            while unknown).
        local: whether that process is one of this host's (then its processes are found and signalled
            here, else through the engine).
        exec_id: the engine's id of the exec.
        run_id: the run it is in.
        exit_fd: always None (the end shows as the end of the output stream; see the module's docstring).
    """

    exit_fd: int | None = None

    def __init__(self, api, exec_id: str, connection, target: ContainerShellTarget, marker: str):
        self.api = api
        self.exec_id = exec_id
        self.run_id = target.run_id
        self.container_id = target.container_id
        self.container_pid = target.container_pid
        self.marker = marker
        self.pid = 0
        self.local = False
        self.pid_ns: int | None = None
        self._start_time: int | None = None
        self._ended_at: float | None = None
        self._connection = connection
        self.sock: socket.socket | None = _raw_socket(connection)
        self.sock.setblocking(False)
        self._early = _buffered_output(connection)

    # starting -------------------------------------------------------------------------------
    def _wait_started(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the engine reports the exec's pid (or its failure: its message is the shell's output)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.api.exec_inspect(self.exec_id)
            except _engine_errors() as e:
                raise ExecutorError(f"the engine lost the shell: {_explanation(e)}") from None
            if info.get("Pid"):
                self._find_process(int(info["Pid"]))
                return
            if not info.get("Running") and info.get("ExitCode"):  # Podman says 0, Docker null before the end
                return
            if time.monotonic() > deadline:
                raise ExecutorError("the shell did not start in time")
            time.sleep(0.02)

    def _find_process(self, pid: int) -> None:
        """Whether ``pid`` is the exec's process on this host: in the container's PID namespace, not ours."""
        self.pid = pid
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return
        try:
            pid_ns = _ns_inode(pid, "pid")
            fields = _stat_fields(pid)
            if (pid_ns is None or not fields or pid_ns == _ns_inode("self", "pid") or not self.container_pid
                    or _ns_inode(self.container_pid, "pid") != pid_ns):
                return
            signal.pidfd_send_signal(pidfd, 0)  # the process read above is still the one the pidfd holds
        except OSError:
            return
        finally:
            os.close(pidfd)
        self.local, self.pid_ns, self._start_time = True, pid_ns, int(fields[19])

    # the terminal ----------------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        if self.sock is None:
            raise OSError(9, "the shell's connection is closed")
        return self.sock

    def fileno(self) -> int:
        return self._socket().fileno()

    def read(self, size: int = 65536) -> bytes | None:
        """Output of the shell; None when none is there yet, b"" once the engine closed the stream."""
        if self._early:
            data, self._early = self._early[:size], self._early[size:]
            return data
        try:
            return self._socket().recv(size)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except ConnectionResetError:
            return b""

    def write(self, data: bytes) -> int:
        """Type ``data`` into the shell; returns how much the connection took (0 when it is full)."""
        try:
            return self._socket().send(data)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size (the engine resizes the exec's terminal; ignored once the exec is gone)."""
        try:
            self.api.exec_resize(self.exec_id, height=rows, width=cols)
        except _engine_errors():
            pass

    # the processes ---------------------------------------------------------------------------
    def _running(self) -> bool:
        """Whether the exec's own process still runs."""
        if self.local:
            fields = _stat_fields(self.pid)
            return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == self._start_time
        import docker

        try:
            return bool(self.api.exec_inspect(self.exec_id).get("Running"))
        except docker.errors.NotFound:
            return False
        except _engine_errors():
            return True  # the engine does not answer now: the stream's end tells

    def shell_alive(self) -> bool:
        """Whether the shell runs, or ended less than ``DRAIN_S`` ago (its last output may still be on its way)."""
        if self._running():
            return True
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        return time.monotonic() - self._ended_at < DRAIN_S

    def processes(self) -> set[int]:
        """Live processes of this shell on this host: in the container's PID namespace, in the shell's session
        or carrying its marker (empty where the engine is not local)."""
        if not self.local:
            return set()
        return shell_processes(self.pid_ns, self.pid, self.marker)

    def _signal_inside(self, *signals: str) -> set[int] | None:
        """Send ``signals`` to the marked processes from an exec in the container; their pids there (None when
        the container does not take an exec: it is not running)."""
        try:
            exec_id = self.api.exec_create(self.container_id, ["/bin/sh", "-c", KILL_SCRIPT, "kqi-shell-kill",
                                                               *signals],
                                           environment={"KQI_SHELL_KILL": self.marker}, user="0:0")["Id"]
            output = self.api.exec_start(exec_id)
        except _engine_errors():
            return None
        return {int(word) for word in output.split() if word.isdigit()}

    # ending ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection: a hang-up of the terminal (the exec itself runs on)."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        for closing in (getattr(self._connection, "_response", None), self._connection):  # the response first
            try:
                if closing is not None:
                    closing.close()
            except (OSError, ValueError):
                pass

    def terminate(self, grace: float = 1.0, timeout: float = 10.0) -> bool:
        """Hang up, SIGHUP every process of the shell, SIGKILL what is left after ``grace`` seconds.

        Returns whether none is left (blocking: call it off the event loop).
        """
        self.close()
        if self.local:
            return end_processes(self.processes, grace, timeout)
        return self._terminate_inside(grace, timeout)

    def _terminate_inside(self, grace: float, timeout: float) -> bool:
        """``terminate`` where the shell's processes are not visible here: through execs in the container."""
        end = time.monotonic() + grace
        deadline = end + timeout
        signals: tuple[str, ...] = ("HUP", "CONT") if grace > 0 else ("KILL",)
        while True:
            left = self._signal_inside(*signals)
            if left is None:  # no exec: the container has ended, and the shell with it (or the engine is gone)
                return not _container_running(self.api, self.container_id)
            if not left and not self._running():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
            signals = ("0",) if time.monotonic() < end else ("KILL",)
