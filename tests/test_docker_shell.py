"""Shells into running container jobs: a Docker exec on a terminal, against a real Podman (its Docker API service).

The executor tests open shells through ``DockerExecutor.shell_target`` and
the target's opener and talk to the terminal directly: the shell is in the
run's image, with its environment (no ``COLUMNS``) and working directory;
the window size follows ``resize``; ``terminate`` leaves nothing of the
shell in the container (its background and detached jobs included) while
the run goes on, both where the engine's processes are visible on this host
and where they are not (execs into the container do the signalling); an
``exit`` ends the stream. A finished container or an unknown run takes no
shell. The platform test connects through the hub's proxy with terminado's
protocol, as JupyterLab's terminal does.
"""

from __future__ import annotations

import json
import re
import select
import time

import pytest
from conftest import poll_until
from podman import MARKER, PodmanService, require_podman
from test_docker_executor import finished, spec_of

from kqi_services.executor.base import RunNotFound
from kqi_services.executor.docker import DockerExecutor
from kqi_services.executor.docker_shell import ContainerShell, ContainerShellTarget
from kqi_services.executor.shell import ShellUnavailable


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    require_podman()
    service = PodmanService(str(tmp_path_factory.mktemp("podman"))).start()
    service.build_image()
    yield service
    service.stop()


@pytest.fixture
def executor(podman, tmp_path):
    ex = DockerExecutor(str(tmp_path / "executor"), base_url=podman.url)
    yield ex
    for run_id in ex.run_ids():
        ex.halt(run_id)
        poll_until(lambda r=run_id: ex.status(r).phase in ("finished", "lost"), 30, what=f"{run_id} to end")
        ex.cleanup(run_id)


def running(ex, tmp_path, run_id, command="sleep 60", **kw) -> str:
    spec = spec_of(tmp_path, run_id, command, halt_grace_s=1, **kw)
    spec.env["COLUMNS"] = "1000"
    ex.start(spec)
    poll_until(lambda: ex.status(run_id).phase == "running", 30, what=f"{run_id} to run")
    return run_id


def clean(output: str) -> str:
    """The terminal's output without escape sequences and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "")


def type_and_read(shell: ContainerShell, command: str, until: str, timeout: float = 15) -> str:
    """Type ``command`` and read the terminal until ``until`` shows (not in the echoed command: say $((6*7)))."""
    data = command.encode()
    while data:
        data = data[shell.write(data):]
    out, deadline = b"", time.monotonic() + timeout
    while until not in clean(out.decode(errors="replace")):
        assert time.monotonic() < deadline, f"no {until!r} in {out.decode(errors='replace')!r}"
        chunk = shell.read()
        assert chunk != b"", f"the stream ended: {out!r}"
        if chunk is None:
            select.select([shell.fileno()], [], [], 0.2)
        else:
            out += chunk
    return clean(out.decode(errors="replace"))


def in_container(ex, run_id) -> str:
    """``ps`` of the run's container, from an exec of its own."""
    container = ex._container(run_id)
    exec_id = ex.client.api.exec_create(container.id, ["ps", "-o", "pid,args"])["Id"]
    return ex.client.api.exec_start(exec_id).decode()


def start_jobs(shell) -> None:
    """A background job in the shell's session and a detached one (a session of its own)."""
    type_and_read(shell, "sleep 601 & busybox setsid sleep 602 & sleep 0.3; echo jobs-$((2+3))\n", "jobs-5\n")


def test_a_shell_is_in_the_image_with_the_runs_environment(executor, tmp_path):
    ex = executor
    run_id = running(ex, tmp_path, "training-31")
    target = ex.shell_target(run_id)
    assert isinstance(target, ContainerShellTarget) and target.workdir == "/kqi/git"
    assert "COLUMNS" not in target.env and target.env["TRAINING_ID"] == "7" and target.env["TERM"]
    shell = target.open()
    try:
        assert shell.local and shell.pid > 0 and shell.exit_fd is None and shell.shell_alive()
        out = type_and_read(shell, f"cat {MARKER}; echo $TRAINING_ID; pwd; echo cols=${{COLUMNS:-unset}}; "
                                   "echo id=$(id -u); echo end-$((6*7))\n", "end-42\n")
        assert "only in the image\n7\n/kqi/git\ncols=unset\nid=0\nend-42\n" in out, out
        shell.resize(40, 132)
        assert "40 132\n" in type_and_read(shell, "busybox stty size\n", "40 132\n")
        start_jobs(shell)
        ps = in_container(ex, run_id)
        assert "sleep 601" in ps and "sleep 602" in ps, ps
    finally:
        assert shell.terminate()
    assert shell.sock is None and not shell.processes()
    poll_until(lambda: not ex.client.api.exec_inspect(shell.exec_id)["Running"], 10, what="the exec to end")
    ps = in_container(ex, run_id)
    assert "sleep 60\n" in ps and "sleep 601" not in ps and "sleep 602" not in ps and " sh" not in ps, ps
    assert ex.status(run_id).phase == "running"  # the run itself is untouched


