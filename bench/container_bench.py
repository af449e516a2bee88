"""Container benchmark: N trivial trainings (``true``) in a small local image on the platform's container
executor, side by side with a by-hand loop of ``podman run --rm IMAGE true``.

Run: ``.venv/bin/python bench/container_bench.py [--runs 200]`` (needs podman, runc, busybox-static)

* platform: ``KQI_EXECUTOR=docker`` against a Podman API service of the
  bench's own; N ``POST /api/v2/training/run`` of ``true`` in a busybox image
  (clone, staging, a container with the /kqi mounts, a private network with
  its relay, the log followed, the result kept); wall time until all ended;
* loop: ``podman run --rm`` of the same image and command, one after another
  (no mounts, no network namespace of its own, no clone).
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
from podman import IMAGE, PodmanService  # noqa: E402


def by_hand(podman: PodmanService, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        podman.podman("run", "--rm", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", IMAGE, "true")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-container-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    podman = PodmanService(os.path.join(workdir, "podman")).start()
    platform = None
    try:
        podman.build_image()
        hand_s = by_hand(podman, args.runs)
        repos, _commit = make_repo(os.path.join(workdir, "git"))
        platform = launch_platform(os.path.join(workdir, "state"),
                                   extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
        admin, git = admin_with_repo(platform, repos)
        data = admin.post("/data", {"name": "in"}).json()
        t = upload(admin, "x.txt", b"x")
        admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "x.txt", "storedPath": t["storedPath"]}]})
        ds = admin.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
        image, tag = IMAGE.rsplit(":", 1)
        body = {"dataSetId": ds["id"], "gitModel": {"gitId": git["id"], "owner": "kqi", "repository": "model"},
                "containerImage": {"image": image, "tag": tag}, "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0}
        start = time.perf_counter()
        for i in range(args.runs):
            admin.post("/training/run", {**body, "name": f"c{i}"}).raise_for_status()
        while sum(int(admin.get("/training", params={"Status": s, "perPage": 1}).headers["X-Total-Count"])
                  for s in ("Pending", "Running")):
            time.sleep(0.1)
        wall_s = time.perf_counter() - start
        statuses: dict[str, int] = {}
        for run in admin.get("/training", params={"perPage": args.runs}).json():
            statuses[run["status"]] = statuses.get(run["status"], 0) + 1
        print(f"{args.runs} trivial trainings (`true`) in {IMAGE}, Podman {podman_version()} API service, 2 cores")
        print(f"  platform (docker executor) {wall_s:7.2f} s   statuses {statuses}")
        print(f"  podman run --rm loop       {hand_s:7.2f} s   (sequential)")
        print(f"  platform / loop            {wall_s / hand_s:7.2f}x (goal <= 1.5x)")
    finally:
        if platform is not None:
            platform.stop()
        podman.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def podman_version() -> str:
    return subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[-1]


if __name__ == "__main__":
    main()
