"""The executor interface: what the job engine asks of any backend that runs a ``RunSpec``.

The engine starts a run, polls its state, halts it, re-attaches to runs that
outlived a service restart and removes what a finished run left. Backends:
``local`` (a sandbox on this host under a per-run supervisor, ``local.py``);
Docker and Kubernetes fit the same methods (a container id or a Job name as
the handle's ``ref``, their exit code and OOM reason as the state).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

from .spec import RunSpec

PHASES = ("starting", "running", "finished", "lost")


class ExecutorError(RuntimeError):
    """An executor could not do what was asked."""


class RunNotFound(ExecutorError):
    """No run with that id on this executor."""


class RunExists(ExecutorError):
    """A run with that id exists already (ids are never reused before ``cleanup``)."""


class RunActive(ExecutorError):
    """The run is still starting or running."""


@dataclass(frozen=True)
class RunHandle:
    """What ``start`` returns: enough to find the run again.

    Attributes:
        run_id: the spec's id.
        backend: ``"local"``, ``"docker"``, ``"kubernetes"``.
        ref: the backend's own name for it (the local supervisor's pid, a
            container id, a Job name).
        log_path: where the run's stdout and stderr go.
    """

    run_id: str
    backend: str
    ref: str
    log_path: str


@dataclass
class RunState:
    """Where a run stands.

    Attributes:
        phase: ``starting`` (accepted, the command not started yet),
            ``running``, ``finished``, or ``lost`` (its supervisor is gone and
            left no result: the engine ends the run Failed with a "Lost: …" note).
        exit_code: the command's exit status (128+N when killed by signal N).
        signal: the signal that ended the sandbox, when one did.
        oom_killed: the run's memory limit made the kernel kill a process.
        halted: ``halt`` was asked before the run ended (a halt wins over the
            exit code it causes).
        error: why the platform could not run it (a missing mount source, no
            sandbox tool); empty otherwise.
        notes: what the host could not enforce (limits, isolation).
        started_at / finished_at: ISO 8601 UTC times.
    """

    run_id: str
    phase: str
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    halted: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Executor(ABC):
    """Runs ``RunSpec``s somewhere; every method is safe to call from a restarted service."""

    name: str = ""

    @abstractmethod
    def start(self, spec: RunSpec) -> RunHandle:
        """Start the run and return once it is accepted (it may still be ``starting``).

        Raises:
            SpecError: the spec is invalid.
            RunExists: a run with that id is known.
            ExecutorError: the backend could not start it.
        """

    @abstractmethod
    def status(self, run_id: str) -> RunState:
        """The run's state. Raises RunNotFound for an unknown id."""

    @abstractmethod
    def halt(self, run_id: str) -> bool:
        """Ask the run to stop (SIGTERM, then SIGKILL after its grace period).

        Returns whether a live run was told; the outcome shows in ``status``
        (``halted`` true). Raises RunNotFound for an unknown id.
        """

    @abstractmethod
    def running_runs(self) -> list[str]:
        """Ids of runs still starting or running (to re-attach after a restart)."""

    @abstractmethod
    def run_ids(self) -> list[str]:
        """Ids of every run the executor still holds, finished and lost included."""

    @abstractmethod
    def log_path(self, run_id: str) -> str:
        """The file the run's stdout and stderr are appended to (readable while it runs)."""

    def pull_progress(self, run_id: str) -> dict | None:
        """The progress of the run's image pull (``pull.PullProgress.to_dict``), for executors that pull; else None."""
        return None

    def shell_target(self, run_id: str):
        """Where an interactive shell into the running ``run_id`` goes (a ``shell.ShellTarget``).

        Raises RunNotFound for an unknown id, ``shell.ShellUnavailable`` when
        the run is not running, ExecutorError where the backend has no shells.
        """
        raise ExecutorError(f"the {self.name or type(self).__name__} executor cannot open shells")

    @abstractmethod
    def cleanup(self, run_id: str) -> None:
        """Forget a finished or lost run: kill any leftover process, remove its files.

        Raises RunActive while it is starting or running, RunNotFound for an unknown id.
        """
