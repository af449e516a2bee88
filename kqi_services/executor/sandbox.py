"""Command lines that run a ``RunSpec`` in a sandbox on this host, as pure functions.

``bwrap_argv`` builds a bubblewrap sandbox whose root is a fresh tmpfs holding
only the host's ``/usr`` (read-only), a minimal ``/etc`` (the entries of
``ETC_ENTRIES`` the host has and lets everyone read: never ``shadow``, ssh
host keys or private TLS keys), the top-level links or directories the host
has (``/bin`` → ``usr/bin``…), a new ``/dev``, ``/proc`` and ``/tmp``, the
run's mounts and its assigned GPU device nodes (with ``/sys`` read-only for
GPU runs); every namespace is new, capabilities are dropped and the command
is PID 2 of its own PID namespace under bubblewrap's init. The network
namespace is bubblewrap's own (loopback only) for ``none``, the host's for
``host``, and for ``private``/``outside`` the one the supervisor prepared
(``netns.py``) and starts bubblewrap in. ``bwrap_invocation`` moves every
option into a descriptor (``--args FD``), so no host path and no variable
(tokens!) is on a command line, the sandbox's ``/proc/1/cmdline`` included. ``unshare_argv`` is
the fallback for hosts without bubblewrap: the same root built by a shell
prologue in new mount, PID, IPC and UTS namespaces, then ``chroot`` (it needs
root: it mounts). ``sandbox_command`` picks one and lists what could not be
enforced. Host facts come in a ``HostLayout`` (``probe_host`` reads them), so
the builders do no I/O and are tested against exact argv lists.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field

from .spec import DEFAULT_PATH, RunSpec, under

#: written by the supervisor into the run directory for runs on the outside network (slirp4netns' DNS)
RESOLV_CONF = "resolv.conf"
OUTSIDE_RESOLV_CONF = "nameserver 10.0.2.3\n"

TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
GPU_SHARED_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

#: what of the host's /etc a run sees (read-only; only what exists and everyone may read):
#: users and groups, name resolution, the dynamic linker, CA certificates, alternatives
#: (many /usr/bin tools link there), time zone, terminal and MIME data. Everything else is absent.
ETC_ENTRIES = (
    "passwd", "group", "hosts", "host.conf", "nsswitch.conf", "resolv.conf", "gai.conf", "protocols",
    "services", "networks", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl/certs",
    "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "localtime", "timezone", "mime.types",
    "os-release", "debian_version", "terminfo", "inputrc", "bash.bashrc", "profile", "shells", "magic",
    "gitconfig", "fonts", "login.defs", "mailcap",
)


class SandboxUnavailable(RuntimeError):
    """Neither bubblewrap nor unshare can run here."""


@dataclass(frozen=True)
class HostLayout:
    """What the sandbox builders need to know about the host.

    Attributes:
        top_level: for each of ``TOP_LEVEL`` that exists at the host's root,
            its symlink target (``"usr/bin"``) or ``""`` for a real directory.
        dev_nodes: names of the ``/dev/nvidia*`` nodes that exist.
        bwrap: path of bubblewrap, or ``""``.
        unshare: path of util-linux ``unshare``, or ``""``.
        setpriv: path of util-linux ``setpriv`` (drops capabilities in the fallback), or ``""``.
        etc: the ``ETC_ENTRIES`` a run sees: (name, symlink target or ``""``).
    """

    top_level: dict[str, str] = field(default_factory=dict)
    dev_nodes: frozenset[str] = frozenset()
    bwrap: str = ""
    unshare: str = ""
    setpriv: str = ""
    etc: tuple[tuple[str, str], ...] = ()


def visible_etc_entries(etc_dir: str = "/etc") -> tuple[tuple[str, str], ...]:
    """The ``ETC_ENTRIES`` present in ``etc_dir`` that everyone may read (links kept as links)."""
    import stat

    entries = []
    for name in ETC_ENTRIES:
        path = os.path.join(etc_dir, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            entries.append((name, os.readlink(path)))
        elif (stat.S_ISREG(info.st_mode) and info.st_mode & 0o004) or (
                stat.S_ISDIR(info.st_mode) and info.st_mode & 0o005 == 0o005):
            entries.append((name, ""))
    return tuple(entries)


def probe_host() -> HostLayout:
    """The layout of this host's root, ``/dev/nvidia*`` and sandbox tools."""
    top = {}
    for name in TOP_LEVEL:
        path = "/" + name
        if os.path.islink(path):
            top[name] = os.readlink(path)
        elif os.path.isdir(path):
            top[name] = ""
    try:
        nodes = frozenset(n for n in os.listdir("/dev") if n.startswith("nvidia"))
    except OSError:
        nodes = frozenset()
    return HostLayout(top, nodes, shutil.which("bwrap") or "", shutil.which("unshare") or "",
                      shutil.which("setpriv") or "", visible_etc_entries())


