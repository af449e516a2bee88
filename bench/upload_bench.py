"""Upload benchmark: the v2 multipart protocol into the local store, side by side with its peers.

Run: ``.venv/bin/python bench/upload_bench.py [--size-mib 1024] [--files 1000] [--list-files 10000]``

In one run, on the same file and disk:
* kqi: ``upload/parameter`` → PUT 16 MiB parts (as the upstream CLI, no token,
  form content type) → ``upload/complete`` → register, through the real
  proxy/hub/service, with the time of the PUTs and of the complete apart;
  peak RSS of the kqi service process (VmHWM);
* (a) jupyter-server's contents API in 1 MiB base64 chunks (what
  JupyterLab's file browser does);
* (b) ``cp`` of the same file followed by ``sync``;
then 1,000 files of 1 MiB through kqi, the file list of a data item with
10,000 files (server time), and staging a 10,000-file dataset by hard links.
Prints the figures and the ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from conftest import free_port_block, launch_platform  # noqa: E402

PART = 16 * 1024 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def make_file(path: str, size: int) -> None:
    block = os.urandom(4 * 1024 * 1024)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(len(block), size - written)
            f.write(block[:n])
            written += n


def kqi_upload(api, path: str, session: requests.Session, phases: dict | None = None) -> dict:
    """The v2 protocol as the upstream CLI runs it; ``phases`` gets the seconds of each step."""
    size = os.path.getsize(path)
    parts = (size - 1) // PART + 1 if size else 0
    start = time.perf_counter()
    ticket = api.get("/upload/parameter", params={"fileName": os.path.basename(path), "partSum": parts,
                                                  "type": "Data"}).json()
    issued = time.perf_counter()
    etags = []
    with open(path, "rb") as f:
        for i, uri in enumerate(ticket["uris"], start=1):
            r = session.put(uri, data=f.read(PART), headers=FORM, timeout=300)
            r.raise_for_status()
            etags.append(f"{i}+{r.headers['ETag']}")
    sent = time.perf_counter()
    r = api.post("/upload/complete", {"key": ticket["key"], "uploadId": ticket["uploadId"], "partETags": etags})
    r.raise_for_status()
    if phases is not None:
        phases.update(parameter=issued - start, puts=sent - issued, complete=time.perf_counter() - sent)
    return ticket


def service_pid(platform) -> int:
    out = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, args = line.strip().split(" ", 1)
        if "-m kqi_services" in args and int(pid) in platform.children:
            return int(pid)
    raise RuntimeError("kqi service process not found")


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def jupyter_contents_upload(path: str, workdir: str) -> float:
    port = free_port_block(1)
    token = "bench-token"
    root = os.path.join(workdir, "jupyter-root")
    os.makedirs(root, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/contents/"
        headers = {"Authorization": f"token {token}"}
        for _ in range(200):
            try:
                if requests.get(base, headers=headers, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        chunk = 1024 * 1024
        size = os.path.getsize(path)
        count = (size - 1) // chunk + 1
        s = requests.Session()
        start = time.perf_counter()
        with open(path, "rb") as f:
            for i in range(1, count + 1):
                data = base64.b64encode(f.read(chunk)).decode()
                body = {"type": "file", "format": "base64", "content": data, "chunk": -1 if i == count else i,
                        "name": "big.bin", "path": "big.bin"}
                s.put(base + "big.bin", json=body, headers=headers, timeout=300).raise_for_status()
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(20)


def cp_sync(path: str, workdir: str) -> float:
    target = os.path.join(workdir, "copy.bin")
    start = time.perf_counter()
    subprocess.run(["cp", path, target], check=True)
    subprocess.run(["sync"], check=True)
    elapsed = time.perf_counter() - start
    os.remove(target)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--list-files", type=int, default=10000)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024

    workdir = tempfile.mkdtemp(prefix="kqi-bench-", dir=os.environ.get("KQI_BENCH_DIR"))
    platform = launch_platform(os.path.join(workdir, "state"))
    try:
        admin = platform.api().login("admin", platform.admin_password)
        pid = service_pid(platform)
        big = os.path.join(workdir, "big.bin")
        make_file(big, size)
        subprocess.run(["sync"], check=True)

        session = requests.Session()
        start = time.perf_counter()
        phases = {}
        ticket = kqi_upload(admin, big, session, phases)
        kqi_s = time.perf_counter() - start
        data = admin.post("/data", {"name": "bench"}).json()
        admin.post(f"/data/{data['id']}/files", {"files": [{"fileName": "big.bin", "storedPath": ticket["storedPath"]}]})
        rss = peak_rss_mib(pid)

        jup_s = jupyter_contents_upload(big, workdir)
        cp_s = cp_sync(big, workdir)
        mb = size / 1e6
        print(f"1 file of {args.size_mib} MiB")
        print(f"  kqi v2 multipart        {kqi_s:7.2f} s  {mb / kqi_s:8.1f} MB/s")
        print(f"    parameter {phases['parameter'] * 1000:.0f} ms, {len(ticket['uris'])} PUTs "
              f"{phases['puts']:.2f} s, complete {phases['complete']:.2f} s")
        print(f"  (a) jupyter contents    {jup_s:7.2f} s  {mb / jup_s:8.1f} MB/s   kqi is {jup_s / kqi_s:5.2f}x (goal >= 5x)")
        print(f"  (b) cp + sync           {cp_s:7.2f} s  {mb / cp_s:8.1f} MB/s   kqi is {cp_s / kqi_s:5.2f}x (goal >= 0.5x)")
        print(f"  kqi service peak RSS    {rss:7.1f} MiB (goal < 200)")

        small_dir = os.path.join(workdir, "small")
        os.makedirs(small_dir)
        for i in range(args.files):
            with open(os.path.join(small_dir, f"f{i:05d}.bin"), "wb") as f:
                f.write(os.urandom(1024 * 1024))
        many = admin.post("/data", {"name": "many"}).json()
        start = time.perf_counter()
        registered = []
        for name in sorted(os.listdir(small_dir)):
            t = kqi_upload(admin, os.path.join(small_dir, name), session)
            registered.append({"fileName": name, "storedPath": t["storedPath"]})
        admin.post(f"/data/{many['id']}/files", {"files": registered}).raise_for_status()
        small_s = time.perf_counter() - start
        print(f"{args.files} files of 1 MiB through kqi: {small_s:.2f} s ({args.files / small_s:.0f} files/s)")

        # a data item with many files: list time at the server
        tiny = os.path.join(workdir, "tiny.txt")
        with open(tiny, "wb") as f:
            f.write(b"x")
        listing = admin.post("/data", {"name": "listing"}).json()
        stored = [kqi_upload(admin, tiny, session)["storedPath"] for _ in range(1)]
        files = [{"fileName": f"n{i:05d}.txt", "storedPath": stored[0]} for i in range(args.list_files)]
        # one upload registered under many names: the listing cost is what is measured
        admin.post(f"/data/{listing['id']}/files", {"files": files}).raise_for_status()
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            r = admin.get(f"/data/{listing['id']}/files", params={"withUrl": "true"})
            timings.append(time.perf_counter() - start)
            assert len(r.json()) == args.list_files
        marker = f"GET /services/kqi/api/v2/data/{listing['id']}/files?withUrl=true"
        server_ms = [float(line.rsplit(" ", 1)[1].rstrip("ms")) for line in platform.log().splitlines()
                     if marker in line and line.endswith("ms")]
        print(f"file list of {args.list_files} files with URLs: server {min(server_ms):.0f} ms best, "
              f"{sorted(server_ms)[len(server_ms) // 2]:.0f} ms median (goal < 200); "
              f"round trip through the proxy {min(timings) * 1000:.0f} ms best")

        ds = admin.post("/datasets", {"name": "stage", "entries": {"training": [{"id": listing["id"]}]}}).json()
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", STAGE_SNIPPET, platform.env["KQI_STATE_DIR"], str(ds["id"]),
             os.path.join(workdir, "staged")], capture_output=True, text=True, check=True,
        ).stdout.strip()
        print(f"staging a {args.list_files}-file dataset by hard links: {out}")
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


STAGE_SNIPPET = """
import os, sys, time
os.environ['KQI_STATE_DIR'] = sys.argv[1]
from kqi_services.hub.settings import PlatformSettings
from kqi_services.db import make_engine, make_session_factory
from kqi_services.orm import DataSet
from kqi_services.jobs.staging import dataset_layout, stage
from kqi_services.storage import local_store_for
s = PlatformSettings()
db = make_session_factory(make_engine(s.db_url))()
store = local_store_for(s)
start = time.perf_counter()
n = stage(dataset_layout(db, db.get(DataSet, int(sys.argv[2]))), store, sys.argv[3])
print(f'{n} files in {time.perf_counter() - start:.2f} s')
"""

if __name__ == "__main__":
    main()
