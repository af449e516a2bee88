"""Runs outlive the kqi service: a killed service, a killed run, a stopped platform.

Each test starts a platform of its own (``start_platform``), because it kills
or stops it. A run sits under a supervisor of its own (DESIGN.md, executors):

- the kqi service SIGKILLed while a run runs: JupyterHub restarts the managed
  service, which re-attaches; the run ends Completed with its output and its
  log, and nothing stays Running;
- the run's supervisor and sandbox SIGKILLed while the service is up: the run
  ends Failed, its conditionNote says it was lost, its run token is revoked;
- the whole platform stopped (SIGTERM) while a run runs and started again on
  the same state dir: the run went on meanwhile and is re-attached, or
  reported with its result when it ended while the platform was down;
- two platforms on one host (each numbers its runs from 1): the end of one's
  ``training-N`` leaves the other's ``training-N`` running.
"""

import io
import os
import shutil
import signal
import time
import uuid
import zipfile

import pytest
import requests
from conftest import (
    Api,
    Platform,
    _process_tree,
    alive,
    cmdline,
    make_lab,
    require_or_skip,
    service_pid,
    submit,
    wait_for,
    wait_until,
)

from kqi_services.executor import LocalExecutor, Mount, RunSpec
from kqi_services.executor.cgroups import choose_hierarchies, probe_hierarchies
from kqi_services.executor.supervisor import read_json, supervisor_pid

pytestmark = pytest.mark.platform

FINISHED = ("Completed", "Failed", "Killed", "OOMKilled", "Error", "UserCanceled")


def environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = f.read().decode(errors="replace").split("\0")
    except OSError:
        return {}
    return dict(e.split("=", 1) for e in entries if "=" in e)


def run_processes(platform: Platform, run_id: int) -> dict[int, str]:
    """{pid: what} of a training's supervisor, its sandbox and everything running inside it."""
    key = f"training-{run_id}"
    dirs = (os.path.join(platform.state_dir, "executor", key), os.path.join(platform.state_dir, "runs", key))
    supervisor = supervisor_pid(dirs[0])
    running = read_json(os.path.join(dirs[0], "running.json")) or {}
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or not alive(int(name)):
            continue
        pid, args = int(name), cmdline(int(name))
        if pid == supervisor:
            found[pid] = "supervisor"
        elif environ(pid).get("TRAINING_ID") == str(run_id) and "KQI_TOKEN" in environ(pid):
            found[pid] = "run"
        # bubblewrap (its paths are in a descriptor, not its command line) and its init, or the fallback's
        elif pid == running.get("sandbox_pid") or parent_pid(pid) == running.get("sandbox_pid") or any(
                a == d or a.startswith(d + "/") for a in args for d in dirs):
            found[pid] = "sandbox"
    return found


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def answering(api: Api, run_id: int):
    """The run as the API reports it, or None while the service is down."""
    try:
        r = api.get(f"/training/{run_id}")
    except requests.RequestException:
        return None
    return r.json() if r.status_code == 200 else None


def assert_results(api: Api, run_id: int, log_lines: list[str], output: dict[str, bytes]) -> None:
    """The run's log is attached with ``log_lines`` in it, and output.zip and /kqi/output hold ``output``."""
    files = {f["fileName"]: f for f in api.get(f"/training/{run_id}/files", params={"withUrl": "true"}).json()}
    assert set(files) == {f"training_stdout_stderr_{run_id}.log", "output.zip"}, files
    log = requests.get(files[f"training_stdout_stderr_{run_id}.log"]["url"], timeout=30).text
    for line in log_lines:
        assert line in log, log
    archive = zipfile.ZipFile(io.BytesIO(requests.get(files["output.zip"]["url"], timeout=30).content))
    assert {n: archive.read(n) for n in archive.namelist()} == output
    for name, payload in output.items():
        listing = api.get(f"/training/{run_id}/container-files", params={"withUrl": "true"}).json()
        (entry,) = [f for f in listing["files"] if f["fileName"] == name]
        assert requests.get(entry["url"], timeout=30).content == payload


def run_token_of(platform: Platform, run_id: int) -> str:
    """KQI_TOKEN as the run's own processes see it."""
    tokens = {environ(pid)["KQI_TOKEN"] for pid, what in run_processes(platform, run_id).items() if what == "run"}
    assert len(tokens) == 1, tokens
    return tokens.pop()


