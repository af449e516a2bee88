"""Load benchmark: concurrent API clients against lists, gets and small uploads, through the proxy.

Run: ``.venv/bin/python bench/load_bench.py [--clients 50] [--seconds 60] [--data 200]``

One platform in a temp state dir; the admin makes a tenant and ``--users``
members, seeds ``--data`` data with one small file each, ``--datasets``
datasets and ``--trainings`` finished trainings (``true`` from a file://
repository). Then ``--clients`` clients, each logged in with a token of its
own and a keep-alive connection of its own, call the public proxy URL as users
do, one request after another for ``--seconds`` s, in this mix:

* list data (``perPage=20``, a page of the first five), get a data item,
  list datasets, get a dataset, list trainings;
* a small upload (``--upload-bytes``): ``GET upload/parameter``, ``PUT`` the one
  part to its signed URL (no token, the CLI's form content type),
  ``POST upload/complete``, ``POST data/{id}/files`` onto a seeded data item.

Every HTTP request is timed on its own; an answer other than the expected
2xx, a connection error or a timeout counts as an error. Prints req/s, p50,
p95, p99 and max overall and per operation, the whole upload's latency, the
load average before and after, and the CPU seconds the service, the hub, the
proxy and this client used. It asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from conftest import launch_platform, upload, wait_until  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: (operation, weight) of a client's next step; an upload is four requests
MIX = [("list_data", 25), ("get_data", 20), ("list_datasets", 10), ("get_dataset", 10),
       ("list_trainings", 15), ("upload", 20)]
UPLOAD_STEPS = ("upload_parameter", "upload_part", "upload_complete", "add_files")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def make_repo(root: str) -> tuple[str, str]:
    """A bare file:// repository with one commit (as bench/jobs_bench.py makes it)."""
    sys.path.insert(0, HERE)
    from jobs_bench import make_repo as make

    return make(root)


# seeding -------------------------------------------------------------------------------------


def seed(platform, args, workdir: str) -> dict:
    """Tenant, users, data with a file each, datasets, trainings; returns what the clients need."""
    admin = platform.api().login("admin", platform.admin_password)
    repos, _commit = make_repo(os.path.join(workdir, "git"))
    git = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0, "repositoryUrl": f"file://{repos}",
                                              "apiUrl": f"file://{repos}"}).json()
    r = admin.post("/admin/tenants", {"tenantName": "load", "displayName": "Load bench", "gitIds": [1, git["id"]],
                                      "registryIds": [1], "storageId": 1})
    assert r.status_code == 201, r.text
    tenant = r.json()
    users = []
    for i in range(args.users):
        body = {"name": f"load{i}", "password": "load-pass-123", "systemRoles": [], "tenants": [{"id": tenant["id"]}]}
        r = admin.post("/admin/users", body)
        assert r.status_code == 201, r.text
        users.append(body["name"])
    owner = platform.api().login(users[0], "load-pass-123")

    def one_data(i):
        data = owner.post("/data", {"name": f"seed-{i:04d}", "memo": "load bench", "tags": ["load"]}).json()
        ticket = upload(owner, f"seed-{i:04d}.bin", os.urandom(args.upload_bytes))
        r = owner.post(f"/data/{data['id']}/files", {"files": [{"fileName": f"seed-{i:04d}.bin",
                                                                "storedPath": ticket["storedPath"]}]})
        assert r.status_code == 201, r.text
        return data["id"]

    with ThreadPoolExecutor(4) as pool:
        data_ids = list(pool.map(one_data, range(args.data)))
    dataset_ids = []
    for i in range(args.datasets):
        chosen = random.Random(i).sample(data_ids, min(10, len(data_ids)))
        body = {"name": f"seed-ds-{i}", "entries": {"training": [{"id": d} for d in chosen[:6]],
                                                    "testing": [{"id": d} for d in chosen[6:]]}}
        r = owner.post("/datasets", body)
        assert r.status_code == 201, r.text
        dataset_ids.append(r.json()["id"])
    for i in range(args.trainings):
        r = owner.post("/training/run", {"name": f"seed-run-{i}", "dataSetId": dataset_ids[i % len(dataset_ids)],
                                         "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
                                         "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0})
        assert r.status_code in (200, 201), r.text
    if args.trainings:
        wait_until(lambda: all(t["status"] not in ("Pending", "Running") for t in owner.get("/training").json()),
                   120, "the seeded trainings to finish")
    tokens = [platform.api().login(users[c % len(users)], "load-pass-123").token for c in range(args.clients)]
    return {"data_ids": data_ids, "dataset_ids": dataset_ids, "tokens": tokens}


# the clients ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self, settle_seconds: float):
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, str] = {}
        #: latencies of the requests begun once every client has had ``settle_seconds`` to log its token in
        self.settled: list[float] = []
        self.settled_after = time.perf_counter() + settle_seconds

    def ok(self, op: str, started: float) -> None:
        seconds = time.perf_counter() - started
        self.latencies[op].append(seconds)
        if started >= self.settled_after:
            self.settled.append(seconds)

    def error(self, op: str, started: float, what: str) -> None:
        self.ok(op, started)
        self.errors[op] += 1
        self.samples.setdefault(op, what[:300])


async def call(session, rec: Recorder, op: str, method: str, url: str, expect=(200,), **kw):
    start = time.perf_counter()
    try:
        async with session.request(method, url, **kw) as resp:
            body = await resp.read()
            if resp.status not in expect:
                rec.error(op, start, f"{resp.status} {body[:200]!r}")
                return None
            rec.ok(op, start)
            return resp, body
    except (TimeoutError, aiohttp.ClientError) as e:
        rec.error(op, start, f"{type(e).__name__}: {e}")
        return None


async def client(n: int, api: str, token: str, seeded: dict, upload_bytes: int, deadline: float,
                 rec: Recorder, uploads: list[float]) -> None:
    rng = random.Random(n)
    ops, weights = zip(*MIX, strict=True)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection per client, as a user's CLI
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as s:
        parts = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1))
        async with parts:
            step = 0
            while time.perf_counter() < deadline:
                op = rng.choices(ops, weights)[0]
                if op == "list_data":
                    await call(s, rec, op, "GET", f"{api}/data", params={"perPage": 20, "page": rng.randint(1, 5)})
                elif op == "get_data":
                    await call(s, rec, op, "GET", f"{api}/data/{rng.choice(seeded['data_ids'])}")
                elif op == "list_datasets":
                    await call(s, rec, op, "GET", f"{api}/datasets", params={"perPage": 20})
                elif op == "get_dataset":
                    await call(s, rec, op, "GET", f"{api}/datasets/{rng.choice(seeded['dataset_ids'])}")
                elif op == "list_trainings":
                    await call(s, rec, op, "GET", f"{api}/training", params={"perPage": 20})
                else:
                    step += 1
                    start = time.perf_counter()
                    if await small_upload(s, parts, rec, api, f"c{n}-{step}.bin", os.urandom(upload_bytes),
                                          rng.choice(seeded["data_ids"])):
                        uploads.append(time.perf_counter() - start)


