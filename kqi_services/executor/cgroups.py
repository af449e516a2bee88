"""A control group per run: memory, CPU and process limits, membership, OOM count, kill.

Both layouts are handled. On cgroup v2 (one unified hierarchy, most hosts
now) a run gets ``/kqi/<run_id>`` from the hierarchy's root, with
``memory.max`` (no swap beyond it, the whole group killed on OOM),
``cpu.max`` and ``pids.max``; v2 forbids controllers below a cgroup that holds
processes, so the parent is a cgroup of its own rather than the service's.
On cgroup v1 (one hierarchy per controller, as on this machine) it gets
``<own cgroup>/kqi/<run_id>`` in each of the memory, cpu and pids hierarchies,
with ``memory.limit_in_bytes`` (+ ``memory.memsw.limit_in_bytes`` when swap
accounting exists), ``cpu.cfs_quota_us`` and ``pids.max``. Whatever cannot be
created or written becomes a note for the run's log, never an error: the run
still runs, unlimited in that respect. The parsing and the limit values are
pure functions; ``RunCgroup`` does the file work.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"
CONTROLLERS = ("pids", "memory", "cpu")
CFS_PERIOD_US = 100_000
PARENT_NAME = "kqi"


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy.

    Attributes:
        version: 1 or 2.
        mount: where it is mounted.
        controllers: v1: the controllers bound to it; v2: those its root offers.
        own: this process's cgroup in it, relative to the mount ("" at the root).
    """

    version: int
    mount: str
    controllers: tuple[str, ...]
    own: str = ""


def _unescape(path: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) decoded."""
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def parse_hierarchies(mountinfo: str, proc_cgroup: str,
                      v2_controllers: tuple[str, ...] = ()) -> list[Hierarchy]:
    """The cgroup hierarchies of ``/proc/self/mountinfo`` with this process's place in each.

    Args:
        mountinfo: the text of ``/proc/self/mountinfo``.
        proc_cgroup: the text of ``/proc/self/cgroup``.
        v2_controllers: what the unified hierarchy's ``cgroup.controllers`` lists.
    """
    own_v1, own_v2 = {}, None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own_v2 = parts[2]
        for controller in parts[1].split(","):
            if controller:
                own_v1[controller] = parts[2]
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        root, mount = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup2":
            version, controllers, own = 2, tuple(v2_controllers), own_v2
        else:
            version = 1
            controllers = tuple(o for o in tail[2].split(",") if o in CONTROLLERS or o == "cpuacct")
            if not controllers:
                continue
            own = own_v1.get(controllers[0])
        relative = ""
        if own and (root == "/" or own == root or own.startswith(root + "/")):
            relative = own if root == "/" else own[len(root):]
        found.append(Hierarchy(version, mount, controllers, relative.strip("/")))
    return found


def choose_hierarchies(hierarchies: list[Hierarchy]) -> tuple[int, dict[str, Hierarchy]]:
    """(version, {controller: hierarchy}): v2 when its root offers the memory controller, else v1."""
    for h in hierarchies:
        if h.version == 2 and "memory" in h.controllers:
            return 2, {c: h for c in CONTROLLERS if c in h.controllers}
    chosen: dict[str, Hierarchy] = {}
    for h in hierarchies:
        if h.version == 1:
            for c in h.controllers:
                if c in CONTROLLERS:
                    chosen.setdefault(c, h)
    return (1, chosen) if chosen else (0, {})


def v2_limit_writes(cpu: float, memory_bytes: int, pids_max: int, has_swap: bool) -> list[tuple[str, str]]:
    """(file, value) pairs that set a v2 cgroup's limits; 0 means unlimited (nothing written)."""
    writes = []
    if memory_bytes:
        writes.append(("memory.max", str(int(memory_bytes))))
        if has_swap:
            writes.append(("memory.swap.max", "0"))
        writes.append(("memory.oom.group", "1"))
    if cpu:
        writes.append(("cpu.max", f"{max(1000, int(cpu * CFS_PERIOD_US))} {CFS_PERIOD_US}"))
    if pids_max:
        writes.append(("pids.max", str(int(pids_max))))
    return writes