def revoked(platform: Platform, token: str) -> bool:
    """Neither the hub nor the kqi service accepts ``token`` any more."""
    hub = requests.get(platform.url + "/hub/api/user", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    service = Api(platform.api_base, token).get("/account")
    return hub.status_code == 403 and service.status_code in (401, 403)


def nothing_running(api: Api) -> None:
    runs = api.get("/training").json()
    assert [r for r in runs if r["status"] in ("Running", "Pending")] == [], runs


def test_a_killed_service_is_restarted_and_reattaches_to_a_running_run(start_platform, tmp_path):
    platform = start_platform()
    lab = make_lab(platform, tmp_path / "git")
    api = lab["api"]
    run = submit(lab, "echo started; sleep 8; echo 42 > /kqi/output/result.txt; echo done", zip=True)
    wait_for(api, run["id"], statuses=("Running",))
    wait_until(lambda: "started" in api.get(f"/training/{run['id']}/log").text, 20, "the run to start")
    run_token = run_token_of(platform, run["id"])
    old = service_pid(platform)

    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not alive(old), 5, "the service to die")
    assert any(p == "run" for p in run_processes(platform, run["id"]).values())  # the run goes on meanwhile
    # JupyterHub notices the managed service exited (it polls it) and starts it again
    seen = wait_until(lambda: answering(api, run["id"]), 45, "the restarted service to answer")
    new = service_pid(platform)
    assert new != old
    platform.children = _process_tree(platform.process.pid)  # the teardown checks the new service stops too
    assert seen["status"] in ("Running", "Completed"), seen

    done = wait_for(api, run["id"], timeout=30)
    assert done["status"] == "Completed" and done["statusType"] == "Closed", done
    assert not done["conditionNote"], done
    assert_results(api, run["id"], ["started", "done"], {"result.txt": b"42\n"})
    nothing_running(api)
    assert revoked(platform, run_token)  # the restarted service still knew which token was the run's
    assert f"re-attached to training-{run['id']}" in platform.log()


def test_a_run_whose_supervisor_and_sandbox_are_killed_ends_failed_as_lost(start_platform, tmp_path):
    platform = start_platform()
    lab = make_lab(platform, tmp_path / "git")
    api = lab["api"]
    run = submit(lab, "echo started; sleep 300; echo never")
    wait_for(api, run["id"], statuses=("Running",))
    wait_until(lambda: "started" in api.get(f"/training/{run['id']}/log").text, 20, "the run to start")
    processes = wait_until(lambda: (p := run_processes(platform, run["id"])) and
                           {"supervisor", "sandbox", "run"} <= set(p.values()) and p, 10, "the run's processes")
    run_token = run_token_of(platform, run["id"])
    assert Api(platform.api_base, run_token).get("/account").status_code == 200  # now cached by the service

    for pid in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not run_processes(platform, run["id"]), 10, "every process of the run to die")

    done = wait_for(api, run["id"], timeout=20)
    assert (done["status"], done["statusType"]) == ("Failed", "Failed"), done
    assert "lost" in (done["conditionNote"] or "").lower(), done
    assert [e["message"] for e in api.get(f"/training/{run['id']}/events").json()] == [done["conditionNote"]]
    assert revoked(platform, run_token)
    log = api.get(f"/training/{run['id']}/log").text
    assert "started" in log and "never" not in log
    nothing_running(api)
    # the service was not touched: it is the one that started
    assert service_pid(platform) in platform.children


def test_a_run_outlives_a_platform_stop_and_is_reported_after_the_start(start_platform, tmp_path):
    state = str(tmp_path / "state")
    first = start_platform(state)
    lab = make_lab(first, tmp_path / "git")
    api = lab["api"]
    run = submit(lab, "echo started; sleep 10; echo 7 > /kqi/output/result.txt; echo done", zip=True)
    wait_for(api, run["id"], statuses=("Running",))
    wait_until(lambda: "started" in api.get(f"/training/{run['id']}/log").text, 20, "the run to start")

    first.stop()
    assert first.process.returncode is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(first.api_base + "/version", timeout=2)
    # the run is not a child of the platform: it goes on while the platform is down
    assert "run" in run_processes(first, run["id"]).values()

    port = int(first.url.rsplit(":", 1)[1])
    second = start_platform(state, port=port)
    done = wait_for(api, run["id"], timeout=30)  # the user's token survived the restart
    assert done["status"] == "Completed" and done["statusType"] == "Closed", done
    assert not done["conditionNote"], done
    assert_results(api, run["id"], ["started", "done"], {"result.txt": b"7\n"})
    nothing_running(api)
    # followed again whether it still ran ("running") or ended while the platform was down ("finished")
    assert f"re-attached to training-{run['id']} (" in second.log().split("KQI Hub:")[-1]


def test_two_executors_on_one_host_do_not_kill_each_others_same_numbered_run(tmp_path):
    if not shutil.which("bwrap"):
        require_or_skip("bwrap is not installed (apt-get install bubblewrap)")
    if os.geteuid() != 0 or choose_hierarchies(probe_hierarchies())[0] == 0:
        pytest.skip("runs get no cgroups here, so they cannot share one")
    run_id = f"training-{uuid.uuid4().hex[:8]}"  # one id on both, as two fresh platforms both have training-1
    first, second = LocalExecutor(str(tmp_path / "first")), LocalExecutor(str(tmp_path / "second"))
    outputs = []
    for name in ("first-output", "second-output"):
        (tmp_path / name).mkdir()
        outputs.append([Mount(str(tmp_path / name), "/kqi/output")])
    first.start(RunSpec(run_id, "echo running; sleep 30", mounts=outputs[0]))
    try:
        wait_until(lambda: first.status(run_id).phase == "running", 15, "the first run to run")
        second.start(RunSpec(run_id, "true", mounts=outputs[1]))
        wait_until(lambda: second.status(run_id).phase == "finished", 15, "the second run to end")
        time.sleep(0.5)
        state = first.status(run_id)
        assert state.phase == "running", state
    finally:
        first.halt(run_id)
        wait_until(lambda: first.status(run_id).phase in ("finished", "lost"), 20, "the first run to end")
        for executor in (first, second):
            executor.cleanup(run_id)