async def small_upload(s, parts, rec, api, name, payload, data_id) -> bool:
    got = await call(s, rec, "upload_parameter", "GET", f"{api}/upload/parameter",
                     params={"fileName": name, "partSum": 1, "type": "Data"})
    if got is None:
        return False
    ticket = json.loads(got[1])
    got = await call(parts, rec, "upload_part", "PUT", ticket["uris"][0], data=payload, headers=FORM)
    if got is None:
        return False
    etag = got[0].headers["ETag"]
    body = {"key": ticket["key"], "uploadId": ticket["uploadId"], "partETags": [f"1+{etag}"]}
    if await call(s, rec, "upload_complete", "POST", f"{api}/upload/complete", json=body) is None:
        return False
    files = {"files": [{"fileName": name, "storedPath": ticket["storedPath"]}]}
    return await call(s, rec, "add_files", "POST", f"{api}/data/{data_id}/files", expect=(201,), json=files) is not None


async def drive(api: str, seeded: dict, args) -> tuple[Recorder, list[float], float]:
    rec, uploads = Recorder(args.settle), []
    start = time.perf_counter()
    deadline = start + args.seconds
    await asyncio.gather(*(client(n, api, token, seeded, args.upload_bytes, deadline, rec, uploads)
                           for n, token in enumerate(seeded["tokens"])))
    return rec, uploads, time.perf_counter() - start


# the machine ---------------------------------------------------------------------------------


def platform_processes(platform) -> dict[str, list[int]]:
    """pids of the kqi service, the hub and the proxy of this platform."""
    found = defaultdict(list)
    out = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, cmd = line.strip().split(" ", 1)
        pid = int(pid)
        if pid not in platform.children and pid != platform.process.pid:
            continue
        if "-m kqi_services" in cmd and "launcher" not in cmd:
            found["kqi service"].append(pid)
        elif "jupyterhub" in cmd and "singleuser" not in cmd:
            found["hub"].append(pid)
        elif "configurable-http-proxy" in cmd:
            found["proxy"].append(pid)
    return dict(found)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def report(rec: Recorder, uploads: list[float], wall: float, args, loads, cpu: dict[str, float]) -> None:
    total = sum(len(v) for v in rec.latencies.values())
    errors = sum(rec.errors.values())
    every = [x for v in rec.latencies.values() for x in v]

    def line(name, values, errs, seconds=wall):
        ms = [x * 1000 for x in values]
        return (f"  {name:<18} {len(values):7d} {len(values) / seconds:8.1f} {pct(ms, 50):8.1f} {pct(ms, 95):8.1f} "
                f"{pct(ms, 99):8.1f} {max(ms):8.1f} {errs:>6}")

    print(f"{args.clients} clients x {args.seconds} s through the proxy ({args.data} data, {args.datasets} datasets, "
          f"{args.trainings} trainings, {args.upload_bytes}-byte uploads), {os.cpu_count()} cores")
    print(f"  {'operation':<18} {'requests':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'errors':>6}")
    print(line("all", every, errors))
    if rec.settled:
        print(line(f"all after {args.settle:g} s", rec.settled, "", wall - args.settle))
    for op in [o for o, _ in MIX if o != "upload"] + list(UPLOAD_STEPS):
        if rec.latencies.get(op):
            print(line(op, rec.latencies[op], rec.errors.get(op, 0)))
    if uploads:
        ms = [x * 1000 for x in uploads]
        print(f"  whole upload (4 requests): {len(uploads)} done, p50 {pct(ms, 50):.1f} ms, "
              f"p99 {pct(ms, 99):.1f} ms")
    print(f"  total {total} requests in {wall:.1f} s: {total / wall:.1f} req/s, {errors} errors")
    for op, sample in rec.samples.items():
        print(f"    first {op} error: {sample}")
    print(f"  load average before {loads[0][0]:.2f} {loads[0][1]:.2f} {loads[0][2]:.2f}, "
          f"after {loads[1][0]:.2f} {loads[1][1]:.2f} {loads[1][2]:.2f}")
    print("  CPU during the run: " + ", ".join(f"{name} {s:.1f} s ({100 * s / wall:.0f}%)" for name, s in cpu.items()))