def v1_limit_writes(cpu: float, memory_bytes: int, pids_max: int,
                    has_memsw: bool) -> list[tuple[str, str, str]]:
    """(controller, file, value) triples that set v1 limits, in the order the kernel accepts them."""
    writes = []
    if memory_bytes:
        writes.append(("memory", "memory.limit_in_bytes", str(int(memory_bytes))))
        if has_memsw:
            writes.append(("memory", "memory.memsw.limit_in_bytes", str(int(memory_bytes))))
    if cpu:
        writes.append(("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)))
        writes.append(("cpu", "cpu.cfs_quota_us", str(max(1000, int(cpu * CFS_PERIOD_US)))))
    if pids_max:
        writes.append(("pids", "pids.max", str(int(pids_max))))
    return writes


def probe_hierarchies() -> list[Hierarchy]:
    """This host's cgroup hierarchies and this process's place in them."""
    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
        with open("/proc/self/cgroup") as f:
            proc_cgroup = f.read()
    except OSError:
        return []
    v2: tuple[str, ...] = ()
    for h in parse_hierarchies(mountinfo, proc_cgroup):
        if h.version == 2:
            try:
                with open(os.path.join(h.mount, "cgroup.controllers")) as f:
                    v2 = tuple(f.read().split())
            except OSError:
                pass
    return parse_hierarchies(mountinfo, proc_cgroup, v2)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def is_zombie_or_gone(pid: int) -> bool:
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _enable_v2_controllers(mount: str, parent: str, wanted: list[str]) -> list[str]:
    """Create ``parent`` and enable ``wanted`` in its ancestors' and its own subtree_control; returns notes."""
    notes = []
    path = mount
    for part in [""] + [p for p in parent.split("/") if p]:
        path = os.path.join(path, part) if part else path
        os.makedirs(path, exist_ok=True)
        try:
            enabled = _read(os.path.join(path, "cgroup.subtree_control")).split()
            available = _read(os.path.join(path, "cgroup.controllers")).split()
            missing = [c for c in wanted if c in available and c not in enabled]
            if missing:
                _write(os.path.join(path, "cgroup.subtree_control"), " ".join("+" + c for c in missing))
        except OSError as e:
            notes.append(f"cgroup v2: cannot enable {', '.join(wanted)} below {path} ({e.strerror}); "
                         "a cgroup holding processes cannot delegate controllers")
            break
    return notes


@dataclass
class RunCgroup:
    """The cgroup(s) of one run; ``version`` 0 when none could be made.

    Attributes:
        version: 0, 1 or 2.
        paths: v2: ``{"unified": dir}``; v1: ``{controller: dir}``.
        notes: what could not be enforced.
    """

    version: int = 0
    paths: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, cpu: float = 0, memory_bytes: int = 0, pids_max: int = 0,
               parent: str = "", hierarchies: list[Hierarchy] | None = None) -> RunCgroup:
        """Make the run's cgroup and set its limits; never raises for what the host lacks.

        Args:
            name: the run's id (the cgroup's name).
            parent: the parent cgroup, absolute in each hierarchy; default
                ``/kqi`` on v2, ``<this process's cgroup>/kqi`` on v1.
            hierarchies: the host's (``probe_hierarchies()`` when None).
        """
        version, chosen = choose_hierarchies(probe_hierarchies() if hierarchies is None else hierarchies)
        group = cls(version)
        if version == 0:
            group.notes.append("no cgroup hierarchy is available: memory, CPU and process limits are not "
                               "enforced and OOM kills are not detected")
            return group
        if version == 2:
            group._create_v2(name, chosen, parent, cpu, memory_bytes, pids_max)
        else:
            group._create_v1(name, chosen, parent, cpu, memory_bytes, pids_max)
        if not group.paths:
            group.version = 0
        return group

    def _create_v2(self, name, chosen, parent, cpu, memory_bytes, pids_max):
        h = next(iter(chosen.values()))
        parent = (parent or "/" + PARENT_NAME).strip("/")
        try:
            self.notes += _enable_v2_controllers(h.mount, parent, list(chosen))
            path = os.path.join(h.mount, parent, name)
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            self.notes.append(f"cgroup v2: cannot create the run's cgroup below {h.mount} ({e.strerror}): "
                              "limits are not enforced")
            return
        self.paths["unified"] = path
        has_swap = os.path.exists(os.path.join(path, "memory.swap.max"))
        for file, value in v2_limit_writes(cpu, memory_bytes, pids_max, has_swap):
            try:
                _write(os.path.join(path, file), value)
            except OSError as e:
                self.notes.append(f"cgroup v2: cannot set {file} to {value} ({e.strerror}): not enforced")

    def _create_v1(self, name, chosen, parent, cpu, memory_bytes, pids_max):
        for controller in CONTROLLERS:
            h = chosen.get(controller)
            if h is None:
                self.notes.append(f"cgroup v1: the {controller} controller is not mounted: "
                                  f"{controller} limits are not enforced")
                continue
            base = parent.strip("/") if parent else os.path.join(h.own, PARENT_NAME).strip("/")
            path = os.path.join(h.mount, base, name)
            for _ in range(5):  # another run's cleanup may remove the shared parent meanwhile
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.mkdir(path)
                    break
                except FileExistsError:
                    break
                except FileNotFoundError:
                    continue
                except OSError as e:
                    self.notes.append(f"cgroup v1: cannot create {path} ({e.strerror}): "
                                      f"{controller} limits are not enforced")
                    break
            if os.path.isdir(path):
                self.paths[controller] = path
        memsw = "memory" in self.paths and os.path.exists(
            os.path.join(self.paths["memory"], "memory.memsw.limit_in_bytes"))
        for controller, file, value in v1_limit_writes(cpu, memory_bytes, pids_max, memsw):
            if controller not in self.paths:
                continue
            try:
                _write(os.path.join(self.paths[controller], file), value)
            except OSError as e:
                self.notes.append(f"cgroup v1: cannot set {file} to {value} ({e.strerror}): not enforced")
        if memory_bytes and "memory" in self.paths and not memsw:
            self.notes.append("cgroup v1 has no swap accounting (memory.memsw): the run may swap "
                              "beyond its memory limit")

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join every hierarchy."""
        return [os.path.join(p, "cgroup.procs") for p in dict.fromkeys(self.paths.values())]

    def add_pid(self, pid: int) -> None:
        """Move ``pid`` (and, from then on, its children) into the run's cgroup(s)."""
        for path in self.procs_files:
            _write(path, str(pid))

    def pids(self) -> set[int]:
        """Live (not zombie) processes of the run."""
        found = set()
        for path in self.procs_files:
            try:
                found |= {int(p) for p in _read(path).split()}
            except OSError:
                pass
        return {p for p in found if not is_zombie_or_gone(p)}

    def oom_kill_count(self) -> int | None:
        """How many processes the kernel's OOM killer ended in this cgroup; None if unknown."""
        if self.version == 2:
            file, path = "memory.events", self.paths.get("unified")
        else:
            file, path = "memory.oom_control", self.paths.get("memory")
        if not path:
            return None
        try:
            for line in _read(os.path.join(path, file)).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return None

    def signal_all(self, sig: int, exclude: frozenset[int] | set[int] = frozenset()) -> int:
        """Send ``sig`` once to each process of the run but ``exclude``; returns how many got it."""
        sent = 0
        for pid in self.pids() - set(exclude):
            try:
                os.kill(pid, sig)
                sent += 1
            except ProcessLookupError:
                pass
        return sent

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process of the run, again and again, until none is left; False on timeout."""
        unified = self.paths.get("unified")
        if unified and os.path.exists(os.path.join(unified, "cgroup.kill")):
            try:
                _write(os.path.join(unified, "cgroup.kill"), "1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            if not self.signal_all(signal.SIGKILL) and not self.pids():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def remove(self, timeout: float = 5.0) -> bool:
        """Remove the run's cgroup(s) (and, on v1, the shared parent when empty); False if some stayed."""
        ok = True
        for path in dict.fromkeys(self.paths.values()):
            deadline = time.monotonic() + timeout
            while os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        ok = False
                        break
                    time.sleep(0.05)
            if self.version == 1 and os.path.basename(os.path.dirname(path)) == PARENT_NAME:
                try:
                    os.rmdir(os.path.dirname(path))
                except OSError:
                    pass
        return ok

    def to_dict(self) -> dict:
        return {"version": self.version, "paths": dict(self.paths)}

    @classmethod
    def from_dict(cls, data: dict) -> RunCgroup:
        return cls(int(data.get("version", 0)), dict(data.get("paths", {})))
