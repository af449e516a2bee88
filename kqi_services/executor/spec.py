"""What an executor is asked to run: one run, complete, as plain data.

A ``RunSpec`` carries everything a job or notebook needs — command, working
directory, environment, mounts, limits, devices — and round-trips through
JSON (``to_dict``/``from_dict``), so the service can hand it to an executor
process that knows nothing of the ORM, the scheduler or tornado. The same spec
serves every executor: the local one runs it in a bubblewrap sandbox, Docker
and Kubernetes would run it in ``image``.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import asdict, dataclass, field, fields

from .netns import PortForward

RUN_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Directories the sandbox builds itself (read-only system trees, device and
# kernel file systems): a mount may not replace them or land inside them.
SYSTEM_PATHS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                "/sbin", "/sys", "/usr")

# Mount targets that are always read-only, whatever the mount says.
READ_ONLY_TARGETS = ("/kqi/input", "/kqi/parent")

#: how a run reaches the network: ``private`` (its own namespace, only its forwards), ``outside``
#: (that plus the outside network, never the host's loopback), ``none`` (loopback only), ``host``
NETWORK_MODES = ("private", "outside", "none", "host")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOME = "/tmp"
LOG_NAME = "output.log"


class SpecError(ValueError):
    """A run spec that no executor may run (a bad id, path, variable or limit)."""


def under(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both normalised absolute paths)."""
    return root == "/" or path == root or path.startswith(root + "/")


