"""The local executor with real sandboxes: the job contract, logs, limits, halts, restarts.

Each test starts real runs (bubblewrap, and the unshare fallback where a test
is parametrized over both) under real supervisors, and checks what a user
or the service sees: files under /kqi, the log, status.json, /proc.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from conftest import REPO, new_id, poll_until, require_or_skip, require_sandbox

from kqi_services.executor import LocalExecutor, Mount, RunActive, RunExists, RunNotFound, RunSpec, SpecError
from kqi_services.executor.cgroups import Hierarchy, RunCgroup, is_zombie_or_gone, probe_hierarchies
from kqi_services.executor.supervisor import RUNNING_FILE, supervisor_pid


def wait_finished(executor, run_id, timeout=15.0):
    return poll_until(lambda: (s := executor.status(run_id)).phase == "finished" and s, timeout,
                      what=f"{run_id} to finish")


def marker_pids(marker: str) -> list[int]:
    """Processes that carry ``marker`` as one of their arguments."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in args:
            found.append(int(name))
    return found


def read(path) -> str:
    with open(path, errors="replace") as f:
        return f.read()


@pytest.fixture
def job_dirs(tmp_path):
    """Host directories for /kqi/input (with data.txt) and /kqi/output."""
    inp, out = tmp_path / "input", tmp_path / "output"
    (inp / "images" / "3").mkdir(parents=True)
    (inp / "images" / "3" / "data.txt").write_text("dataset bytes\n")
    out.mkdir()
    return inp, out


CONTRACT_SCRIPT = r"""
r=/kqi/output/report
echo "cwd=$(pwd)" > $r
echo "pid=$$" >> $r
echo "procs=$(ls /proc | grep -c '^[0-9][0-9]*$')" >> $r
echo "init=$(cat /proc/1/comm)" >> $r
echo "training_id=$TRAINING_ID" >> $r
echo "spaces=$WITH_SPACES" >> $r
echo "secret=${KQI_SERVICE_SECRET:-unset}" >> $r
echo "data=$(cat /kqi/input/images/3/data.txt)" >> $r
for d in /kqi/input /usr /etc /bin /kqi; do
  if touch "$d/kqi-probe" 2>/dev/null; then echo "$d=rw" >> $r; else echo "$d=ro" >> $r; fi
done
echo "hostname=$(hostname)" >> $r
echo "tmp=$(touch /tmp/x && echo ok)" >> $r
python3 -c "import sys; print('python', sys.version_info[0])" >> $r
"""


def test_run_sees_the_job_contract(executor_factory, sandbox, job_dirs, monkeypatch):
    monkeypatch.setenv("KQI_SERVICE_SECRET", "must-not-leak")
    ex = executor_factory(sandbox)
    inp, out = job_dirs
    run_id = new_id()
    handle = ex.start(RunSpec(run_id, CONTRACT_SCRIPT, env={"TRAINING_ID": "12", "WITH_SPACES": "a b  c"},
                              mounts=[Mount(str(inp), "/kqi/input"), Mount(str(out), "/kqi/output")]))
    assert handle.backend == "local" and handle.log_path == ex.log_path(run_id)
    state = wait_finished(ex, run_id)
    assert (state.exit_code, state.halted, state.oom_killed, state.error) == (0, False, False, ""), read(
        handle.log_path)
    report = dict(line.split("=", 1) for line in (out / "report").read_text().splitlines() if "=" in line)
    assert report["cwd"] == "/kqi/git"
    # its own PID namespace: the sandbox's init is PID 1, the host's processes are invisible
    assert report["init"] == ("bwrap" if sandbox == "bwrap" else "sh")
    assert 1 < int(report["pid"]) < 100 and int(report["procs"]) <= 6
    assert report["training_id"] == "12" and report["spaces"] == "a b  c"
    assert report["secret"] == "unset"  # the service's environment does not leak into the run
    assert report["data"] == "dataset bytes"
    assert (report["/kqi/input"], report["/usr"], report["/etc"], report["/bin"]) == ("ro", "ro", "ro", "ro")
    assert report["tmp"] == "ok"
    assert "python 3" in (out / "report").read_text()
    assert not (inp / "kqi-probe").exists()
    if sandbox == "bwrap":
        assert report["hostname"] == run_id
    assert state.started_at and state.finished_at and state.started_at <= state.finished_at