def test_terminate_through_the_engine_where_its_processes_are_not_visible(executor, tmp_path):
    """As with a remote engine or a service in a container: the shell's processes are signalled from inside."""
    ex = executor
    run_id = running(ex, tmp_path, "training-32")
    shell = ex.shell_target(run_id).open()
    shell.local = False  # as if its pid were another host's
    start_jobs(shell)
    assert shell.shell_alive()
    start = time.monotonic()
    assert shell.terminate()
    assert time.monotonic() - start < 10
    assert not ex.client.api.exec_inspect(shell.exec_id)["Running"]
    ps = in_container(ex, run_id)
    assert "sleep 601" not in ps and "sleep 602" not in ps and " sh" not in ps, ps
    assert ex.status(run_id).phase == "running"


def test_exit_ends_the_stream(executor, tmp_path):
    ex = executor
    run_id = running(ex, tmp_path, "training-33")
    shell = ex.shell_target(run_id).open()
    shell.write(b"echo bye-$((3*3)); exit 3\n")
    out, deadline = b"", time.monotonic() + 15
    while (chunk := shell.read()) != b"":
        assert time.monotonic() < deadline, out
        if chunk is None:
            select.select([shell.fileno()], [], [], 0.2)
        else:
            out += chunk
    assert "bye-9" in clean(out.decode()).split("exit 3")[-1], out
    poll_until(lambda: not shell.shell_alive(), 10, what="the shell to count as ended")
    assert shell.terminate()


def test_no_shell_into_a_finished_container_or_an_unknown_run(executor, tmp_path):
    ex = executor
    spec = spec_of(tmp_path, "training-34", "true")
    ex.start(spec)
    finished(ex, "training-34")
    with pytest.raises(ShellUnavailable, match="finished"):
        ex.shell_target("training-34")
    with pytest.raises(RunNotFound):
        ex.shell_target("training-999")
    # a target found while the run ran, opened after it ended
    run_id = running(ex, tmp_path, "training-35")
    target = ex.shell_target(run_id)
    ex.halt(run_id)
    finished(ex, run_id)
    with pytest.raises(ShellUnavailable):
        target.open()


@pytest.mark.platform
async def test_a_shell_through_the_platform_into_a_container_training(podman, start_platform, tmp_path):
    """KQI_EXECUTOR=docker: the websocket terminal opens in the training's container and leaves nothing there."""
    from conftest import make_lab, submit, unique, wait_for
    from test_shell import connect, read_until, send

    platform = start_platform(extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    lab = make_lab(platform, tmp_path / "lab")
    api = lab["api"]
    run = submit(lab, f"sleep 120; : {unique('run')}", containerImage={"image": "localhost/kqi-busybox", "tag": "1"})
    wait_for(api, run["id"], statuses=("Running",))
    ws = await connect(platform, run["id"], api.token)
    try:
        send(ws, "stdin", f"cat {MARKER}; echo $TRAINING_ID; pwd; echo end-$((6*7))\n")
        out = clean(await read_until(ws, "end-42\r\n"))
        assert f"only in the image\n{run['id']}\n/kqi/git\nend-42\n" in out, out
        send(ws, "set_size", 37, 123, 600, 900)
        send(ws, "stdin", "busybox stty size; sleep 603 & echo size-$((1+2))\n")
        assert "37 123" in await read_until(ws, "size-3\r\n")
    finally:
        ws.close()
    import docker

    client = docker.DockerClient(base_url=podman.url)
    container = next(c for c in client.containers.list() if c.name.endswith(f"-{run['id']}"))

    def ps() -> str:
        return client.api.exec_start(client.api.exec_create(container.id, ["ps", "-o", "pid,args"])["Id"]).decode()

    poll_until(lambda: "sleep 603" not in ps() and " sh" not in ps(), 15, what="the shell's processes to end")
    assert api.get(f"/training/{run['id']}").json()["status"] == "Running"
    # exit ends the socket with a disconnect
    ws = await connect(platform, run["id"], query=f"?token={api.token}")
    send(ws, "stdin", "echo bye-$((3*3)); exit 3\n")
    msgs = []
    while (msg := await ws.read_message()) is not None:
        msgs.append(json.loads(msg))
    assert "bye-9" in "".join(m[1] for m in msgs if m[0] == "stdout")
    assert msgs[-1] == ["disconnect", 1] and ws.close_code == 1000
    api.post(f"/training/{run['id']}/halt")
    wait_for(api, run["id"], timeout=30)
