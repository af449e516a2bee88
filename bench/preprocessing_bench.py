"""Preprocessing benchmark: 100 data through one copying preprocessing, side by side with a by-hand loop;
and the registration of a 10,000-file result.

Run: ``.venv/bin/python bench/preprocessing_bench.py [--data 100] [--files 10000]``

* platform: one ``POST /api/v2/preprocessings/{id}/run`` with ``dataIds`` of N
  one-file data; the command copies ``/kqi/input/$DATA_ID/*`` to
  ``/kqi/output/out/``; wall time from the request until every history is
  Completed (each one's result registered as a data);
* loop: what each history must do, by hand, one after another — clone the
  model at the commit, hard-link the input into a directory, run the same
  bubblewrap sandbox with the same copy, register the result by the store's
  own ``adopt_files`` (hash + hard link);
* registration: a preprocessing writing 10,000 files under
  ``/kqi/output/many/``, then the time of its end on the clock
  (``date +%s.%N`` written last, outside the registered directory); reported:
  from the command's end until the history is Completed with its data made
  (noticing the end, attaching the log, hashing and linking 10,000 files, the
  rows), goal < 2 s.
Prints the figures and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from conftest import launch_platform, upload  # noqa: E402
from jobs_bench import admin_with_repo, make_repo  # noqa: E402

from kqi_services.executor.sandbox import bwrap_argv, probe_host  # noqa: E402
from kqi_services.executor.spec import Mount, RunSpec  # noqa: E402
from kqi_services.jobs.gitmodel import clone  # noqa: E402
from kqi_services.storage.local import LocalStore  # noqa: E402

COPY = "mkdir -p /kqi/output/out && cp /kqi/input/$DATA_ID/* /kqi/output/out/"


def by_hand(repos: str, commit: str, n: int, workdir: str) -> float:
    """Clone, stage, sandboxed copy, register: one data after another."""
    layout = probe_host()
    store = LocalStore(os.path.join(workdir, "store"), "bench-secret")
    source = os.path.join(workdir, "source.txt")
    with open(source, "wb") as f:
        f.write(b"x" * 1024)
    start = time.perf_counter()
    for i in range(n):
        run = os.path.join(workdir, f"hand-{i}")
        for d in ("input", "output", "attach"):
            os.makedirs(os.path.join(run, d))
        os.makedirs(os.path.join(run, "input", str(i)))
        os.link(source, os.path.join(run, "input", str(i), "x.txt"))
        clone(f"file://{repos}/kqi/model.git", commit, os.path.join(run, "git"))
        spec = RunSpec(run_id=f"hand-{i}", command=COPY, run_dir=run, env={"PATH": "/usr/bin:/bin", "DATA_ID": str(i)},
                       mounts=[Mount(os.path.join(run, "git"), "/kqi/git", False),
                               Mount(os.path.join(run, "input"), "/kqi/input", True),
                               Mount(os.path.join(run, "output"), "/kqi/output", False),
                               Mount(os.path.join(run, "attach"), "/kqi/attach", True)])
        subprocess.run(bwrap_argv(spec, layout), check=True, stdin=subprocess.DEVNULL)
        out_dir = os.path.join(run, "output", "out")
        opened = []
        for name in sorted(os.listdir(out_dir)):
            opened.append((name, os.open(os.path.join(out_dir, name), os.O_RDONLY | os.O_NOFOLLOW)))
        store.adopt_files(f"t/data/{i}", opened)
        for _, fd in opened:
            os.close(fd)
    return time.perf_counter() - start


def wait_histories(api, pre_id: int, count: int, timeout: float = 1800) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        histories = api.get(f"/preprocessings/{pre_id}/histories").json()
        if len(histories) == count and all(h["status"] not in ("Pending", "Running") for h in histories):
            return histories
        time.sleep(0.2)
    raise RuntimeError("the histories did not end in time")


def completed_at(state_dir: str, run_id: int) -> float:
    """The run's completedAt as a UNIX time, with the microseconds the database keeps."""
    from datetime import UTC

    from kqi_services.db import make_engine, make_session_factory
    from kqi_services.orm import Run

    engine = make_engine("sqlite:///" + os.path.join(state_dir, "kqi.sqlite"))
    try:
        with make_session_factory(engine)() as db:
            return db.get(Run, run_id).completed_at.replace(tzinfo=UTC).timestamp()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=int, default=100)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-pre-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    repos, commit = make_repo(os.path.join(workdir, "git"))
    hand_s = by_hand(repos, commit, args.data, os.path.join(workdir, "hand"))

    platform = launch_platform(os.path.join(workdir, "state"))
    try:
        admin, git = admin_with_repo(platform, repos)
        definition = {"entryPoint": COPY, "containerImage": {"image": "python", "tag": "3.11"},
                      "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
                      "cpu": 1, "memory": 1, "gpu": 0}
        data_ids = []
        for i in range(args.data):
            data = admin.post("/data", {"name": f"raw-{i}"}).json()
            ticket = upload(admin, "x.txt", b"x" * 1024)
            admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.txt",
                                                                "storedPath": ticket["storedPath"]}]})
            data_ids.append(data["id"])
        pre = admin.post("/preprocessings", {"name": "copy", **definition}).json()
        start = time.perf_counter()
        r = admin.post(f"/preprocessings/{pre['id']}/run", {"dataIds": data_ids, "cpu": 1, "memory": 1, "gpu": 0})
        r.raise_for_status()
        histories = wait_histories(admin, pre["id"], args.data)
        wall_s = time.perf_counter() - start
        statuses: dict[str, int] = {}
        for h in histories:
            statuses[h["status"]] = statuses.get(h["status"], 0) + 1
        made = sum(len(h["outputDataIds"]) for h in histories)

        many = admin.post("/preprocessings", {
            "name": "many", **definition,
            "entryPoint": f"mkdir -p /kqi/output/many && cd /kqi/output/many && "
                          f"for i in $(seq 1 {args.files}); do echo $i > f$i; done; "
                          "date +%s.%N > /kqi/output/command-ended"}).json()
        admin.post(f"/preprocessings/{many['id']}/run", {"dataId": data_ids[0], "cpu": 1, "memory": 1, "gpu": 0})
        [big] = wait_histories(admin, many["id"], 1)
        seen = time.time()
        ended_at = float(open(os.path.join(platform.state_dir, "runs", f"preprocessing-{big['runId']}", "output",
                                           "command-ended")).read())
        registered = admin.get(f"/data/{big['outputDataIds'][0]}/files").json() if big["outputDataIds"] else []
        completed = completed_at(platform.state_dir, big["runId"])

        print(f"{args.data} data through one copying preprocessing (one run request with dataIds), 2 cores")
        print(f"  platform           {wall_s:7.2f} s   statuses {statuses}, {made} data made")
        print(f"  loop by hand       {hand_s:7.2f} s   (clone + stage + bwrap cp + adopt_files, sequential)")
        print(f"  platform / loop    {wall_s / hand_s:7.2f}x (goal <= 2x)")
        print(f"a preprocessing writing {args.files} files: history {big['status']}, "
              f"{len(registered)} files registered as data {big['outputDataIds']}")
        print(f"  command end -> Completed (the database's completedAt): {completed - ended_at:6.2f} s (goal < 2 s)")
        print(f"  command end -> Completed seen by polling the API:    {seen - ended_at:6.2f} s")
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