def check_absolute(path: str, what: str) -> None:
    """Raise SpecError unless ``path`` is absolute, normalised and free of ``..`` and control characters."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise SpecError(f"{what} must be an absolute path: {path!r}")
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise SpecError(f"{what} has control characters: {path!r}")
    if ".." in path.split("/") or posixpath.normpath(path) != path:
        raise SpecError(f"{what} must be a normalised path without '..': {path!r}")


@dataclass
class Mount:
    """A host directory (or file) shown inside the run at ``target``."""

    host_path: str
    target: str
    read_only: bool = False

    @property
    def effective_read_only(self) -> bool:
        """Read-only when asked, and always for ``/kqi/input`` and ``/kqi/parent``."""
        return self.read_only or any(under(self.target, t) for t in READ_ONLY_TARGETS)


@dataclass
class RunSpec:
    """One run of a job or notebook, as every executor receives it.

    Attributes:
        run_id: a DNS-label-like name, unique on the executor (``training-12``).
        run_dir: a host directory owned by the executor for this run (spec,
            log, status and pid files); the local executor fills it in.
        command: run with ``/bin/sh -c``.
        workdir: the working directory inside the run.
        env: the complete environment; executors add only ``PATH`` and
            ``HOME`` when missing (the spec builder sets the contract's
            variables, ``PYTHONUNBUFFERED`` and ``CUDA_VISIBLE_DEVICES``).
        mounts: host paths shown inside the run.
        cpu: cores (fractions allowed); 0 is unlimited.
        memory_bytes: memory limit (swap included where the host can); 0 is unlimited.
        pids_max: most processes and threads at once; 0 is unlimited.
        gpus: host GPU indexes given to this run (their device nodes only).
        log_path: where stdout and stderr are appended; ``run_dir/output.log`` when empty.
        network: one of ``NETWORK_MODES``; ``private`` by default: a network
            namespace of the run's own that reaches only ``forwards``.
        forwards: the ports relayed between the run's namespace and the host
            (``netns.PortForward``): the kqi service, the hub, a notebook's port.
        share_network: kept so that specs written before ``network`` existed
            read back; True there meant ``network="host"``.
        image: the container image (registry host included); the local executor records it and
            says in the log that it is not used.
        halt_grace_s: seconds between SIGTERM and SIGKILL when halted.
        display_name: the container's name, ``{kind}-{name}-{id}`` (the container executor's).
        registry_auth: the Docker API's login to pull ``image`` (``username``, ``password``,
            ``serveraddress``); executors never write it down.
    """

    run_id: str
    command: str
    run_dir: str = ""
    workdir: str = "/kqi/git"
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    cpu: float = 0.0
    memory_bytes: int = 0
    pids_max: int = 0
    gpus: list[int] = field(default_factory=list)
    log_path: str = ""
    network: str = "private"
    forwards: list[PortForward] = field(default_factory=list)
    share_network: bool = False
    image: str = ""
    halt_grace_s: float = 5.0
    display_name: str = ""
    registry_auth: dict | None = None

    def __post_init__(self):
        self.mounts = [m if isinstance(m, Mount) else Mount(**m) for m in self.mounts]
        self.env = dict(self.env)
        self.gpus = list(self.gpus)
        self.forwards = [f if isinstance(f, PortForward) else PortForward(**f) for f in self.forwards]
        if self.share_network:
            self.network, self.share_network = "host", False

    @property
    def prepared_network(self) -> bool:
        """Whether the executor prepares the run's network namespace (with forwards, or the outside).

        A ``private`` run without forwards gets the sandbox's own loopback-only namespace.
        """
        return self.network == "outside" or (self.network == "private" and bool(self.forwards))

    @property
    def log_file(self) -> str:
        """The log file on the host."""
        return self.log_path or os.path.join(self.run_dir, LOG_NAME)

    def sandbox_env(self) -> dict[str, str]:
        """The environment the command sees: ``env`` plus PATH and HOME defaults."""
        env = dict(self.env)
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", DEFAULT_HOME)
        return env

    def validate(self) -> RunSpec:
        """Raise SpecError for anything an executor must not run; returns self."""
        if not isinstance(self.run_id, str) or not RUN_ID_PATTERN.match(self.run_id):
            raise SpecError(f"run_id must be lowercase letters, digits and '-' (at most 63): {self.run_id!r}")
        if not isinstance(self.command, str) or not self.command.strip() or "\0" in self.command:
            raise SpecError("command must be a non-empty string without NUL")
        if self.run_dir:
            check_absolute(self.run_dir, "run_dir")
        if self.log_path:
            check_absolute(self.log_path, "log_path")
        check_absolute(self.workdir, "workdir")
        if any(under(self.workdir, p) for p in SYSTEM_PATHS):
            raise SpecError(f"workdir may not be a system directory: {self.workdir}")
        for name, value in self.env.items():
            if not isinstance(name, str) or not ENV_NAME_PATTERN.fullmatch(name):
                raise SpecError(f"bad environment variable name: {name!r}")
            if not isinstance(value, str) or "\0" in value:
                raise SpecError(f"environment variable {name} must be a string without NUL")
        targets = set()
        for m in self.mounts:
            check_absolute(m.host_path, "mount host_path")
            check_absolute(m.target, "mount target")
            if m.target == "/" or any(under(m.target, p) or under(p, m.target) for p in SYSTEM_PATHS):
                raise SpecError(f"mount target may not be or hold a system directory: {m.target}")
            if m.target in targets:
                raise SpecError(f"two mounts on {m.target}")
            targets.add(m.target)
        if self.network not in NETWORK_MODES:
            raise SpecError(f"network must be one of {', '.join(NETWORK_MODES)}: {self.network!r}")
        for forward in self.forwards:
            try:
                forward.validate()
            except ValueError as e:
                raise SpecError(str(e)) from None
        for number, name in ((self.cpu, "cpu"), (self.memory_bytes, "memory_bytes"),
                             (self.pids_max, "pids_max"), (self.halt_grace_s, "halt_grace_s")):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise SpecError(f"{name} must be a number >= 0")
        if not all(isinstance(g, int) and not isinstance(g, bool) and 0 <= g < 1024 for g in self.gpus):
            raise SpecError(f"gpus must be device indexes: {self.gpus!r}")
        if len(set(self.gpus)) != len(self.gpus):
            raise SpecError(f"a GPU is listed twice: {self.gpus!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """A validated spec from ``to_dict`` output; unknown keys are a SpecError."""
        if not isinstance(data, dict):
            raise SpecError("a run spec is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown run spec fields: {', '.join(unknown)}")
        try:
            spec = cls(**data)
        except (TypeError, ValueError) as e:
            raise SpecError(str(e)) from e
        return spec.validate()
