"""TensorBoard of trainings on the real platform: a training writes TensorBoard events, PUT starts a
TensorBoard over its output, the hub's URL serves it (Bearer token or the browser's login), tenants are
kept apart, DELETE and the lifetime stop it, and none outlives the kqi service.

This module has a platform of its own (``platform`` and ``admin`` are overridden, module-scoped): its
last test kills the kqi service. The ``TensorBoardManager`` tests at the end need no platform.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import _process_tree, hub_login, launch_platform, listening_sockets, submit, tensorboard_pids, wait_for
from upstream import Cli, require_upstream_cli

from kqi_services.jobs.tensorboard import FAILED, PENDING, LogSource, TensorBoardManager


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    p = launch_platform(str(tmp_path_factory.mktemp("tensorboard-platform") / "state"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def admin(platform):
    return platform.api().login("admin", platform.admin_password)


# A TensorBoard event file written with the standard library only (the sandbox's python3 has no
# tensorboard): TFRecord framing with masked CRC32C, Event and Summary protobufs encoded by hand.
WRITE_EVENTS = r'''
import os, socket, struct, time

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF

def masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))

def tagged(number, wire_type, payload):
    return varint(number << 3 | wire_type) + payload

def nested(number, data):
    return tagged(number, 2, varint(len(data)) + data)

def record(data):
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))

def event(step, rest):
    return tagged(1, 1, struct.pack("<d", time.time())) + tagged(2, 0, varint(step)) + rest

def scalar(step, tag, value):
    summary_value = nested(1, tag.encode()) + tagged(2, 5, struct.pack("<f", value))
    return event(step, nested(5, nested(1, summary_value)))

name = "events.out.tfevents.%d.%s.%d" % (time.time(), socket.gethostname(), os.getpid())
with open(os.path.join("/kqi/output", name), "wb") as f:
    f.write(record(event(0, nested(3, b"brain.Event:2"))))
    for step in range(1, 4):
        f.write(record(scalar(step, "loss", float(os.environ["LOSS_SCALE"]) / step)))
print("wrote", name, flush=True)
'''


def train_with_events(lab, scale=1.0, then="true"):
    run = submit(lab, f'python3 -c "$WRITE_EVENTS" && {then}',
                 options={"WRITE_EVENTS": WRITE_EVENTS, "LOSS_SCALE": scale})
    done = wait_for(lab["api"], run["id"])
    assert done["status"] == "Completed", lab["api"].get(f"/training/{run['id']}/log").text
    return done


def label(run) -> str:
    return LogSource(run["id"], run["name"], "").label


def wait_gone(training_id, timeout=10) -> None:
    deadline = time.monotonic() + timeout
    while tensorboard_pids(training_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tensorboard_pids(training_id)


@pytest.mark.platform
def test_tensorboard_serves_the_events_of_a_training(platform, lab, new_tenant, new_user):
    api = lab["api"]
    run = train_with_events(lab)
    tb = f"/training/{run['id']}/tensorboard"
    assert api.get(tb).json() == {"name": None, "status": "None", "statusType": "None", "nodePort": None,
                                  "remainingTime": None, "mountedTrainingHistoryIds": [], "url": None}

    started = time.monotonic()
    r = api.put(tb, {})
    startup = time.monotonic() - started
    assert r.status_code == 200, r.text
    board = r.json()
    print(f"TensorBoard answered after {startup:.2f} s")
    url = f"/services/kqi/tensorboard/{run['id']}/"
    assert board == {"name": f"tensorboard-{run['id']}", "status": "Running", "statusType": "Running",
                     "nodePort": None, "remainingTime": board["remainingTime"], "mountedTrainingHistoryIds": [],
                     "url": url}
    assert board["remainingTime"] in ("0d 3h 0m", "0d 2h 59m")
    pids = tensorboard_pids(run["id"])
    assert pids

    auth = {"Authorization": f"Bearer {api.token}"}
    page = requests.get(platform.url + url, headers=auth, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "TensorBoard" in page.text
    head = requests.head(platform.url + url, headers=auth, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == page.headers["Content-Type"]
    runs = requests.get(platform.url + url + "data/runs", headers=auth, timeout=30).json()
    assert runs == [label(run)]
    scalars = requests.get(platform.url + url + "data/plugin/scalars/scalars", headers=auth, timeout=30,
                           params={"run": label(run), "tag": "loss"}).json()
    assert [(step, round(value, 4)) for _, step, value in scalars] == [(1, 1.0), (2, 0.5), (3, 0.3333)]
    multirun = requests.post(platform.url + url + "data/plugin/scalars/scalars_multirun", headers=auth,
                             data={"tag": "loss", "runs": label(run)}, timeout=30)
    assert multirun.status_code == 200 and [s[1] for s in multirun.json()[label(run)]] == [1, 2, 3]
    # TensorBoard's own redirect to the trailing slash passes through
    bare = requests.get(platform.url + url.rstrip("/"), headers=auth, timeout=30, allow_redirects=False)
    assert bare.status_code in (301, 308) and bare.headers["Location"].endswith(url)

    # a second PUT answers the running one
    again = api.put(tb, {"expiresIn": 60})
    assert again.status_code == 200 and again.json()["status"] == "Running"
    assert tensorboard_pids(run["id"]) == pids

    # without credentials: JSON 401 for clients, the hub's login for a browser's page
    bare_client = requests.get(platform.url + url, timeout=30)
    assert bare_client.status_code == 401 and bare_client.json()["status"] == 401
    browser = requests.get(platform.url + url, headers={"Accept": "text/html"}, timeout=30, allow_redirects=False)
    assert browser.status_code == 302 and "/hub/api/oauth2/authorize" in browser.headers["Location"]

    # a person logged in at the hub gets there through OAuth and the service's cookie
    member = new_user([{"id": lab["tenant"]["id"]}])
    session = hub_login(platform, member["name"], member["password"])
    page = session.get(platform.url + url, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and "TensorBoard" in page.text and page.url == platform.url + url

    # another tenant sees nothing of it
    stranger = new_user([{"id": new_tenant()["id"]}])
    other = platform.api().login(stranger["name"], stranger["password"])
    assert other.get(tb).status_code == 404
    assert other.put(tb, {}).status_code == 404
    assert other.delete(tb).status_code == 404
    r = requests.get(platform.url + url + "data/runs", headers={"Authorization": f"Bearer {other.token}"},
                     timeout=30)
    assert r.status_code == 404 and r.json()["status"] == 404

    assert api.delete(tb).status_code == 204
    wait_gone(run["id"])
    assert api.get(tb).json()["status"] == "None"
    assert requests.get(platform.url + url, headers=auth, timeout=30).status_code == 404
    assert api.delete(tb).status_code == 404


@pytest.mark.platform
def test_selected_trainings_are_shown_beside_it(platform, lab):
    api = lab["api"]
    first = train_with_events(lab, 1.0)
    # a symlink to a host path: TensorBoard's sandbox shows the outputs only, so it leads nowhere
    host_output = os.path.join(platform.state_dir, "runs", f"training-{first['id']}", "output")
    assert os.path.isdir(host_output)
    second = train_with_events(lab, 2.0, then=f"ln -s {host_output} /kqi/output/leak")
    tb = f"/training/{first['id']}/tensorboard"
    r = api.put(tb, {"selectedHistoryIds": [second["id"], first["id"]]})
    assert r.status_code == 200, r.text
    assert r.json()["mountedTrainingHistoryIds"] == [second["id"]] and r.json()["status"] == "Running"
    auth = {"Authorization": f"Bearer {api.token}"}
    data = platform.url + r.json()["url"] + "data/"
    # no "{second}/leak": the symlink does not lead out of the sandbox
    assert sorted(requests.get(data + "runs", headers=auth, timeout=30).json()) == sorted([label(first),
                                                                                            label(second)])
    scalars = requests.get(data + "plugin/scalars/scalars", headers=auth, timeout=30,
                           params={"run": label(second), "tag": "loss"}).json()
    assert [value for _, _, value in scalars] == [2.0, 1.0, pytest.approx(2 / 3)]

    # a new selection restarts it; only trainings of this tenant can be selected
    r = api.put(tb, {"selectedHistoryIds": []})
    assert r.json()["mountedTrainingHistoryIds"] == []
    assert requests.get(data + "runs", headers=auth, timeout=30).json() == [label(first)]
    assert api.put(tb, {"selectedHistoryIds": [99999999]}).status_code == 404
    for bad in ({"expiresIn": -1}, {"expiresIn": "1h"}, {"selectedHistoryIds": ["x"]}, [1]):
        assert api.put(tb, bad).status_code == 400, bad

    # the admin API's stop-all (Cluster group)
    assert api.delete("/admin/tensorboards").status_code == 403
    r = lab["admin"].delete("/admin/tensorboards")
    assert r.status_code == 200 and r.json() >= 1
    wait_gone(first["id"])
    assert api.get(tb).json()["status"] == "None"


@pytest.mark.platform
def test_a_tensorboard_stops_when_its_lifetime_is_over(lab):
    api = lab["api"]
    run = submit(lab, "mkdir -p /kqi/output/empty")
    wait_for(api, run["id"])
    tb = f"/training/{run['id']}/tensorboard"
    r = api.put(tb, {"expiresIn": 4})  # longer than a TensorBoard takes to start on a loaded machine
    assert r.status_code == 200 and r.json()["remainingTime"] == "0d 0h 0m"
    assert tensorboard_pids(run["id"])
    wait_gone(run["id"], timeout=9)  # the service's periodic check, not a request, ends it
    assert api.get(tb).json()["status"] == "None"


@pytest.mark.platform
def test_an_unknown_training_has_no_tensorboard(lab):
    assert lab["api"].get("/training/99999999/tensorboard").status_code == 404
    assert lab["api"].put("/training/99999999/tensorboard", {}).status_code == 404


@pytest.mark.platform
@pytest.mark.upstream
def test_upstream_cli_halts_a_tensorboard(platform, lab, new_user, tmp_path):
    require_upstream_cli()
    user = new_user([{"id": lab["tenant"]["id"]}])
    cli = Cli(str(tmp_path), platform.url + "/services/kqi")
    cli.login(user["name"], user["password"])
    run = submit(lab, "true")
    wait_for(lab["api"], run["id"])
    assert lab["api"].put(f"/training/{run['id']}/tensorboard", {}).json()["status"] == "Running"
    assert f"halted {run['id']}" in cli("training", "tensorboard-halt", run["id"]).stdout
    wait_gone(run["id"])
    assert "[ERROR]" in cli("training", "tensorboard-halt", run["id"], ok=False).stdout  # none now: 404


@pytest.mark.platform
def test_a_tensorboard_listens_only_in_a_network_of_its_own(platform, lab):
    """No port of it on the host: the service reaches it through a unix socket in its state."""
    import stat

    run = train_with_events(lab)
    board = lab["api"].put(f"/training/{run['id']}/tensorboard", {}).json()
    assert board["status"] == "Running"
    (pid,) = tensorboard_pids(run["id"])[:1]
    own = listening_sockets(pid)
    assert own and not own & listening_sockets()  # none of its sockets is one of the host's
    sock = os.path.join(platform.state_dir, "tensorboard", str(run["id"]), "tensorboard.sock")
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert os.stat(os.path.dirname(sock)).st_mode & 0o077 == 0  # only the service may connect
    page = requests.get(platform.url + board["url"], headers={"Authorization": f"Bearer {lab['api'].token}"},
                        timeout=30)
    assert page.status_code == 200 and "TensorBoard" in page.text


@pytest.mark.platform
def test_no_tensorboard_outlives_the_service(platform, lab):
    """SIGKILL the kqi service (the last test of this module's platform): its TensorBoards die with it."""
    api = lab["api"]
    run = submit(lab, "true")
    wait_for(api, run["id"])
    assert api.put(f"/training/{run['id']}/tensorboard", {}).json()["status"] == "Running"
    (service,) = [pid for pid in _process_tree(platform.process.pid)
                  if _cmdline(pid).rstrip(b"\0").endswith(b"-m\0kqi_services")]
    os.kill(service, signal.SIGKILL)
    wait_gone(run["id"], timeout=5)


def _cmdline(pid) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


# the manager alone, with a stand-in for TensorBoard -------------------------------------------------


def stand_in(tmp_path, code: str) -> TensorBoardManager:
    """A manager whose "TensorBoard" is ``python -c code`` (TensorBoard's options follow, ignored)."""
    return TensorBoardManager(str(tmp_path / "tb"), "/services/kqi/tensorboard/", sandbox="none",
                              command=[sys.executable, "-c", code, "tensorboard"])


def test_lifetime_defaults_and_cap(tmp_path):
    manager = TensorBoardManager(str(tmp_path), "/p/", default_lifetime=100, max_lifetime=1000)
    assert [manager.lifetime(x) for x in (None, 0, 5, 999, 10**9)] == [100, 100, 5, 999, 1000]
    assert manager.url(7) == "/p/7/"


def test_a_tensorboard_that_ends_is_reported_failed_with_its_log(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    manager = stand_in(tmp_path, "import sys; print('no such plugin', file=sys.stderr); sys.exit(2)")
    board = manager.start(3, 1, [LogSource(3, "r", str(source))], 60)
    board.process.wait(10)
    assert board.status == FAILED and "no such plugin" in board.log_tail()
    # a PUT replaces a failed one
    assert manager.start(3, 1, [LogSource(3, "r", str(source))], 60) is not board
    manager.stop_all()


def test_expired_boards_are_stopped_and_stale_ones_killed_at_start(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    manager = stand_in(tmp_path, "import time; time.sleep(60)")
    board = manager.start(4, 1, [LogSource(4, "r", str(source))], 60)
    assert board.status == PENDING  # it never announces a port
    manager.check(now=time.time() + 61)
    assert board.process.poll() is not None and manager.get(4) is None

    # a service that died without stopping its TensorBoards: the next one's start kills them
    left = manager.start(5, 1, [LogSource(5, "r", str(source))], 60)
    deadline = time.monotonic() + 5  # past setpriv's exec of Python
    while not _cmdline(left.process.pid).startswith(sys.executable.encode()) and time.monotonic() < deadline:
        time.sleep(0.01)
    successor = stand_in(tmp_path, "")
    assert successor.clean_stale() == 1
    assert left.process.wait(5) == -signal.SIGKILL
    assert not os.path.exists(left.work_dir)
    manager.boards.clear()


def test_unsandboxed_tensorboard_dies_with_its_parent(tmp_path):
    """Without bubblewrap the process gets ``setpriv --pdeathsig KILL``: it ends with the service."""
    if not subprocess.run(["sh", "-c", "command -v setpriv"], capture_output=True).stdout:
        pytest.skip("util-linux setpriv is not installed")
    source = tmp_path / "out"
    source.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {os.getcwd()!r})
from kqi_services.jobs.tensorboard import LogSource, TensorBoardManager
m = TensorBoardManager({str(tmp_path / "tb")!r}, "/x/", sandbox="none",
                       command=[sys.executable, "-c", "import time; time.sleep(60)", "tensorboard"])
print(m.start(6, 1, [LogSource(6, "r", {str(source)!r})], 60).process.pid, flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 5  # past setpriv's prctl and exec: a parent killed before it leaves no death signal
    while not _cmdline(child).startswith(sys.executable.encode()) and time.monotonic() < deadline:
        time.sleep(0.01)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _cmdline(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _cmdline(child)


def test_without_bubblewrap_auto_refuses_rather_than_follow_a_runs_symlinks(tmp_path, monkeypatch):
    import kqi_services.jobs.tensorboard as tb
    from kqi_services.errors import Unavailable
    from kqi_services.executor.sandbox import HostLayout

    monkeypatch.setattr(tb, "probe_host", lambda: HostLayout(bwrap=""))
    manager = TensorBoardManager(str(tmp_path / "tb"), "/x/")
    with pytest.raises(Unavailable, match="needs bubblewrap"):
        manager.start(7, 1, [LogSource(7, "r", str(tmp_path))], 60)
    assert manager.get(7) is None