def test_exit_codes_and_both_streams_in_the_log(executor_factory):
    ex = executor_factory()
    ok, failed = new_id(), new_id()
    ex.start(RunSpec(ok, "echo all good"))
    ex.start(RunSpec(failed, "echo to-stdout; echo to-stderr >&2; exit 7"))
    assert wait_finished(ex, ok).exit_code == 0
    state = wait_finished(ex, failed)
    assert (state.exit_code, state.signal, state.halted) == (7, None, False)
    log = read(ex.log_path(failed))
    assert "to-stdout\n" in log and "to-stderr\n" in log
    assert read(ex.log_path(ok)) == "all good\n"
    with pytest.raises(RunExists):
        ex.start(RunSpec(ok, "true"))
    with pytest.raises(RunNotFound):
        ex.status("training-none")


def test_the_log_grows_while_the_run_runs(executor_factory):
    ex = executor_factory()
    run_id = new_id()
    program = "import sys, time\nfor i in range(30):\n    print('tick', i)\n    time.sleep(0.1)\nprint('end')"
    ex.start(RunSpec(run_id, f"python3 -c {shlex.quote(program)}; echo shell-end >&2",
                     env={"PYTHONUNBUFFERED": "1"}))
    log_path = ex.log_path(run_id)
    poll_until(lambda: os.path.exists(log_path) and "tick 1\n" in read(log_path), what="the first lines")
    assert ex.status(run_id).phase == "running"
    assert "end" not in read(log_path)
    size = len(read(log_path))
    poll_until(lambda: len(read(log_path)) > size, what="more lines")
    assert ex.status(run_id).phase == "running"
    assert wait_finished(ex, run_id).exit_code == 0
    assert read(log_path).endswith("tick 29\nend\nshell-end\n")


def test_memory_hog_is_oom_killed(executor_factory):
    ex = executor_factory()
    run_id = new_id()
    ex.start(RunSpec(run_id, """python3 -c "x = b'x' * (500 << 20); print('survived')" """,
                     memory_bytes=64 << 20))
    state = wait_finished(ex, run_id, timeout=30)
    if any("memory" in n for n in state.notes):
        require_or_skip("this host cannot limit memory: " + "; ".join(state.notes))
    assert state.oom_killed, (state, read(ex.log_path(run_id)))
    assert state.exit_code == 137 and "survived" not in read(ex.log_path(run_id))


def test_limits_are_written_to_the_runs_cgroup(executor_factory, tmp_path):
    ex = executor_factory()
    run_id = new_id()
    ex.start(RunSpec(run_id, "sleep 30", cpu=0.5, memory_bytes=96 << 20, pids_max=64))
    running = poll_until(lambda: (p := tmp_path / "runs" / run_id / RUNNING_FILE).exists() and json.loads(p.read_text()),
                         what="running.json")
    cgroup = running["cgroup"]
    if not cgroup["version"]:
        require_or_skip("no writable cgroup hierarchy: " + "; ".join(running["notes"]))
    paths = cgroup["paths"]
    if cgroup["version"] == 1:
        assert read(os.path.join(paths["memory"], "memory.limit_in_bytes")).strip() == str(96 << 20)
        assert read(os.path.join(paths["cpu"], "cpu.cfs_quota_us")).strip() == "50000"
        assert read(os.path.join(paths["pids"], "pids.max")).strip() == "64"
        members = set(read(os.path.join(paths["pids"], "cgroup.procs")).split())
    else:
        assert read(os.path.join(paths["unified"], "memory.max")).strip() == str(96 << 20)
        assert read(os.path.join(paths["unified"], "cpu.max")).split() == ["50000", "100000"]
        members = set(read(os.path.join(paths["unified"], "cgroup.procs")).split())
    assert str(running["sandbox_pid"]) in members  # the sandbox itself is inside, from its first instruction
    assert str(running["supervisor_pid"]) not in members
    ex.halt(run_id)
    wait_finished(ex, run_id)
    assert not any(os.path.exists(p) for p in paths.values())


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "pid-namespace"])
def test_halt_leaves_no_process_behind(executor_factory, sandbox, cgroups):
    ex = executor_factory(sandbox, cgroups=cgroups)
    run_id, marker = new_id(), f"kqi-marker-{uuid.uuid4().hex}"
    script = textwrap.dedent(f"""\
        setsid python3 -c 'import time; time.sleep(1000)' {marker} &
        python3 -c 'import os, sys, time
        if os.fork(): sys.exit()
        os.setsid()
        if os.fork(): sys.exit()
        time.sleep(1000)' {marker} &
        python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)' {marker} &
        trap 'echo got-sigterm' TERM
        echo started
        while :; do sleep 0.1; done
        """)
    ex.start(RunSpec(run_id, script, halt_grace_s=1.0))
    poll_until(lambda: len(marker_pids(marker)) == 3, what="the three daemons")
    poll_until(lambda: "started" in read(ex.log_path(run_id)), what="the script")
    began = time.monotonic()
    assert ex.halt(run_id)
    state = wait_finished(ex, run_id, timeout=10)
    took = time.monotonic() - began
    assert state.halted and state.exit_code != 0
    assert marker_pids(marker) == []
    log = read(ex.log_path(run_id))
    assert "got-sigterm" in log  # the command had its SIGTERM first
    if not cgroups:  # what the host does not enforce is said first
        assert log.startswith("[kqi] not enforced: cgroups are turned off")
    assert 0.9 < took < 5  # it went on: it was killed after the 1 s grace