def sorted_mounts(spec: RunSpec):
    """The mounts, parents before children (so a mount below another stays visible)."""
    return sorted(spec.mounts, key=lambda m: (m.target.count("/"), m.target))


def workdir_needs_dir(spec: RunSpec) -> bool:
    """Whether the working directory must be created (no mount holds it)."""
    return not any(under(spec.workdir, m.target) for m in spec.mounts)


def gpu_nodes(spec: RunSpec, layout: HostLayout) -> tuple[list[str], list[str]]:
    """(device nodes to bind, notes): the shared NVIDIA nodes plus ``nvidiaN`` of each assigned GPU."""
    if not spec.gpus:
        return [], []
    nodes, notes = [], []
    for name in GPU_SHARED_NODES:
        if name in layout.dev_nodes:
            nodes.append("/dev/" + name)
    for index in spec.gpus:
        name = f"nvidia{index}"
        if name in layout.dev_nodes:
            nodes.append("/dev/" + name)
        else:
            notes.append(f"GPU {index} was assigned but /dev/{name} does not exist on this host")
    if spec.gpus and "CUDA_VISIBLE_DEVICES" not in spec.env:
        notes.append("GPUs are assigned but CUDA_VISIBLE_DEVICES is not set")
    return nodes, notes


def bwrap_argv(spec: RunSpec, layout: HostLayout, extra_ro_paths: tuple[str, ...] = ()) -> list[str]:
    """The bubblewrap command line of ``spec``.

    Args:
        spec: a validated run spec.
        layout: the host's layout (``probe_host()``).
        extra_ro_paths: host paths shown read-only at the same place (a
            Python or conda tree outside ``/usr`` that commands need).
    """
    argv = [layout.bwrap or "bwrap", "--die-with-parent", "--new-session", "--unshare-all"]
    if spec.network == "host" or spec.prepared_network:
        argv.append("--share-net")  # the host's, or the namespace the supervisor starts bubblewrap in
    argv += ["--hostname", spec.run_id, "--cap-drop", "ALL", "--tmpfs", "/", "--ro-bind", "/usr", "/usr"]
    argv += etc_bwrap_args(spec, layout)
    for name in TOP_LEVEL:
        if name in layout.top_level:
            target = layout.top_level[name]
            argv += ["--symlink", target, "/" + name] if target else ["--ro-bind", "/" + name, "/" + name]
    argv += ["--dev", "/dev"]
    for node in gpu_nodes(spec, layout)[0]:
        argv += ["--dev-bind", node, node]
    argv += ["--proc", "/proc", "--tmpfs", "/tmp"]
    if spec.gpus:  # NVML and NCCL read the PCI topology there (containers see it read-only too)
        argv += ["--ro-bind", "/sys", "/sys"]
    for path in extra_ro_paths:
        argv += ["--ro-bind", path, path]
    for m in sorted_mounts(spec):
        argv += ["--ro-bind" if m.effective_read_only else "--bind", m.host_path, m.target]
    if workdir_needs_dir(spec):
        argv += ["--dir", spec.workdir]
    argv += ["--chdir", spec.workdir, "--clearenv"]
    for name, value in sorted(spec.sandbox_env().items()):
        argv += ["--setenv", name, value]
    return argv + ["--", "/bin/sh", "-c", spec.command]


def etc_bwrap_args(spec: RunSpec, layout: HostLayout) -> list[str]:
    """The minimal ``/etc`` (``ETC_ENTRIES``), with the run's own ``resolv.conf`` on the outside network."""
    argv = ["--tmpfs", "/etc"]
    for name, target in layout.etc:
        if name == "resolv.conf" and spec.network == "outside":
            continue
        argv += ["--symlink", target, "/etc/" + name] if target else ["--ro-bind", "/etc/" + name, "/etc/" + name]
    if spec.network == "outside" and spec.run_dir:
        argv += ["--ro-bind", os.path.join(spec.run_dir, RESOLV_CONF), "/etc/resolv.conf"]
    return argv + ["--remount-ro", "/etc"]


