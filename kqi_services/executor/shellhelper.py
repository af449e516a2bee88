"""The shell helper: the program ``shell.open_shell`` runs to put a shell inside a run's sandbox.

Started as ``python -m kqi_services.executor.shellhelper CONFIG_FD`` with the
terminal as stdin/stdout/stderr and, passed as descriptors, the target's
namespaces and root. ``CONFIG_FD`` is a memfd holding a JSON object (nothing
secret goes on a command line):

    ``procs``       the ``cgroup.procs`` files of the run's cgroup(s)
    ``namespaces``  ``[name, fd]`` pairs, in the order to enter them
    ``root``        a descriptor of the target's root directory
    ``report``      the write end of the pipe the helper reports on
    ``workdir``     where the shell starts
    ``env``         the shell's environment

It writes its own pid to every ``cgroup.procs`` file (so it and everything
it starts are counted against the run's limits and die with a halt), enters
the namespaces (the network, then the user's), ``chroot``s to the target's
root, closes every other descriptor and forks: the child — in the run's PID
namespace — makes itself a session leader with the terminal as its
controlling terminal, drops every capability (bounding, inheritable and
ambient sets) and sets no-new-privileges as bubblewrap's ``--cap-drop ALL``
does for the run, and executes the shell. The helper reports ``pid N`` (the
shell's pid) or ``error …`` lines and exits; the sandbox's init adopts the
shell.

It imports only the standard library, and nothing at all once it is inside
the run's root.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import sys
import termios

SHELL_SCRIPT = ('cd "$1" 2>/dev/null || cd /\n'
                'if [ -x /bin/bash ]; then exec /bin/bash -i; fi\n'
                'exec /bin/sh -i\n')

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0))


def _drop_capabilities(last_cap: int) -> None:
    """Empty the bounding, ambient and inheritable sets: after exec the shell has no capability."""
    for cap in range(last_cap + 1):
        _check(_prctl(PR_CAPBSET_DROP, cap), f"dropping capability {cap}")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header, data = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    for part in data:
        part.inheritable = 0
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _become_shell(config: dict, last_cap: int) -> None:
    """In the forked child, inside the run's PID namespace: session, terminal, privileges, exec."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        os.setgroups([])
    except PermissionError:  # a user namespace with setgroups denied
        pass
    _drop_capabilities(last_cap)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_DFL)
    os.umask(0o022)
    os.execve("/bin/sh", ["/bin/sh", "-c", SHELL_SCRIPT, "kqi-shell", config["workdir"]], config["env"])


def helper_main(argv: list[str]) -> None:
    """Join the cgroup, enter the namespaces and root, fork the shell, report its pid; never returns.

    From the ``chroot`` on, the run's files are around: nothing may be
    imported any more (``sys.path`` is emptied) and the process ends with
    ``os._exit``, without the interpreter's shutdown.
    """
    with os.fdopen(int(argv[0]), "rb") as f:
        config = json.loads(f.read())
    report = config["report"]
    os.set_inheritable(report, False)  # the shell must not keep it
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
        for path in config["procs"]:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        for name, fd in config["namespaces"]:
            _check(_libc.setns(fd, 0), f"entering the run's {name} namespace")
        sys.path[:] = []
        sys.path_importer_cache.clear()
        os.fchdir(config["root"])
        os.chroot(".")
        os.chdir("/")
        os.closerange(3, report)
        os.closerange(report + 1, os.sysconf("SC_OPEN_MAX"))
        pid = os.fork()
        if pid == 0:
            try:
                _become_shell(config, last_cap)
            except BaseException as e:  # noqa: BLE001 - reported, then the child ends
                os.write(report, f"error {e}\n".encode())
            os._exit(127)
        os.write(report, f"pid {pid}\n".encode())
    except BaseException as e:  # noqa: BLE001 - reported to the service
        os.write(report, f"error {e}\n".encode())
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    helper_main(sys.argv[1:])
