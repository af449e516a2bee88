"""Executors: run a complete ``RunSpec`` (command, mounts, env, limits, devices) somewhere.

``base`` is the interface the job engine uses; ``local`` the embedded backend
(bubblewrap sandboxes under per-run supervisors, cgroup limits where the host
allows them). Nothing here knows the ORM, the scheduler or tornado.
"""

from .base import Executor, ExecutorError, RunActive, RunExists, RunHandle, RunNotFound, RunState
from .spec import Mount, RunSpec, SpecError

__all__ = ["Executor", "ExecutorError", "LocalExecutor", "Mount", "RunActive", "RunExists", "RunHandle",
           "RunNotFound", "RunSpec", "RunState", "SpecError"]


def __getattr__(name):
    # imported on first use, so that ``python -m kqi_services.executor.supervisor``
    # does not find its own module already imported through ``local``
    if name == "LocalExecutor":
        from .local import LocalExecutor

        return LocalExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