def bwrap_invocation(argv: list[str], args_fd: int) -> tuple[list[str], bytes]:
    """(command line, options) for ``bwrap --args FD``: only the command stays on the command line.

    ``argv`` is ``bwrap_argv``'s list; the options go, NUL-separated, into a
    descriptor the caller fills with the returned bytes.
    """
    split = argv.index("--")
    options = b"".join(a.encode() + b"\0" for a in argv[1:split])
    return [argv[0], "--args", str(args_fd), *argv[split + 1:]], options


def _bind_lines(source: str, target: str, read_only: bool, flags: str = "") -> list[str]:
    """Shell lines binding ``source`` on ``$KQI_ROOT_DIR``+``target`` (a file or a directory)."""
    src, dst = shlex.quote(source), '"$KQI_ROOT_DIR"' + shlex.quote(target)
    lines = [f"if [ -d {src} ]; then mkdir -p {dst}; else mkdir -p \"$(dirname {dst})\"; touch {dst}; fi",
             f"mount --bind {src} {dst}"]
    if read_only or flags:
        opts = ",".join(["remount", "bind"] + (["ro"] if read_only else []) + ([flags] if flags else []))
        lines.append(f"mount -o {opts} {dst}")
    return lines


def unshare_prologue(spec: RunSpec, layout: HostLayout, root_dir: str,
                     extra_ro_paths: tuple[str, ...] = ()) -> str:
    """The shell script that builds the sandbox root on ``root_dir`` and starts the command.

    It runs as PID 1 of the new PID namespace; the command is started as its
    child (so, as under bubblewrap, the command is not the namespace's init
    and its default signal handling stays intact) and its exit status is the
    script's.
    """
    lines = ["set -e", "kqi_run_path=$PATH", f"PATH={DEFAULT_PATH}", f"KQI_ROOT_DIR={shlex.quote(root_dir)}",
             'mount -t tmpfs -o mode=755 kqi-root "$KQI_ROOT_DIR"',
             'mkdir -p "$KQI_ROOT_DIR/usr" "$KQI_ROOT_DIR/etc" "$KQI_ROOT_DIR/dev" "$KQI_ROOT_DIR/proc" "$KQI_ROOT_DIR/tmp"']
    lines += _bind_lines("/usr", "/usr", True, "nosuid,nodev")
    # a copy, in one process, on a tmpfs then made read-only (a bind per entry would cost ~100 processes)
    lines += ['mount -t tmpfs -o mode=755,nosuid,nodev kqi-etc "$KQI_ROOT_DIR/etc"']
    entries = [name for name, _ in layout.etc if not (name == "resolv.conf" and spec.network == "outside")]
    if entries:
        lines.append("cp -a --parents -- " + " ".join(shlex.quote("/etc/" + n) for n in entries)
                     + ' "$KQI_ROOT_DIR"')
    if spec.network == "outside" and spec.run_dir:
        lines.append(f'cp -- {shlex.quote(os.path.join(spec.run_dir, RESOLV_CONF))} "$KQI_ROOT_DIR/etc/resolv.conf"')
    lines += ['mount -o remount,ro,nosuid,nodev "$KQI_ROOT_DIR/etc"']
    for name in TOP_LEVEL:
        if name in layout.top_level:
            target = layout.top_level[name]
            if target:
                lines.append(f'ln -s {shlex.quote(target)} "$KQI_ROOT_DIR/{name}"')
            else:
                lines += _bind_lines("/" + name, "/" + name, True)
    lines += ['mount -t tmpfs -o mode=755,nosuid kqi-dev "$KQI_ROOT_DIR/dev"']
    for node in DEV_NODES:
        lines += [f'touch "$KQI_ROOT_DIR/dev/{node}"', f'mount --bind /dev/{node} "$KQI_ROOT_DIR/dev/{node}"']
    lines += ['ln -s /proc/self/fd "$KQI_ROOT_DIR/dev/fd"', 'ln -s /proc/self/fd/0 "$KQI_ROOT_DIR/dev/stdin"',
              'ln -s /proc/self/fd/1 "$KQI_ROOT_DIR/dev/stdout"', 'ln -s /proc/self/fd/2 "$KQI_ROOT_DIR/dev/stderr"',
              'mkdir "$KQI_ROOT_DIR/dev/shm" "$KQI_ROOT_DIR/dev/pts"', 'mount -t tmpfs -o mode=1777,nosuid,nodev kqi-shm "$KQI_ROOT_DIR/dev/shm"',
              'mount -t devpts -o newinstance,ptmxmode=0666 devpts "$KQI_ROOT_DIR/dev/pts"',
              'ln -s pts/ptmx "$KQI_ROOT_DIR/dev/ptmx"']
    for node in gpu_nodes(spec, layout)[0]:
        lines += [f'touch "$KQI_ROOT_DIR{node}"', f'mount --bind {node} "$KQI_ROOT_DIR{node}"']
    lines += ['mount -t proc -o nosuid,nodev,noexec proc "$KQI_ROOT_DIR/proc"',
              'mount -t tmpfs -o mode=1777,nosuid,nodev kqi-tmp "$KQI_ROOT_DIR/tmp"']
    if spec.gpus:
        lines += _bind_lines("/sys", "/sys", True)
    if spec.network == "none" or (spec.network == "private" and not spec.prepared_network):
        lines.append("if command -v ip >/dev/null; then ip link set lo up; fi")
    for path in extra_ro_paths:
        lines += _bind_lines(path, path, True)
    for m in sorted_mounts(spec):
        lines += _bind_lines(m.host_path, m.target, m.effective_read_only)
    if workdir_needs_dir(spec):
        lines.append(f'mkdir -p "$KQI_ROOT_DIR"{shlex.quote(spec.workdir)}')
    # the run's variables are this script's environment (never a command line); the prologue's own are unset first
    lines += ["set +e", 'set -- "$(command -v chroot)" "$KQI_ROOT_DIR" "$@"', "PATH=$kqi_run_path",
              "unset KQI_ROOT_DIR kqi_run_path", '"$@" &', "wait $!", "exit $?"]
    return "\n".join(lines)


