"""Job benchmark: 200 trivial trainings through the API, side by side with a plain loop doing it by hand.

Run: ``.venv/bin/python bench/jobs_bench.py [--runs 200]``

* platform: POST /api/v2/training/run of ``true`` N times (a file:// git
  endpoint, a one-file dataset); reports the submit API latency p50/p99, the
  submit → Running and submit → Completed latencies p50/p99 (from the
  database's timestamps), and the wall time until all are Completed;
* loop: what a run must do by hand, one after another — clone the same local
  repository at the same commit, start the same bubblewrap sandbox with ``true``.
Prints the figures and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from conftest import launch_platform, upload  # noqa: E402

from kqi_services.executor.sandbox import bwrap_argv, probe_host  # noqa: E402
from kqi_services.executor.spec import Mount, RunSpec  # noqa: E402
from kqi_services.jobs.gitmodel import clone  # noqa: E402


def make_repo(root: str) -> tuple[str, str]:
    work, bare = os.path.join(root, "work"), os.path.join(root, "repos", "kqi", "model.git")
    os.makedirs(os.path.dirname(bare))
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q", "-b", "master", work], check=True)
    with open(os.path.join(work, "train.py"), "w") as f:
        f.write("print('hi')\n")
    subprocess.run(["git", "-C", work, "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", work, "commit", "-q", "-m", "m"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", work, bare], check=True)
    commit = subprocess.run(["git", "-C", work, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return os.path.join(root, "repos"), commit


def admin_with_repo(platform, repos: str) -> tuple:
    """The admin's API on ``platform`` and a file:// git endpoint of ``repos`` given to the admin's tenant."""
    admin = platform.api().login("admin", platform.admin_password)
    git = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0, "repositoryUrl": f"file://{repos}",
                                              "apiUrl": f"file://{repos}"}).json()
    tenant = admin.get("/tenant").json()
    admin.put(f"/admin/tenants/{tenant['id']}", {"displayName": tenant["displayName"], "gitIds": [1, git["id"]],
                                                  "registryIds": [1], "storageId": 1})
    return admin, git


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def by_hand(repos: str, commit: str, n: int, workdir: str) -> float:
    """The loop: clone + sandboxed ``true``, sequentially."""
    layout = probe_host()
    start = time.perf_counter()
    for i in range(n):
        run = os.path.join(workdir, f"hand-{i}")
        for d in ("input", "output", "attach"):
            os.makedirs(os.path.join(run, d))
        clone(f"file://{repos}/kqi/model.git", commit, os.path.join(run, "git"))
        spec = RunSpec(run_id=f"hand-{i}", command="true", run_dir=run, env={"PATH": "/usr/bin:/bin"},
                       mounts=[Mount(os.path.join(run, "git"), "/kqi/git", False),
                               Mount(os.path.join(run, "input"), "/kqi/input", True),
                               Mount(os.path.join(run, "output"), "/kqi/output", False),
                               Mount(os.path.join(run, "attach"), "/kqi/attach", True)])
        subprocess.run(bwrap_argv(spec, layout), check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-jobs-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    repos, commit = make_repo(os.path.join(workdir, "git"))
    hand_s = by_hand(repos, commit, args.runs, os.path.join(workdir, "hand"))

    platform = launch_platform(os.path.join(workdir, "state"))
    try:
        admin, git = admin_with_repo(platform, repos)
        data = admin.post("/data", {"name": "in"}).json()
        t = upload(admin, "x.txt", b"x")
        admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.txt", "storedPath": t["storedPath"]}]})
        ds = admin.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
        body = {"dataSetId": ds["id"], "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
                "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0}
        submit_ms, ids = [], []
        wall_start = time.perf_counter()
        for i in range(args.runs):
            start = time.perf_counter()
            r = admin.post("/training/run", {**body, "name": f"b{i}"})
            submit_ms.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            ids.append(r.json()["id"])
        while True:  # cheap polls: only the counts of active runs
            active = sum(int(admin.get("/training", params={"Status": s, "perPage": 1}).headers["X-Total-Count"])
                         for s in ("Pending", "Running"))
            if not active:
                break
            time.sleep(0.1)
        wall_s = time.perf_counter() - wall_start
        runs = admin.get("/training", params={"perPage": args.runs}).json()
        statuses = {}
        for x in runs:
            statuses[x["status"]] = statuses.get(x["status"], 0) + 1

        from sqlalchemy import select

        from kqi_services.db import make_engine, make_session_factory
        from kqi_services.orm import Run

        engine = make_engine("sqlite:///" + os.path.join(platform.state_dir, "kqi.sqlite"))
        with make_session_factory(engine)() as db:
            rows = db.scalars(select(Run).where(Run.id.in_(ids))).all()
            to_running = [(r.started_at - r.created_at).total_seconds() for r in rows if r.started_at]
            to_done = [(r.completed_at - r.created_at).total_seconds() for r in rows if r.completed_at]
        engine.dispose()
        print(f"{args.runs} trivial trainings (`true`), one file:// model repository, 2 cores")
        print(f"  submit API         p50 {statistics.median(submit_ms):6.1f} ms   p99 {pct(submit_ms, 99):6.1f} ms (goal < 100)")
        print(f"  submit → Running   p50 {statistics.median(to_running):6.2f} s    p99 {pct(to_running, 99):6.2f} s")
        print(f"  submit → finished  p50 {statistics.median(to_done):6.2f} s    p99 {pct(to_done, 99):6.2f} s")
        print(f"  all {args.runs} finished   {wall_s:7.2f} s   statuses {statuses}")
        print(f"  loop by hand       {hand_s:7.2f} s   (clone + bwrap true, sequential)")
        print(f"  platform / loop    {wall_s / hand_s:7.2f}x (goal <= 2x)")
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