SERVICE_OPS = [  # (operation, method, path under the API) as the service's access log names them
    ("list_data", "GET", re.compile(r"/data\?")), ("get_data", "GET", re.compile(r"/data/[0-9]+$")),
    ("list_datasets", "GET", re.compile(r"/datasets\?")), ("get_dataset", "GET", re.compile(r"/datasets/[0-9]+$")),
    ("list_trainings", "GET", re.compile(r"/training\?")), ("upload_parameter", "GET", re.compile(r"/upload/parameter")),
    ("upload_part", "PUT", re.compile(r"^/services/kqi/storage/parts/")),
    ("upload_complete", "POST", re.compile(r"/upload/complete$")), ("add_files", "POST", re.compile(r"/data/[0-9]+/files$")),
]
ACCESS = re.compile(r"tornado.access\] [0-9]+ ([A-Z]+) (\S+) \(.*\) ([0-9.]+)ms$")


def service_times(log: str) -> None:
    """Each operation's time inside the service (tornado's request time: from its headers to its answer)."""
    times = defaultdict(list)
    for line in log.splitlines():
        m = ACCESS.search(line)
        if not m:
            continue
        method, uri, ms = m[1], m[2].replace("/services/kqi/api/v2", "", 1), float(m[3])
        for op, want, pattern in SERVICE_OPS:
            if method == want and pattern.search(uri if op != "upload_part" else m[2]):
                times[op].append(ms)
                break
    print("  time in the service (its access log), ms: " + ", ".join(
        f"{op} {pct(v, 50):.1f}/{pct(v, 99):.0f}" for op, v in times.items()) + " (p50/p99)")


def hub_token_checks(log: str) -> None:
    """The service's token questions to the hub during the load, as the hub's access log times them."""
    marker = re.compile(r"GET /hub/api/(user|users/[^/ ]+/tokens/[^/ ?]+) .*?([0-9.]+)ms$")
    times = defaultdict(list)
    for line in log.splitlines():
        m = marker.search(line)
        if m:
            times["GET /user" if m[1] == "user" else "GET /users/NAME/tokens/ID"].append(float(m[2]))
    for what, ms in times.items():
        print(f"  hub {what} (token checks): {len(ms)}, hub-side p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--data", type=int, default=200)
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--trainings", type=int, default=5, help="finished trainings in the list (0: none)")
    parser.add_argument("--upload-bytes", type=int, default=4096)
    parser.add_argument("--settle", type=float, default=5,
                        help="also report the requests begun after this many seconds (every token's first hub "
                             "questions behind it)")
    parser.add_argument("--keep", action="store_true", help="keep the platform up after the run (Enter stops it)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="kqi-load-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    platform = launch_platform(os.path.join(workdir, "state"))
    try:
        seeded = seed(platform, args, workdir)
        procs = platform_processes(platform)
        print(f"platform {platform.url}, processes {procs}", flush=True)
        before = {name: cpu_seconds(pids) for name, pids in procs.items()}
        before["this client"] = time.process_time()
        loads = [os.getloadavg()]
        log_start = len(platform.log())
        rec, uploads, wall = asyncio.run(drive(platform.api_base, seeded, args))
        loads.append(os.getloadavg())
        cpu = {name: cpu_seconds(pids) - before[name] for name, pids in procs.items()}
        cpu["this client"] = time.process_time() - before["this client"]
        report(rec, uploads, wall, args, loads, cpu)
        service_times(platform.log()[log_start:])
        hub_token_checks(platform.log()[log_start:])
        if sum(rec.errors.values()):
            problems = [line for line in platform.log()[log_start:].splitlines()
                        if line.startswith(("[E", "[W")) or "Error" in line]
            print(f"  the platform's log during the load has {len(problems)} error/warning lines; the first:")
            for line in problems[:40]:
                print("    " + line[:300])
        if args.keep:
            input("platform kept up; Enter stops it ")
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
