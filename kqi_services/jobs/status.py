"""Run statuses as the original server reports them, and how an exit becomes one.

| status | statusType | when |
|---|---|---|
| Pending | None | queued |
| Running | Running | the command runs |
| Completed | Closed | exit 0, or ``complete`` called |
| UserCanceled | Closed | cancelled by its user |
| Failed | Failed | non-zero exit |
| Killed | Failed | halted by a user or an admin (wins over the exit code it causes) |
| OOMKilled | Failed | the memory limit's OOM counter rose |
| Error | Error | the platform could not run it (conditionNote says why) |
"""

from __future__ import annotations

PENDING, RUNNING = "Pending", "Running"
COMPLETED, USER_CANCELED = "Completed", "UserCanceled"
FAILED, KILLED, OOM_KILLED, ERROR = "Failed", "Killed", "OOMKilled", "Error"

STATUS_TYPES = {
    PENDING: "None",
    RUNNING: "Running",
    COMPLETED: "Closed",
    USER_CANCELED: "Closed",
    FAILED: "Failed",
    KILLED: "Failed",
    OOM_KILLED: "Failed",
    ERROR: "Error",
}
ACTIVE = (PENDING, RUNNING)
FINISHED = tuple(s for s in STATUS_TYPES if s not in ACTIVE)


def status_type(status: str) -> str:
    return STATUS_TYPES.get(status, "None")


def exit_status(exit_code: int | None, *, halted: bool, oom_killed: bool) -> str:
    """The final status of a run whose command ended."""
    if halted:
        return KILLED
    if oom_killed:
        return OOM_KILLED
    return COMPLETED if exit_code == 0 else FAILED
