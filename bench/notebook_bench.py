"""Notebook start benchmark: notebook run → its JupyterLab answering, side by side with stock JupyterHub.

Run: ``.venv/bin/python bench/notebook_bench.py [--starts 10]``

* platform: the platform as the tests start it, an admin login, the default
  tenant; each start is ``POST /api/v2/notebook/run`` (cpu 1, memory 1,
  gpu 0, expiresIn 3600, a fresh name), then ``GET {url}api/status`` through
  the hub's proxy with the user's token until it answers 200; then halt and
  wait until the notebook has ended and its server no longer answers;
* stock: JupyterHub 6.1.1 with SimpleLocalProcessSpawner
  (``bench/stock_hub_config.py``) on other loopback ports, the same
  ``jupyterhub-singleuser --allow-root`` with ``/lab``; each start is
  ``POST /hub/api/users/bench/servers/NAME``, then
  ``GET /user/bench/NAME/api/status`` through its proxy until 200; then
  ``DELETE`` the server and wait until the hub has dropped it.

The two alternate (A B, B A, …) so neither gets a warmer machine, and each
start is alone. Prints p50/min/max of each side, the ratio, the platform's
own timestamps (created → started in the database) and the machine's load;
asserts nothing. Both hubs are stopped and checked for leftover processes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from conftest import _process_tree, alive, free_port_block, launch_platform, wait_until  # noqa: E402

ENDED = ("Completed", "Failed", "Killed", "Error", "OOMKilled", "UserCanceled")
POLL = 0.05


def wait_for(predicate, timeout: float, what: str, interval: float = POLL):
    """conftest's wait_until, polling every POLL seconds unless told otherwise."""
    return wait_until(predicate, timeout, what, interval)


LOG_TIME = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ")


def log_time(line: str) -> float | None:
    """The epoch time of a JupyterHub/Jupyter Server log line (local time, as they write it)."""
    m = LOG_TIME.match(line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() if m else None


def server_times(lines, name: str) -> tuple[float | None, float | None]:
    """(server listening, hub's readiness probe answered) of the single-user server ``name`` in ``lines``."""
    port = listening = probed = None
    for line in lines:
        if port is None and f"/{name}/ => http://127.0.0.1:" in line:
            port = line.rsplit(":", 1)[1].strip()
    for line in lines:
        if listening is None and "ServerApp] http://127.0.0.1:" in line and (
                port is None or f"127.0.0.1:{port}/" in line):
            listening = log_time(line)
        if probed is None and "GET /user/" in line and f"/{name}/api (@" in line:
            probed = log_time(line)
    return listening, probed


def answers(url: str, token: str) -> bool:
    try:
        r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=10, allow_redirects=False)
    except requests.RequestException:
        return False
    return r.status_code == 200


