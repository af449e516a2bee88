"""The kqi service's lifeline to its hub: the service ends with the hub, and a new hub takes over a stale one.

JupyterHub stops its managed services when it stops, but a hub that is
``kill -9``ed cannot: its kqi service lived on, kept its port, and every
service the restarted hub started failed with "Address already in use".
Two mechanisms, either enough on its own:

* ``tie_to_hub`` (in the service): a watchdog thread notices within
  ``interval`` seconds that the hub is gone (the service's parent changed,
  or the hub's pid is no longer a live process) and ends the service with
  SIGTERM, as a normal platform stop does. A thread, not the event loop,
  so a busy loop cannot delay it; not ``PR_SET_PDEATHSIG``, which fires
  when the parent *thread* that forked ends, not the hub process.
* ``take_over`` (in ``kqi-hub`` before it becomes the hub): the service
  records ``{"pid", "hub_pid"}`` in the state directory; when that hub is
  gone and the service still runs (stopped, stuck, or from a version
  without the watchdog) it is stopped: SIGTERM (and SIGCONT), then SIGKILL.

Runs and notebooks are not the service's children (each has a supervisor
of its own), so they outlive it either way and the next service re-attaches
them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

log = logging.getLogger("kqi.lifeline")

PID_FILE_NAME = "kqi-service.pid"
#: the hub's pid, set in the service's environment by the hub config
HUB_PID_ENV = "KQI_HUB_PID"


def pid_file(state_dir: str) -> str:
    return os.path.join(state_dir, PID_FILE_NAME)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie is not)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def command_line(pid: int) -> str:
    """The process's argv joined by spaces, '' when unknown."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def hub_gone(hub_pid: int, parent_at_start: int) -> bool:
    """Whether the hub that started this service has ended."""
    if parent_at_start == hub_pid:
        return os.getppid() != hub_pid  # reparented the moment the hub exits, before it is reaped
    return not process_alive(hub_pid)


def tie_to_hub(state_dir: str, interval: float = 0.5, grace: float = 10.0) -> threading.Thread | None:
    """Record this service in ``state_dir`` and end it when its hub ends; called once at service start.

    Does nothing when no hub pid is in the environment (the service was
    started by hand, not by a KQI Hub).
    """
    hub_pid = int(os.environ.get(HUB_PID_ENV) or 0)
    if not hub_pid:
        log.info("Not started by a KQI Hub (%s unset): no lifeline", HUB_PID_ENV)
        return None
    record = {"pid": os.getpid(), "hub_pid": hub_pid}
    path = pid_file(state_dir)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)
    parent = os.getppid()

    def watch():
        while not hub_gone(hub_pid, parent):
            time.sleep(interval)
        log.warning("The hub (pid %d) is gone: the kqi service stops with it", hub_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)  # a SIGTERM handler that does not exit gets this long
        os._exit(1)

    thread = threading.Thread(target=watch, name="kqi-lifeline", daemon=True)
    thread.start()
    return thread


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return not process_alive(pid)


def take_over(state_dir: str, timeout: float = 10.0) -> int | None:
    """Stop the kqi service a hub that is gone left running on ``state_dir``; return its pid if one was stopped.

    A service whose hub still runs is left alone (another hub serves this
    state directory; starting a second one fails on its ports anyway).
    """
    path = pid_file(state_dir)
    try:
        with open(path) as f:
            record = json.load(f)
        pid, hub_pid = int(record["pid"]), int(record["hub_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if hub_pid != os.getpid() and process_alive(hub_pid) and "jupyterhub" in command_line(hub_pid):
        log.warning("The kqi service %d belongs to the running hub %d; left alone", pid, hub_pid)
        return None
    if pid == os.getpid() or not process_alive(pid) or "kqi_services" not in command_line(pid):
        _remove(path)
        return None
    log.warning("Stopping the kqi service %d left behind by the hub %d", pid, hub_pid)
    try:
        for sig in (signal.SIGTERM, signal.SIGCONT):  # SIGCONT: a stopped process handles its SIGTERM
            os.kill(pid, sig)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
    except ProcessLookupError:
        pass
    _remove(path)
    return pid


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