def test_no_process_outlives_a_run_that_ends(executor_factory, sandbox):
    ex = executor_factory(sandbox)
    run_id, marker = new_id(), f"kqi-marker-{uuid.uuid4().hex}"
    ex.start(RunSpec(run_id, f"setsid python3 -c 'import time; time.sleep(1000)' {marker} & sleep 0.5; echo bye"))
    state = wait_finished(ex, run_id)
    assert (state.exit_code, state.halted) == (0, False)
    assert marker_pids(marker) == []


def test_the_supervisor_survives_the_process_that_started_it(executor_factory, tmp_path, job_dirs):
    ex = executor_factory()
    _, out = job_dirs
    run_id = new_id()
    starter = textwrap.dedent(f"""\
        from kqi_services.executor import LocalExecutor, Mount, RunSpec
        ex = LocalExecutor({str(tmp_path / "runs")!r})
        handle = ex.start(RunSpec({run_id!r}, "sleep 1; echo done > /kqi/output/done",
                                  mounts=[Mount({str(out)!r}, "/kqi/output")]))
        print(handle.ref)
        """)
    proc = subprocess.run([sys.executable, "-c", starter], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout)
    assert supervisor_pid(str(tmp_path / "runs" / run_id)) == pid  # the starter is gone, the supervisor is not
    with open(f"/proc/{pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid()
    assert ex.status(run_id).phase in ("starting", "running")
    state = wait_finished(ex, run_id)
    assert state.exit_code == 0 and (out / "done").read_text() == "done\n"


def test_a_fresh_executor_reattaches_and_sees_lost_runs(executor_factory, tmp_path):
    first = executor_factory()
    long_run, doomed, quick = new_id(), new_id(), new_id()
    marker = f"kqi-marker-{uuid.uuid4().hex}"
    first.start(RunSpec(long_run, "echo up; sleep 1000", halt_grace_s=1))
    first.start(RunSpec(doomed, f"python3 -c 'import time; time.sleep(1000)' {marker}"))
    first.start(RunSpec(quick, "exit 3"))
    wait_finished(first, quick)
    poll_until(lambda: marker_pids(marker), what="the doomed run's command")

    again = LocalExecutor(str(tmp_path / "runs"))  # as after a service restart
    assert again.running_runs() == sorted([long_run, doomed])
    assert again.status(long_run).phase == "running"
    assert again.status(quick).exit_code == 3
    with pytest.raises(RunActive):
        again.cleanup(doomed)

    running = json.loads((tmp_path / "runs" / doomed / RUNNING_FILE).read_text())
    os.kill(running["supervisor_pid"], signal.SIGKILL)  # the sandbox dies with it: a run never goes unsupervised
    state = poll_until(lambda: (s := again.status(doomed)).phase == "lost" and s, what="the run to be lost")
    assert state.error and state.started_at
    poll_until(lambda: not marker_pids(marker), timeout=5, what="the sandbox to die with its supervisor")
    assert is_zombie_or_gone(running["sandbox_pid"])
    again.cleanup(doomed)
    assert doomed not in again.run_ids()

    assert again.halt(long_run)
    assert wait_finished(again, long_run).halted
    assert again.running_runs() == []


def test_a_missing_mount_source_is_an_error_not_a_failure(executor_factory, tmp_path):
    ex = executor_factory()
    run_id = new_id()
    ex.start(RunSpec(run_id, "true", mounts=[Mount(str(tmp_path / "nowhere"), "/kqi/input")]))
    state = wait_finished(ex, run_id)
    assert state.exit_code is None and "mount sources do not exist" in state.error
    assert read(ex.log_path(run_id)).startswith("[kqi] error: mount sources do not exist")
    with pytest.raises(SpecError, match="run_dir"):
        ex.start(RunSpec(new_id(), "true", run_dir=str(tmp_path / "elsewhere")))
    with pytest.raises(SpecError, match="run_id"):
        ex.start(RunSpec("Bad_Id", "true"))


def test_cgroup_v2_membership_kill_and_removal():
    """Real cgroup2 file semantics (procs, cgroup.kill, rmdir), also on hybrid hosts whose v2 has no controllers."""
    unified = [h for h in probe_hierarchies() if h.version == 2]
    if not unified or not os.access(unified[0].mount, os.W_OK):
        require_or_skip("no writable cgroup2 hierarchy")
    h = unified[0]
    on_hybrid = "memory" not in h.controllers
    if on_hybrid:  # pretend the controllers are there: the limit files will be missing and noted
        h = Hierarchy(2, h.mount, ("memory", "cpu", "pids"), h.own)
    parent = f"/kqi-test-{uuid.uuid4().hex[:8]}"
    group = RunCgroup.create("training-1", cpu=0.5, memory_bytes=64 << 20, pids_max=16, parent=parent,
                             hierarchies=[h])
    try:
        assert group.version == 2 and group.paths == {"unified": os.path.join(h.mount, parent[1:], "training-1")}
        if on_hybrid:
            assert any("memory.max" in n for n in group.notes)
        else:
            assert read(os.path.join(group.paths["unified"], "memory.max")).strip() == str(64 << 20)
            assert read(os.path.join(group.paths["unified"], "pids.max")).strip() == "16"
        proc = subprocess.Popen(["sh", "-c", "setsid sleep 1000 & sleep 1000"],
                                preexec_fn=lambda: group.add_pid(os.getpid()))
        poll_until(lambda: len(group.pids()) == 3, what="three members")
        assert proc.pid in group.pids()
        assert group.kill_all(timeout=5)
        assert proc.wait(5) == -signal.SIGKILL
        assert group.pids() == set()
        assert group.remove()
        assert not os.path.exists(group.paths["unified"])
    finally:
        group.kill_all(timeout=5)
        group.remove()
        os.rmdir(os.path.join(h.mount, parent[1:]))


def test_a_run_reaches_only_its_forwards_never_the_hosts_other_loopback_listeners(executor_factory, sandbox):
    """The attack of one tenant on another: a run connects to every loopback port it can think of."""
    import socket

    from kqi_services.executor.netns import PortForward

    ex = executor_factory(sandbox)
    with socket.socket() as service, socket.socket() as other_tenant:
        for server in (service, other_tenant):
            server.bind(("127.0.0.1", 0))
            server.listen(8)
        port, other = service.getsockname()[1], other_tenant.getsockname()[1]
        probe = ("python3 -c \"import socket, sys\n"
                 "for p in sys.argv[1:]:\n"
                 "    try: socket.create_connection(('127.0.0.1', int(p)), 2); print('reached', p)\n"
                 "    except OSError as e: print('refused', p, e)\" " f"{port} {other}"
                 "; echo interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')")
        host, lone, private = new_id(), new_id(), new_id()
        ex.start(RunSpec(host, probe, network="host"))
        ex.start(RunSpec(lone, probe))
        ex.start(RunSpec(private, probe, forwards=[PortForward("out", port, f"127.0.0.1:{port}")]))
        for run_id in (host, lone, private):
            wait_finished(ex, run_id)
        service.settimeout(2)
        peers = {service.accept()[1][0] for _ in range(2)}  # the host run's and the private run's
    from kqi_services.executor.netns import loopback_source

    # the relay connects from an address of the run's own, so the service can tell runs apart
    assert peers == {"127.0.0.1", loopback_source(ex.run_dir(private))}
    assert f"reached {port}" in read(ex.log_path(host)) and f"reached {other}" in read(ex.log_path(host))
    lone_log = read(ex.log_path(lone))
    assert f"refused {port}" in lone_log and f"refused {other}" in lone_log
    assert lone_log.rstrip().endswith("interfaces: lo")
    private_log = read(ex.log_path(private))
    assert f"reached {port}" in private_log, private_log
    assert f"refused {other}" in private_log, private_log
    assert private_log.rstrip().endswith("interfaces: lo")


def host_address() -> str | None:
    """A non-loopback IPv4 address of this host, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127."):
            return address
    return None


def test_the_outside_network_never_includes_the_hosts_loopback(executor_factory):
    """``outside``: the network beyond the host (here: the host's own non-loopback address), not 127.0.0.1."""
    import socket

    if not shutil.which("slirp4netns"):
        require_or_skip("slirp4netns is not installed (apt-get install slirp4netns)")
    address = host_address()
    if address is None:
        pytest.skip("this host has no non-loopback address")
    require_sandbox("bwrap")
    ex = executor_factory("bwrap")
    with socket.socket() as outside, socket.socket() as loopback:
        outside.bind((address, 0))
        loopback.bind(("127.0.0.1", 0))
        for server in (outside, loopback):
            server.listen(8)
        reachable = f"{address}:{outside.getsockname()[1]}"
        targets = [(address, outside.getsockname()[1]), ("10.0.2.2", loopback.getsockname()[1]),
                   ("127.0.0.1", loopback.getsockname()[1])]
        probe = ("python3 -c \"import socket, sys\n"
                 "for a in sys.argv[1:]:\n"
                 "    h, p = a.rsplit(':', 1)\n"
                 "    try: socket.create_connection((h, int(p)), 3); print('reached', a)\n"
                 "    except OSError as e: print('refused', a, e)\" " + " ".join(f"{h}:{p}" for h, p in targets)
                 + "; cat /etc/resolv.conf")
        run_id = new_id()
        ex.start(RunSpec(run_id, probe, network="outside"))
        state = wait_finished(ex, run_id, timeout=30)
    log = read(ex.log_path(run_id))
    assert state.exit_code == 0, log
    assert f"reached {reachable}" in log, log
    assert "refused 10.0.2.2:" in log and "refused 127.0.0.1:" in log, log
    assert "nameserver 10.0.2.3" in log


def test_an_inbound_forward_serves_a_port_of_the_run_on_the_host(executor_factory, sandbox, tmp_path):
    import socket

    from kqi_services.executor.netns import PortForward

    ex = executor_factory(sandbox)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host_port = s.getsockname()[1]
    unix_path = str(tmp_path / "tb.sock")
    server = ("python3 -c \"import http.server as h; "
              "h.HTTPServer(('127.0.0.1', 6006), h.SimpleHTTPRequestHandler).serve_forever()\"")
    run_id = new_id("notebook")
    ex.start(RunSpec(run_id, server, workdir="/kqi/output", mounts=[Mount(str(tmp_path), "/kqi/output")],
                     forwards=[PortForward("in", 6006, f"127.0.0.1:{host_port}"),
                               PortForward("in", 6006, f"unix:{unix_path}")]))
    (tmp_path / "hello.txt").write_text("from inside the run")

    def fetch_tcp():
        try:
            with socket.create_connection(("127.0.0.1", host_port), 2) as c:
                c.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
                return b"".join(iter(lambda: c.recv(65536), b""))
        except OSError:
            return None

    assert b"from inside the run" in poll_until(fetch_tcp, what="the run's server through the forward")
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(unix_path)
        c.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        assert b"from inside the run" in b"".join(iter(lambda: c.recv(65536), b""))
    with pytest.raises(OSError):  # the run's port itself is not on the host
        socket.create_connection(("127.0.0.1", 6006), 1).close()
    ex.halt(run_id)
    wait_finished(ex, run_id)


def test_secrets_and_state_paths_stay_off_every_command_line(executor_factory, sandbox, tmp_path):
    secret = "kqirun_" + uuid.uuid4().hex
    ex = executor_factory(sandbox)
    run_id = new_id()
    out = tmp_path / "out"
    out.mkdir()
    ex.start(RunSpec(run_id, "tr '\\0' ' ' < /proc/1/cmdline > /kqi/output/init; echo; cat /etc/shadow; "
                             "ls /etc > /kqi/output/etc; id -un; sleep 5",
                     env={"KQI_TOKEN": secret, "MODEL_REPOSITORY_TOKEN": secret},
                     mounts=[Mount(str(out), "/kqi/output")]))
    poll_until(lambda: (out / "etc").exists() and supervisor_pid(os.path.join(str(tmp_path / "runs"), run_id)),
               what="the run to start")
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    assert secret.encode() not in f.read(), f"the run's token is on the command line of {name}"
            except OSError:
                pass
    ex.halt(run_id)
    wait_finished(ex, run_id)
    if sandbox == "bwrap":
        assert str(tmp_path) not in (out / "init").read_text()
    listing = (out / "etc").read_text().split()
    assert "shadow" not in listing and "gshadow" not in listing and "passwd" in listing
    log = read(ex.log_path(run_id))
    assert "root:" not in log and "No such file" in log and "\nroot\n" in log


def test_a_halt_right_after_start_is_honoured(executor_factory, tmp_path):
    ex = executor_factory()
    run_id = new_id()
    ex.start(RunSpec(run_id, "sleep 100"))
    assert ex.halt(run_id)
    state = wait_finished(ex, run_id, timeout=10)
    assert state.halted
    assert read(str(tmp_path / "runs" / run_id / "supervisor.log")) == ""  # the supervisor had nothing to complain of
