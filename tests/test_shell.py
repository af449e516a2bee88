"""Shells into running trainings: a websocket terminal through the service, inside the job's sandbox.

The executor tests open shells into real sandboxes (bubblewrap and the unshare
fallback) and talk to the terminal directly; the platform tests connect
through the hub's proxy as JupyterLab's terminal widget or a CLI would, with
terminado's JSON protocol, and check what a user sees and what is left on
the host.
"""

import asyncio
import base64
import json
import os
import re
import select
import time

import pytest
import requests
from conftest import hub_login, new_id, poll_until, submit, unique, wait_for
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from kqi_services.executor import Executor, ExecutorError, Mount, RunSpec
from kqi_services.executor.cgroups import RunCgroup
from kqi_services.executor.shell import ShellUnavailable, open_shell, shell_environment
from kqi_services.executor.supervisor import RUNNING_FILE, read_json

PROBE = ("echo id=$TRAINING_ID; echo kqi=$(ls /kqi | tr '\\n' ,); echo init=$(tr '\\0' ' ' < /proc/1/cmdline); "
         "echo host=$(hostname); echo tty=$(tty); echo pid=$$; echo $(grep -E '^(CapEff|NoNewPrivs)' /proc/self/status);"
         " echo token=${KQI_TOKEN:+set}; echo columns=${COLUMNS:-unset}; echo svc=${JUPYTERHUB_API_TOKEN:-none};"
         " echo marker-$((6*7))\n")


def lines(output: str) -> list[str]:
    """The terminal's output as lines, without bash's bracketed-paste switches and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "").split("\n")


def values(output: str) -> dict:
    """``key=value`` lines of the shell's output (the echoed command line has ``$`` in them)."""
    return dict(m.groups() for line in lines(output) if (m := re.match(r"(\w+)=([^$]*)$", line)))


def processes_with(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (as ``pgrep -f``)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and int(name) != os.getpid():
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(name))
        except OSError:
            pass
    return found