# the platform ------------------------------------------------------------------------------
class PlatformSide:
    name = "platform"

    def __init__(self, workdir: str):
        self.platform = launch_platform(os.path.join(workdir, "state"))
        self.api = self.platform.api().login("admin", self.platform.admin_password)
        self.ids: list[int] = []
        self.starts: list[dict] = []

    def start_once(self, i: int) -> float:
        name = f"nbb{i}-{uuid.uuid4().hex[:8]}"
        wall0, t0 = time.time(), time.perf_counter()
        r = self.api.post("/notebook/run", {"name": name, "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 3600})
        if r.status_code != 201:
            raise RuntimeError(f"notebook run answered {r.status_code}: {r.text}")
        nb = r.json()
        status = self.platform.url + nb["url"].removesuffix("lab") + "api/status"
        wait_for(lambda: answers(status, self.api.token), 180, f"notebook {nb['id']} to answer")
        elapsed = time.perf_counter() - t0
        self.ids.append(nb["id"])
        self.starts.append({"id": nb["id"], "name": name, "t0": wall0, "end": wall0 + elapsed})
        r = self.api.post(f"/notebook/{nb['id']}/halt")
        if r.status_code != 200:
            raise RuntimeError(f"halt answered {r.status_code}: {r.text}")
        wait_for(lambda: self.api.get(f"/notebook/{nb['id']}").json()["status"] in ENDED, 120,
                 f"notebook {nb['id']} to end", interval=0.2)
        wait_for(lambda: not answers(status, self.api.token), 60, "its server to stop", interval=0.2)
        return elapsed

    def db_figures(self) -> list[tuple[int, float | None]]:
        """(id, created → started in s) from the platform's database."""
        from sqlalchemy import select

        from kqi_services.db import make_engine, make_session_factory
        from kqi_services.orm import Run

        engine = make_engine("sqlite:///" + os.path.join(self.platform.state_dir, "kqi.sqlite"))
        try:
            with make_session_factory(engine)() as db:
                rows = db.scalars(select(Run).where(Run.id.in_(self.ids))).all()
                return [(r.id, (r.started_at - r.created_at).total_seconds() if r.started_at else None)
                        for r in rows]
        finally:
            engine.dispose()

    def phases(self) -> list[dict]:
        """Per start, from the notebook's status.json and output.log: where the seconds went."""
        out = []
        for st in self.starts:
            run = os.path.join(self.platform.state_dir, "executor", f"notebook-{st['id']}")
            try:
                with open(os.path.join(run, "status.json")) as f:
                    sandbox = datetime.fromisoformat(json.load(f)["started_at"].replace("Z", "+00:00")).timestamp()
                with open(os.path.join(run, "output.log"), errors="replace") as f:
                    listening, probed = server_times(f.read().splitlines(), st["name"])
            except (OSError, KeyError, ValueError):
                continue
            if None in (listening, probed):
                continue
            out.append({"run → sandbox started": sandbox - st["t0"],
                        "sandbox → server listening": listening - sandbox,
                        "listening → hub's probe answered": probed - listening,
                        "probe → answering through the proxy": st["end"] - probed})
        return out

    def stop(self) -> list[int]:
        children = _process_tree(self.platform.process.pid)
        self.platform.stop()
        time.sleep(1)
        return [p for p in children if alive(p)]


# stock JupyterHub ---------------------------------------------------------------------------
class StockSide:
    name = "stock"
    user = "bench"

    def __init__(self, workdir: str):
        self.dir = os.path.join(workdir, "stock")
        os.makedirs(self.dir)
        self.port = free_port_block(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.starts: list[dict] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KQI_", "JUPYTERHUB_"))}
        env.update(STOCK_HUB_DIR=self.dir, STOCK_HUB_PORT=str(self.port), STOCK_HUB_TOKEN=self.token)
        self.log_path = os.path.join(workdir, "stock-hub.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "jupyterhub"), "-f", os.path.join(HERE, "stock_hub_config.py")],
            env=env, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, 90, "the stock hub to start", interval=0.3)
        r = self.hub("POST", f"/users/{self.user}")
        if r.status_code not in (201, 409):
            raise RuntimeError(f"creating the user answered {r.status_code}: {r.text}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            with open(self.log_path, errors="replace") as f:
                raise RuntimeError(f"the stock hub exited with {self.proc.returncode}:\n{f.read()[-4000:]}")
        try:
            return requests.get(self.url + "/hub/api/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def hub(self, method: str, path: str, **kw):
        return requests.request(method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {self.token}"},
                                timeout=60, **kw)

    def start_once(self, i: int) -> float:
        server = f"nbb{i}-{uuid.uuid4().hex[:8]}"
        wall0, t0 = time.time(), time.perf_counter()
        r = self.hub("POST", f"/users/{self.user}/servers/{server}")
        if r.status_code not in (201, 202):
            raise RuntimeError(f"server start answered {r.status_code}: {r.text}")
        status = f"{self.url}/user/{self.user}/{server}/api/status"
        wait_for(lambda: answers(status, self.token), 180, f"stock server {server} to answer")
        elapsed = time.perf_counter() - t0
        self.starts.append({"name": server, "t0": wall0, "end": wall0 + elapsed})
        r = self.hub("DELETE", f"/users/{self.user}/servers/{server}")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"server delete answered {r.status_code}: {r.text}")
        wait_for(lambda: server not in self.hub("GET", f"/users/{self.user}").json()["servers"], 60,
                 f"the hub to drop {server}", interval=0.2)
        return elapsed

    def phases(self) -> list[dict]:
        """Per start, from the hub's log (the servers' output goes there too)."""
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            lines = f.read().splitlines()
        out = []
        for st in self.starts:
            listening, probed = server_times(lines, st["name"])
            if None in (listening, probed):
                continue
            out.append({"POST → server listening": listening - st["t0"],
                        "listening → hub's probe answered": probed - listening,
                        "probe → answering through the proxy": st["end"] - probed})
        return out

    def stop(self) -> list[int]:
        children = _process_tree(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        time.sleep(1)
        return [p for p in children if alive(p)]


def summary(name: str, values: list[float]) -> str:
    return (f"  {name:9s} p50 {statistics.median(values):6.2f} s   min {min(values):6.2f} s   "
            f"max {max(values):6.2f} s   ({len(values)} starts)")


def print_phases(name: str, phases: list[dict]) -> None:
    if not phases:
        print(f"  {name}: no breakdown (logs not found)")
        return
    print(f"  {name} breakdown, median of {len(phases)} (min–max):")
    for key in phases[0]:
        values = [p[key] for p in phases]
        print(f"    {key:38s} {statistics.median(values):6.2f} s  ({min(values):.2f}–{max(values):.2f})")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the bench directory (logs, notebook state)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-notebook-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    print(f"bench dir {workdir}   load before {loadavg()}   cores {os.cpu_count()}", flush=True)
    sides, left = [], {}
    times: dict[str, list[float]] = {"platform": [], "stock": []}
    try:
        t = time.perf_counter()
        platform = PlatformSide(workdir)
        sides.append(platform)
        print(f"platform up in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        stock = StockSide(workdir)
        sides.append(stock)
        print(f"stock hub up in {time.perf_counter() - t:.1f} s", flush=True)
        loads = []
        for i in range(args.starts):
            order = (platform, stock) if i % 2 == 0 else (stock, platform)
            for side in order:
                elapsed = side.start_once(i)
                times[side.name].append(elapsed)
                loads.append(loadavg().split()[0])
                print(f"  start {i:2d} {side.name:9s} {elapsed:6.2f} s   load {loads[-1]}", flush=True)
        created_to_started = [s for _, s in platform.db_figures() if s is not None]
        print(f"\nnotebook run → JupyterLab answering /api/status, {args.starts} starts each, alternating, "
              f"{os.cpu_count()} cores")
        print(summary("platform", times["platform"]))
        print(summary("stock", times["stock"]))
        ratio = statistics.median(times["platform"]) / statistics.median(times["stock"])
        print(f"  platform / stock p50 {ratio:5.2f}x (goal <= 1.3x)")
        if created_to_started:
            print(f"  platform created → started (database) p50 {statistics.median(created_to_started):6.2f} s   "
                  f"min {min(created_to_started):6.2f} s   max {max(created_to_started):6.2f} s")
        print_phases("platform", platform.phases())
        print_phases("stock", stock.phases())
        print(f"  1-min load during the starts: {min(loads)}–{max(loads)}; after {loadavg()}")
    finally:
        for side in reversed(sides):
            left[side.name] = side.stop()
        for name, pids in left.items():
            print(f"  {name}: {'no leftover processes' if not pids else f'LEFT RUNNING: {pids}'}")
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