def unshare_argv(spec: RunSpec, layout: HostLayout, root_dir: str,
                 extra_ro_paths: tuple[str, ...] = ()) -> list[str]:
    """The util-linux ``unshare`` command line of ``spec`` (the fallback without bubblewrap).

    Args:
        spec: a validated run spec.
        layout: the host's layout.
        root_dir: an empty host directory to mount the sandbox's root on (in
            the run's own mount namespace: the host sees it stay empty).
        extra_ro_paths: as for ``bwrap_argv``.

    The run's variables are not on this command line: start it with
    ``spec.sandbox_env()`` as its environment (``unshare_environment``).
    """
    argv = [layout.unshare or "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--ipc", "--uts"]
    if spec.network == "none" or (spec.network == "private" and not spec.prepared_network):
        argv.append("--net")
    argv += ["--", "/bin/sh", "-c", unshare_prologue(spec, layout, root_dir, extra_ro_paths), "kqi-sandbox"]
    if layout.setpriv:
        argv += [layout.setpriv, "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs"]
    argv += ["/bin/sh", "-c", 'cd "$1" || exit 126; exec /bin/sh -c "$2"', "kqi-run", spec.workdir,
             spec.command]
    return argv


def unshare_environment(spec: RunSpec) -> dict[str, str]:
    """The environment ``unshare_argv``'s command starts with: the run's own, with a PATH for the prologue.

    The prologue finds its tools (mount, mkdir, chroot) on ``DEFAULT_PATH``
    and gives the command the run's own PATH back.
    """
    return spec.sandbox_env()


def sandbox_command(spec: RunSpec, layout: HostLayout, root_dir: str, prefer: str = "auto",
                    extra_ro_paths: tuple[str, ...] = ()) -> tuple[str, list[str], list[str]]:
    """(sandbox kind, argv, notes of what is not enforced) for ``spec`` on this host.

    Args:
        prefer: ``"auto"`` (bubblewrap when installed, else unshare),
            ``"bwrap"`` or ``"unshare"``.
        root_dir: the empty directory the unshare fallback builds its root on.

    Raises:
        SandboxUnavailable: when neither tool is installed.
    """
    if prefer not in ("auto", "bwrap", "unshare"):
        raise ValueError(f"unknown sandbox {prefer!r}")
    notes = list(gpu_nodes(spec, layout)[1])
    if prefer in ("auto", "bwrap") and layout.bwrap:
        return "bwrap", bwrap_argv(spec, layout, extra_ro_paths), notes
    if not layout.unshare:
        raise SandboxUnavailable("neither bubblewrap (bwrap) nor util-linux unshare is installed")
    if prefer != "unshare":
        notes.append("bubblewrap is not installed: the run uses the unshare fallback (chroot, no user namespace)")
    if not layout.setpriv:
        notes.append("setpriv is not installed: the run keeps root's capabilities")
    return "unshare", unshare_argv(spec, layout, root_dir, extra_ro_paths), notes
