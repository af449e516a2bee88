"""Run statuses as the original server reports them, the phases behind them, and the one state machine.

| status | statusType | phase | when |
|---|---|---|---|
| Pending | None | ``queued`` | waiting in the queue for its tenant's quota and a node |
| Pending | None | ``preparing`` | admitted (holds its resources): cloning the model, staging the inputs |
| Pending | None | ``starting`` | a notebook whose server started but does not answer through the hub yet |
| Running | Running | ``running`` | the command runs (a notebook: its server answers through the hub) |
| Completed | Closed | ``ended`` | exit 0, or ``complete`` called |
| UserCanceled | Closed | ``ended`` | cancelled by its user |
| Failed | Failed | ``ended`` | non-zero exit, or the run was lost (its supervisor, machine or service went away) |
| Killed | Failed | ``ended`` | halted by a user or an admin (wins over the exit code it causes) |
| OOMKilled | Failed | ``ended`` | the memory limit's OOM counter rose |
| Error | Error | ``ended`` | the platform could not run it (conditionNote says why) |
| Opened | None | ``opened`` | a preprocessing history run outside the platform (the external flow): results are being added |

The status strings are the contract's and never change; ``phase`` is added
to the API so a user can tell "cloning your repository" from "your command
runs". Every change of a run's status goes through :func:`apply`, which
allows only the moves of :data:`TRANSITIONS` and sets the timestamps and the
note with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PENDING, RUNNING = "Pending", "Running"
COMPLETED, USER_CANCELED = "Completed", "UserCanceled"
FAILED, KILLED, OOM_KILLED, ERROR = "Failed", "Killed", "OOMKilled", "Error"
OPENED = "Opened"

STATUS_TYPES = {
    PENDING: "None",
    RUNNING: "Running",
    COMPLETED: "Closed",
    USER_CANCELED: "Closed",
    FAILED: "Failed",
    KILLED: "Failed",
    OOM_KILLED: "Failed",
    ERROR: "Error",
    OPENED: "None",
}
ACTIVE = (PENDING, RUNNING, OPENED)
FINISHED = tuple(s for s in STATUS_TYPES if s not in ACTIVE)

QUEUED, PREPARING, STARTING, RUNS, ENDED = "queued", "preparing", "starting", "running", "ended"
#: a history of the external flow: made open (never queued), ended by complete or halt
OPENED_PHASE = "opened"
PHASES = (QUEUED, PREPARING, STARTING, RUNS, ENDED, OPENED_PHASE)
#: phases that hold node resources (admitted, not ended)
HOLDING = (PREPARING, STARTING, RUNS)
#: phases in which the executor has the run (its end is watched)
EXECUTING = (STARTING, RUNS)

#: events, each allowed from the phases listed, and the phase it leads to
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "admit": ((QUEUED,), PREPARING),  # the scheduler gave it a node: clone and stage
    "start": ((PREPARING,), RUNS),  # a job's command was started by the executor
    "serve": ((PREPARING,), STARTING),  # a notebook's server was started: wait for the hub's route
    "ready": ((STARTING,), RUNS),  # the notebook's server answers through the hub
    "end": ((QUEUED, PREPARING, STARTING, RUNS, OPENED_PHASE), ENDED),  # any final status, with its reason
    "requeue": ((ENDED,), QUEUED),  # a notebook's rerun: the same record queued again
}


class InvalidTransition(ValueError):
    """A run cannot take that event in its phase (e.g. ending a run that has ended)."""


def status_type(status: str) -> str:
    return STATUS_TYPES.get(status, "None")


def exit_status(exit_code: int | None, *, halted: bool, oom_killed: bool) -> str:
    """The final status of a run whose command ended."""
    if halted:
        return KILLED
    if oom_killed:
        return OOM_KILLED
    return COMPLETED if exit_code == 0 else FAILED


@dataclass(frozen=True)
class Change:
    """What an event does to a run: its new phase and status, and which timestamps it sets or clears."""

    phase: str
    status: str
    sets_started: bool = False
    sets_completed: bool = False
    clears_run: bool = False  # node, GPUs, timestamps and requests of a previous start go


def transition(phase: str, event: str, final: str | None = None) -> Change:
    """The change ``event`` makes to a run in ``phase``; InvalidTransition if the table forbids it.

    ``final`` is the status an ``end`` gives (one of :data:`FINISHED`); other events take none.
    """
    if event not in TRANSITIONS:
        raise InvalidTransition(f"unknown event {event!r}")
    sources, target = TRANSITIONS[event]
    if phase not in sources:
        raise InvalidTransition(f"a run that is {phase} cannot {event}")
    if event == "end":
        if final not in FINISHED:
            raise InvalidTransition(f"{final!r} is not a final status")
        return Change(target, final, sets_completed=True)
    if final is not None:
        raise InvalidTransition(f"{event} takes no final status")
    return Change(target, RUNNING if target == RUNS else PENDING, sets_started=target == RUNS,
                  clears_run=event == "requeue")


def apply(run, event: str, now: datetime, *, final: str | None = None, note: str | None = None) -> Change:
    """Move ``run`` (an ORM Run) by ``event``: phase, status, timestamps and ``condition_note`` together.

    The note replaces the previous one (None clears it). Returns the change made.
    """
    change = transition(run.phase, event, final)
    run.phase, run.status = change.phase, change.status
    run.condition_note = note
    if change.sets_started:
        run.started_at = now
    if change.sets_completed:
        run.completed_at = now
    if change.clears_run:
        run.node, run.gpu_ids, run.end_requested = None, "", None
        run.started_at = run.completed_at = run.expires_at = None
    return change
