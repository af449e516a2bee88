"""Container benchmark: N trivial trainings (``true``) in a small local image on the platform's container
executor, side by side with a by-hand loop of ``podman run --rm IMAGE true``.

Run: ``.venv/bin/python bench/container_bench.py [--runs 200]`` (needs podman, runc, busybox-static)

* platform: ``KQI_EXECUTOR=docker`` against a Podman API service of the
  bench's own; N ``POST /api/v2/training/run`` of ``true`` in a busybox image
  (clone, staging, a container with the /kqi mounts, a private network with
  its relay, the log followed, the result kept); wall time until all ended;
* loop: ``podman run --rm`` of the same image and command, one after another
  (no mounts, no network namespace of its own, no clone).

``--notebooks N`` (default 3) then starts N notebooks (POST notebook/run until
JupyterLab answers through the hub, then halt) on each of: the embedded
sandbox (a platform of its own, the local executor), a container of an image
with python3 and pip only (JupyterLab, the hub's server and the kqi package
installed at start from the platform's wheels, offline), and a container of
that image with them already installed (``podman commit`` of one such
install). ``--runs 0`` or ``--notebooks 0`` skips a part.
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
from podman import IMAGE, PYTHON_IMAGE, PodmanService  # noqa: E402

LAB_IMAGE = "localhost/kqi-python-lab:1"
ENDED = ("Completed", "Failed", "Killed", "Error", "UserCanceled", "OOMKilled")


def by_hand(podman: PodmanService, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        podman.podman("run", "--rm", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", IMAGE, "true")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--notebooks", type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kqi-container-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    podman = PodmanService(os.path.join(workdir, "podman")).start()
    platform = None
    try:
        podman.build_image()
        if args.notebooks:
            notebooks(podman, workdir, args.notebooks)
        if not args.runs:
            return
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


def lab_image(podman: PodmanService) -> str:
    """The python image with JupyterLab, the hub's server and the kqi package installed (from the wheelhouse)."""
    from kqi_services.jobs.imagetools import ImageTools
    from kqi_services.wheelhouse import default_root

    tools = ImageTools("unused")
    wanted = [*tools.notebook_requirements, *tools.client_requirements]
    install = (f"python3 -m pip install -q --no-index --find-links /wheels {' '.join(wanted)} && "
               f"python3 -m pip install -q --no-index --find-links /wheels --no-deps {tools.platform_requirement}")
    podman.podman("run", "--name", "kqi-lab-build", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                  "-v", f"{default_root()}:/wheels:ro", PYTHON_IMAGE, "sh", "-c", install)
    podman.podman("commit", "kqi-lab-build", LAB_IMAGE)
    podman.podman("rm", "kqi-lab-build")
    return LAB_IMAGE


def notebook_starts(platform, n: int, image: str | None) -> list[float]:
    """Seconds from POST notebook/run to JupyterLab answering through the hub, for ``n`` notebooks in turn."""
    import requests

    api = platform.api().login("admin", platform.admin_password)
    body = {"cpu": 1, "memory": 2, "gpu": 0, "expiresIn": 3600}
    if image:
        body["containerImage"] = dict(zip(("image", "tag"), image.rsplit(":", 1), strict=True))
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        nb = api.post("/notebook/run", {**body, "name": f"nb{i}-{int(t0)}"}).json()
        status = platform.url + nb["url"].removesuffix("lab") + "api/status"
        while True:
            details = api.get(f"/notebook/{nb['id']}").json()
            if details["status"] in ENDED:
                raise RuntimeError(f"notebook {nb['id']} ended: {details['conditionNote']}")
            try:
                if requests.get(status, headers={"Authorization": f"token {api.token}"}, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        times.append(time.perf_counter() - t0)
        api.post(f"/notebook/{nb['id']}/halt")
        while api.get(f"/notebook/{nb['id']}").json()["status"] not in ENDED:
            time.sleep(0.2)
    return times


def notebooks(podman: PodmanService, workdir: str, n: int) -> None:
    podman.build_python_image()
    prepared = lab_image(podman)
    figures = {}
    sides = [("embedded sandbox (local executor)", {}, None),
             ("container, python+pip image: installed at start", {"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url},
              PYTHON_IMAGE),
             ("container, image with JupyterLab", {"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url}, prepared)]
    for name, env, image in sides:
        platform = launch_platform(os.path.join(workdir, f"nb-state-{len(figures)}"), extra_env=env)
        try:
            figures[name] = notebook_starts(platform, n, image)
        finally:
            platform.stop()
    print(f"notebook start → JupyterLab answering through the hub ({n} each, one after another, 2 cores)")
    base = min(figures[sides[0][0]])
    for name, times in figures.items():
        print(f"  {name:50s} min {min(times):6.2f} s  median {sorted(times)[len(times) // 2]:6.2f} s"
              f"  ({min(times) / base:4.1f}x the sandbox)")


def podman_version() -> str:
    return subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[-1]


if __name__ == "__main__":
    main()
