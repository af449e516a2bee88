"""The run state machine (``jobs.status``): its table, exactly, and what applying an event writes."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from kqi_services.jobs import status as st

NOW = datetime(2026, 12, 3, 12, 0, 0)
LATER = datetime(2026, 12, 3, 13, 0, 0)

#: (phase, event, final) -> (phase, status) for every allowed move; everything else is refused
ALLOWED = {
    ("queued", "admit", None): ("preparing", "Pending"),
    ("preparing", "start", None): ("running", "Running"),
    ("preparing", "serve", None): ("starting", "Pending"),
    ("starting", "ready", None): ("running", "Running"),
    ("ended", "requeue", None): ("queued", "Pending"),
    **{(phase, "end", final): ("ended", final)
       for phase in ("queued", "preparing", "starting", "running", "opened") for final in st.FINISHED},
}
EVENTS = ("admit", "start", "serve", "ready", "end", "requeue")


@pytest.mark.parametrize("phase", st.PHASES)
@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("final", (None, *st.FINISHED, "Running", "Pending"))
def test_transition_table(phase, event, final):
    expected = ALLOWED.get((phase, event, final))
    if expected is None:
        with pytest.raises(st.InvalidTransition):
            st.transition(phase, event, final)
    else:
        change = st.transition(phase, event, final)
        assert (change.phase, change.status) == expected


def test_the_table_is_what_the_module_documents():
    assert st.TRANSITIONS == {
        "admit": (("queued",), "preparing"),
        "start": (("preparing",), "running"),
        "serve": (("preparing",), "starting"),
        "ready": (("starting",), "running"),
        "end": (("queued", "preparing", "starting", "running", "opened"), "ended"),
        "requeue": (("ended",), "queued"),
    }
    assert st.FINISHED == ("Completed", "UserCanceled", "Failed", "Killed", "OOMKilled", "Error")
    assert st.HOLDING == ("preparing", "starting", "running")
    assert {s: st.status_type(s) for s in (*st.ACTIVE, *st.FINISHED)} == {
        "Pending": "None", "Running": "Running", "Opened": "None", "Completed": "Closed", "UserCanceled": "Closed",
        "Failed": "Failed", "Killed": "Failed", "OOMKilled": "Failed", "Error": "Error"}


def fresh_run(**fields):
    run = dict(phase="queued", status="Pending", condition_note=None, started_at=None, completed_at=None,
               expires_at=None, node=None, gpu_ids="", end_requested=None)
    run.update(fields)
    return SimpleNamespace(**run)


def test_a_job_from_queue_to_completed():
    run = fresh_run()
    st.apply(run, "admit", NOW, note="Preparing: cloning")
    assert (run.phase, run.status, run.condition_note, run.started_at) == ("preparing", "Pending", "Preparing: cloning",
                                                                         None)
    st.apply(run, "start", NOW)
    assert (run.phase, run.status, run.condition_note, run.started_at) == ("running", "Running", None, NOW)
    st.apply(run, "end", LATER, final="Completed")
    assert (run.phase, run.status, run.started_at, run.completed_at) == ("ended", "Completed", NOW, LATER)
    with pytest.raises(st.InvalidTransition, match="a run that is ended cannot end"):
        st.apply(run, "end", LATER, final="Killed")
    assert run.status == "Completed"  # a refused event changes nothing


def test_a_queued_run_halted_never_started():
    run = fresh_run()
    st.apply(run, "end", NOW, final="Killed")
    assert (run.phase, run.status, run.started_at, run.completed_at) == ("ended", "Killed", None, NOW)


def test_a_notebook_is_running_only_when_served_and_a_rerun_clears_the_last_start():
    run = fresh_run()
    st.apply(run, "admit", NOW)
    st.apply(run, "serve", NOW, note="Starting")
    assert (run.phase, run.status, run.started_at) == ("starting", "Pending", None)
    st.apply(run, "ready", LATER)
    assert (run.phase, run.status, run.started_at, run.condition_note) == ("running", "Running", LATER, None)
    run.node, run.gpu_ids, run.expires_at, run.end_requested = "node-1", "0,1", LATER, "Killed"
    st.apply(run, "end", LATER, final="Killed")
    st.apply(run, "requeue", LATER)
    assert (run.phase, run.status, run.node, run.gpu_ids, run.started_at, run.completed_at, run.expires_at,
            run.end_requested) == ("queued", "Pending", None, "", None, None, None, None)


def test_exit_status():
    assert st.exit_status(0, halted=False, oom_killed=False) == "Completed"
    assert st.exit_status(3, halted=False, oom_killed=False) == "Failed"
    assert st.exit_status(None, halted=False, oom_killed=False) == "Failed"
    assert st.exit_status(137, halted=False, oom_killed=True) == "OOMKilled"
    assert st.exit_status(137, halted=True, oom_killed=True) == "Killed"  # a halt wins over what it causes
