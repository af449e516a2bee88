"""A small process that forks per-run supervisors, so a run does not pay for starting Python.

``python -m kqi_services.executor.forkserver`` imports the supervisor once,
then reads run directories from stdin, one per line. For each it forks a
supervisor detached the same way a shell's ``&`` would: a new session, then
a second fork so init adopts it, stdin from ``/dev/null``, stdout and stderr
appended to the run's ``supervisor.log``. It answers ``ok`` once the
supervisor is forked, and exits when stdin closes (its service is gone);
supervisors it forked live on, as every supervisor does.

``ForkServer`` is the executor's side: it starts the process on first use,
restarts it if it died, and is safe to call from several threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

MODULE = "kqi_services.executor.forkserver"
PROCESS_NAME = b"kqi-supervisor"


class ForkServerError(OSError):
    """The fork server could not start a supervisor."""


class ForkServer:
    """The service side: ``launch(run_dir)`` forks that run's supervisor through the server process.

    Args:
        python: the interpreter that runs the server.
        env: its environment (``PYTHONPATH`` must reach this package).
    """

    def __init__(self, python: str, env: dict[str, str]):
        self.python = python
        self.env = dict(env)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _server(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [self.python, "-m", MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                env=self.env, cwd="/", start_new_session=True, close_fds=True)
        return self._proc

    def launch(self, run_dir: str) -> None:
        """Fork the supervisor of ``run_dir``; raises ForkServerError when the server cannot."""
        if "\n" in run_dir:
            raise ForkServerError(f"a run directory with a newline: {run_dir!r}")
        with self._lock:
            for _attempt in range(2):  # a server that died since its last use is started again
                proc = self._server()
                stdin, stdout = proc.stdin, proc.stdout
                assert stdin is not None and stdout is not None  # both are pipes (see _server)
                try:
                    stdin.write(run_dir.encode() + b"\n")
                    stdin.flush()
                    answer = stdout.readline().decode(errors="replace").strip()
                except OSError:
                    answer = ""
                if answer == "ok":
                    return
                self.close_locked()
                if answer:
                    raise ForkServerError(answer)
            raise ForkServerError("the fork server is not answering")

    def close_locked(self) -> None:
        if self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is None:
                    continue
                try:
                    pipe.close()
                except OSError:
                    pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the server process (supervisors it forked go on)."""
        with self._lock:
            self.close_locked()


def _become_supervisor(run_dir: str, supervisor) -> int:
    """In the forked grandchild: detach stdio, name the process, run the supervisor."""
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(run_dir, supervisor.SUPERVISOR_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 1 << 16)
    try:
        supervisor._libc.prctl(15, PROCESS_NAME, 0, 0, 0)  # PR_SET_NAME, as ps shows it
    except Exception:  # noqa: BLE001 - only cosmetic
        pass
    return supervisor.main([run_dir])


def serve() -> int:
    from . import supervisor  # imported once; every fork starts with it loaded

    for line in sys.stdin.buffer:
        run_dir = line.decode(errors="replace").rstrip("\n")
        if not os.path.isdir(run_dir):
            sys.stdout.write(f"no such run directory: {run_dir}\n")
            sys.stdout.flush()
            continue
        child = os.fork()
        if child == 0:
            code = 1
            try:
                os.setsid()
                if os.fork() == 0:
                    code = _become_supervisor(run_dir, supervisor)
                else:
                    code = 0
            except BaseException:  # noqa: BLE001 - a forked child must never return into the loop
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.waitpid(child, 0)
        sys.stdout.write("ok\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