def pid_namespace_members(pid: int) -> set[int]:
    """Live processes in ``pid``'s PID namespace (seen from the host)."""
    ns = os.readlink(f"/proc/{pid}/ns/pid")
    found = set()
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.readlink(f"/proc/{name}/ns/pid") == ns:
                with open(f"/proc/{name}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        found.add(int(name))
        except OSError:
            pass
    return found


# the executor side -------------------------------------------------------------------------


class Terminal:
    """The master side of a shell's terminal, read with a deadline."""

    def __init__(self, shell):
        self.shell = shell

    def run(self, command: str, until: str, timeout: float = 15) -> str:
        os.write(self.shell.master, command.encode())
        out, deadline = b"", time.monotonic() + timeout
        while until.encode() not in out:
            assert time.monotonic() < deadline, f"no {until!r} in {out.decode(errors='replace')!r}"
            if select.select([self.shell.master], [], [], 0.2)[0]:
                data = self.shell.read()
                assert data != b"", f"the terminal closed: {out!r}"
                out += data or b""
        return out.decode(errors="replace")


def start_sleeping_run(ex, tmp_path, command="sleep 300", phases=("running",), **spec):
    run_id = new_id()
    (tmp_path / "git").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    ex.start(RunSpec(run_id, command, env={"TRAINING_ID": "7", "COLUMNS": "1000", "LANG": "C.UTF-8"},
                     mounts=[Mount(str(tmp_path / "git"), "/kqi/git"), Mount(str(tmp_path / "out"), "/kqi/output")],
                     pids_max=64, memory_bytes=512 * 1024**2, **spec))
    poll_until(lambda: ex.status(run_id).phase in phases, what=f"{run_id} to run")
    return run_id


def shell_into(ex, run_id):
    target = poll_until(lambda: _target_or_none(ex, run_id), what="the sandbox to be set up")
    return open_shell(target)


def _target_or_none(ex, run_id):
    try:
        return ex.shell_target(run_id)
    except ShellUnavailable:
        return None


def test_executors_without_shells_say_so():
    class Remote(Executor):
        name = "remote"
        start = status = halt = running_runs = run_ids = log_path = cleanup = None

    with pytest.raises(ExecutorError, match="remote executor cannot open shells"):
        Remote().shell_target("training-1")


def test_shell_environment_is_the_runs_with_a_terminal():
    env = shell_environment({"TRAINING_ID": "3", "COLUMNS": "1000", "LINES": "5", "KQI_TOKEN": "t"})
    assert env == {"TRAINING_ID": "3", "KQI_TOKEN": "t", "TERM": "xterm-256color"}
    assert shell_environment({"TERM": "dumb"})["TERM"] == "dumb"


def test_shell_is_inside_the_sandbox_in_its_cgroup_without_capabilities(executor_factory, sandbox, tmp_path):
    ex = executor_factory(sandbox)
    run_id = start_sleeping_run(ex, tmp_path)
    shell = shell_into(ex, run_id)
    term = Terminal(shell)
    try:
        seen = values(term.run(PROBE, "marker-42\r\n"))
        assert seen["id"] == "7" and {"git", "output"} <= set(seen["kqi"].split(","))
        assert seen["tty"].startswith("/dev/pts/")  # the sandbox's own devpts
        assert int(seen["pid"]) < 100 and seen["columns"] != "1000"
        assert "CapEff: 0000000000000000 NoNewPrivs: 1" in term.run("echo $(grep -E '^(CapEff|NoNewPrivs)' "
                                                                     "/proc/self/status)\n", "NoNewPrivs: 1\r\n")
        if sandbox == "bwrap":
            assert seen["host"] == run_id and "bwrap" in seen["init"]
        # the shell counts against the run's cgroup: a halt kills it with the run
        cgroup = RunCgroup.from_dict(read_json(os.path.join(ex.run_dir(run_id), RUNNING_FILE))["cgroup"])
        if cgroup.version:
            assert shell.pid in cgroup.pids()
        shell.resize(40, 132)
        assert "40 132" in term.run("stty size\n", "40 132")
        # the terminal is the shell's controlling one: Ctrl-C interrupts the foreground job only
        term.run("sleep 100\n", "sleep 100\r\n")
        time.sleep(0.3)
        assert "after-2" in term.run("\x03echo after-$((1+1))\n", "after-2\r\n")
    finally:
        assert shell.terminate()
    assert ex.status(run_id).phase == "running"  # the run itself is untouched


def test_terminate_kills_background_and_detached_jobs_only(executor_factory, tmp_path):
    ex = executor_factory("bwrap")
    run_id = start_sleeping_run(ex, tmp_path)
    shell = shell_into(ex, run_id)
    run_pids = pid_namespace_members(shell.pid)
    marker = unique("bg")
    Terminal(shell).run(f"sh -c 'sleep 600; : {marker}' & setsid sh -c 'sleep 600; : {marker}' & "
                        f"nohup sh -c 'sleep 600; : {marker}' >/dev/null 2>&1 & sleep 0.5; echo ready-$((1+1))\n",
                        "ready-2")
    assert len(processes_with(marker)) == 3
    assert shell.terminate()
    assert processes_with(marker) == []
    assert pid_namespace_members(min(run_pids)) == run_pids - {shell.pid}
    assert ex.status(run_id).phase == "running"


def test_no_shell_into_a_run_that_is_not_running(executor_factory, tmp_path):
    ex = executor_factory("bwrap")
    run_id = start_sleeping_run(ex, tmp_path, command="true", phases=("finished",))
    with pytest.raises(ShellUnavailable, match="finished"):
        ex.shell_target(run_id)


def test_halt_ends_an_open_shell(executor_factory, tmp_path):
    ex = executor_factory("bwrap")
    run_id = start_sleeping_run(ex, tmp_path, halt_grace_s=1)
    shell = shell_into(ex, run_id)
    marker = unique("halt")
    Terminal(shell).run(f"sh -c 'sleep 600; : {marker}' & sleep 0.3; echo up-$((2+2))\n", "up-4")
    ex.halt(run_id)
    poll_until(lambda: ex.status(run_id).phase == "finished", what="the halt")
    assert select.select([shell.exit_fd], [], [], 5)[0]  # the shell's exit is seen
    assert processes_with(marker) == [] and not shell.processes()
    shell.terminate()


# through the platform --------------------------------------------------------------------------


def shell_url(platform, run_id, scheme="ws") -> str:
    return f"{scheme}{platform.url[4:]}/services/kqi/api/v2/training/{run_id}/shell"


def handshake_headers() -> dict:
    return {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}


async def connect(platform, run_id, token=None, headers=None, query="", timeout=20):
    """A websocket to the training's shell; retried while the sandbox is still being set up (409)."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = await websocket_connect(HTTPRequest(shell_url(platform, run_id) + query, headers=headers))
        except HTTPClientError as e:
            if e.code != 409 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
            continue
        assert json.loads(await ws.read_message()) == ["setup", {}]
        return ws


async def read_until(ws, text, timeout: float = 20) -> str:
    """stdout messages until ``text`` (a string, or a compiled pattern) appears."""
    def found(out):
        return text.search(out) if isinstance(text, re.Pattern) else text in out

    out = ""
    deadline = time.monotonic() + timeout
    while not found(out):
        msg = await asyncio.wait_for(ws.read_message(), max(0.1, deadline - time.monotonic()))
        assert msg is not None, f"the socket closed before {text!r}: {out!r}"
        kind, *rest = json.loads(msg)
        assert kind == "stdout", (kind, rest, out)
        out += rest[0]
    return out


async def read_to_the_end(ws, timeout: float = 30) -> list:
    """Every message until the server closes the socket."""
    msgs = []
    while (msg := await asyncio.wait_for(ws.read_message(), timeout)) is not None:
        msgs.append(json.loads(msg))
    return msgs


def send(ws, *msg):
    return ws.write_message(json.dumps(list(msg)))


def running_training(lab, marker):
    run = submit(lab, f"sleep 300; : {marker}")
    wait_for(lab["api"], run["id"], statuses=("Running",))
    return run


def run_command_pid(marker) -> int:
    """The training's command: the process with ``marker`` inside the sandbox's PID namespace."""
    own = os.readlink("/proc/self/ns/pid")

    def inside():
        for pid in processes_with(marker):
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != own:
                    return pid
            except OSError:
                pass
        return None

    return poll_until(inside, what="the run's command")


@pytest.mark.platform
async def test_shell_through_the_proxy_is_inside_the_training(platform, lab):
    api = lab["api"]
    run_marker = unique("run")
    run = running_training(lab, run_marker)
    token = api.token
    ws = await connect(platform, run["id"], token)
    try:
        send(ws, "stdin", "echo $TRAINING_ID; ls /kqi; cat /proc/1/cmdline | tr '\\0' ' '; echo marker-$((6*7))\n")
        out = await read_until(ws, "marker-42")
        assert str(run["id"]) in lines(out)
        send(ws, "stdin", PROBE)
        probe = await read_until(ws, "marker-42\r\n")
        seen = values(probe)
        assert seen["id"] == str(run["id"])
        assert {"git", "input", "output"} <= set(seen["kqi"].split(","))
        with open("/proc/1/cmdline", "rb") as f:
            host_init = f.read().replace(b"\0", b" ").decode().strip()
        assert "bwrap" in seen["init"] and seen["init"].strip() != host_init  # the run's PID namespace
        assert seen["host"] == f"training-{run['id']}"
        assert seen["token"] == "set" and int(seen["pid"]) < 100 and seen["svc"] == "none"
        assert "CapEff: 0000000000000000 NoNewPrivs: 1" in probe

        send(ws, "set_size", 37, 123, 600, 900)  # JupyterLab also sends pixels
        send(ws, "stdin", "stty size; echo size-$((1+2))\n")
        assert "37 123" in await read_until(ws, "size-3")

        shell_marker = unique("left")
        send(ws, "stdin", f"sh -c 'sleep 600; : {shell_marker}' & setsid sh -c 'sleep 600; : {shell_marker}' & "
                          "sleep 0.3; echo bg-$((2+2))\n")
        await read_until(ws, "bg-4")
        assert len(processes_with(shell_marker)) == 2
        members = pid_namespace_members(run_command_pid(run_marker))
    finally:
        ws.close()
    # closing the socket leaves nothing of the shell; the training runs on
    poll_until(lambda: not processes_with(shell_marker), timeout=10, what="the shell's jobs to end")
    poll_until(lambda: len(pid_namespace_members(run_command_pid(run_marker))) == 3, timeout=10,
               what="only the run's processes")
    assert len(members) > 3
    assert api.get(f"/training/{run['id']}").json()["status"] == "Running"
    api.post(f"/training/{run['id']}/halt")
    wait_for(api, run["id"])


@pytest.mark.platform
async def test_exit_disconnects(platform, lab):
    run = running_training(lab, unique("run"))
    ws = await connect(platform, run["id"], query=f"?token={lab['api'].token}")  # as a browser's client
    send(ws, "stdin", "echo bye-$((3*3)); exit 3\n")
    msgs = await read_to_the_end(ws)
    assert "bye-9" in "".join(m[1] for m in msgs if m[0] == "stdout")
    assert msgs[-1] == ["disconnect", 1] and ws.close_code == 1000
    lab["api"].post(f"/training/{run['id']}/halt")


@pytest.mark.platform
async def test_floods_of_output_and_input_arrive_whole(platform, lab):
    run = running_training(lab, unique("run"))
    ws = await connect(platform, run["id"], lab["api"].token)
    send(ws, "stdin", "seq 1 200000; echo end-$((9*9))\n")
    assert "\r\n200000\r\n" in await read_until(ws, "end-81\r\n", timeout=60)
    # more than the terminal's input buffer takes at once: the rest waits for room
    send(ws, "stdin", "stty -icanon -echo; echo got=$(head -c 300000 | wc -c); stty sane\n")
    await asyncio.sleep(0.5)
    send(ws, "stdin", "x" * 300000)
    assert values(await read_until(ws, re.compile(r"got=\d+\r\n"), timeout=60))["got"] == "300000"
    ws.close()
    lab["api"].post(f"/training/{run['id']}/halt")


@pytest.mark.platform
async def test_halting_the_training_ends_an_open_shell(platform, lab):
    api = lab["api"]
    run = running_training(lab, unique("run"))
    ws = await connect(platform, run["id"], api.token)
    marker = unique("halt")
    send(ws, "stdin", f"sh -c 'sleep 600; : {marker}' & sleep 0.3; echo up-$((2+2))\n")
    await read_until(ws, "up-4")
    assert api.post(f"/training/{run['id']}/halt").status_code == 200
    msgs = await read_to_the_end(ws)
    assert not msgs or msgs[-1] == ["disconnect", 1]
    assert wait_for(api, run["id"], timeout=30)["status"] == "Killed"
    poll_until(lambda: not processes_with(marker), timeout=10, what="the shell's job to end")


@pytest.mark.platform
async def test_shell_refusals_are_json_before_the_upgrade(platform, lab, new_tenant, new_user):
    api = lab["api"]
    url = shell_url(platform, "0", scheme="http").rsplit("/", 2)[0]
    run = running_training(lab, unique("run"))
    done = submit(lab, "true")
    wait_for(api, done["id"])

    def attempt(run_id, token=None, **headers):
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.get(f"{url}/{run_id}/shell", headers={**handshake_headers(), **headers}, timeout=30)

    r = attempt(run["id"])
    assert r.status_code == 401 and r.json()["status"] == 401
    stranger = new_user([{"id": new_tenant()["id"]}])
    other = platform.api().login(stranger["name"], stranger["password"])
    r = attempt(run["id"], other.token)
    assert r.status_code == 404 and "not found" in r.json()["message"]
    r = attempt(done["id"], api.token)
    assert r.status_code == 409 and "Completed" in r.json()["message"]
    r = requests.get(f"{url}/{run['id']}/shell", headers={"Authorization": f"Bearer {api.token}"}, timeout=30)
    assert r.status_code == 400 and "websocket" in r.json()["message"]
    with pytest.raises(HTTPClientError) as e:
        await websocket_connect(HTTPRequest(shell_url(platform, done["id"]),
                                            headers={"Authorization": f"Bearer {other.token}"}))
    assert e.value.code == 404
    api.post(f"/training/{run['id']}/halt")


@pytest.mark.platform
async def test_cookie_authenticated_shell_must_be_same_origin(platform, lab, new_user):
    user = new_user([{"id": lab["tenant"]["id"]}])
    session = hub_login(platform, user["name"], user["password"])
    assert session.get(platform.url + "/services/kqi/", timeout=30).status_code == 200  # OAuth: service cookie
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    run = running_training(lab, unique("run"))
    r = requests.get(shell_url(platform, run["id"], scheme="http"), timeout=30,
                     headers={**handshake_headers(), "Cookie": cookie, "Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["status"] == 403
    ws = await connect(platform, run["id"], headers={"Cookie": cookie, "Origin": platform.url})
    send(ws, "stdin", "echo ok-$((5+5))\n")
    await read_until(ws, "ok-10")
    ws.close()
    lab["api"].post(f"/training/{run['id']}/halt")
