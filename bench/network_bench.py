"""Network benchmark: a run in a network namespace of its own vs one on the host's network.

Run: ``.venv/bin/python bench/network_bench.py [--runs 20] [--platform]``

* executor: the local executor, start → finished of two commands, alternating
  ``network="private"`` (its own namespace, a forward to the "service") and
  ``network="host"`` (what every run had before): ``true``, and a command that
  makes 20 HTTP requests to the service (a local HTTP server) — through the
  relay, or straight on the host's loopback;
* ``--platform``: two platforms, one with ``KQI_RUN_NETWORK=private`` (the
  default) and one with ``host``; trainings that call ``KQI_SERVER`` once,
  one after another, submit → Completed from the API's timestamps.
Prints p50/min/max of each and the ratio private ÷ host; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from kqi_services.executor import LocalExecutor, RunSpec  # noqa: E402
from kqi_services.executor.netns import PortForward  # noqa: E402

REQUESTS = ("python3 -c \"import urllib.request, os\n"
            "for _ in range(20): urllib.request.urlopen(os.environ['URL'], timeout=10).read()\"")


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  min {min(values) * 1000:7.1f}  max {max(values) * 1000:7.1f}"


def executor_bench(runs: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as root:
        ex = LocalExecutor(os.path.join(root, "runs"))
        for label, command in (("true", "true"), ("20 HTTP requests", REQUESTS)):
            times = {"private": [], "host": []}
            for i in range(runs * 2):
                network = "private" if i % 2 == 0 else "host"
                forwards = [PortForward("out", port, f"127.0.0.1:{port}")] if network == "private" else []
                run_id = f"bench-{network}-{i}-{label[:4].replace(' ', '')}".lower()
                started = time.perf_counter()
                ex.start(RunSpec(run_id, command, env={"URL": f"http://127.0.0.1:{port}/"}, network=network,
                                 forwards=forwards))
                while (state := ex.status(run_id)).phase != "finished":
                    time.sleep(0.002)
                times[network].append(time.perf_counter() - started)
                assert state.exit_code == 0, open(ex.log_path(run_id)).read()
                ex.cleanup(run_id)
            ratio = statistics.median(times["private"]) / statistics.median(times["host"])
            print(f"executor, {label:17} private {summary(times['private'])}")
            print(f"executor, {label:17} host    {summary(times['host'])}   ratio {ratio:.2f}")
    server.shutdown()


def platform_bench(runs: int) -> None:
    """Both platforms up at once; their trainings alternate, one at a time."""
    import jobs_bench
    from conftest import launch_platform, unique
    from test_training_api import new_lab, submit, wait_for

    command = ("python3 -c \"import os, urllib.request; urllib.request.urlopen(urllib.request.Request("
               "os.environ['KQI_SERVER'] + '/api/v2/account', headers={'Authorization': 'Bearer ' + "
               "os.environ['KQI_TOKEN']}), timeout=30).read()\"")
    with tempfile.TemporaryDirectory() as root:
        repos, _ = jobs_bench.make_repo(os.path.join(root, "git"))
        platforms, labs = {}, {}
        try:
            for network in ("private", "host"):
                platform = platforms[network] = launch_platform(os.path.join(root, network),
                                                                extra_env={"KQI_RUN_NETWORK": network})
                admin = platform.api().login("admin", platform.admin_password)
                git = admin.post("/admin/git/endpoints", {"name": "local", "serviceType": 0,
                                                          "repositoryUrl": f"file://{repos}",
                                                          "apiUrl": f"file://{repos}"}).json()

                def new_tenant(admin=admin, **fields):
                    return admin.post("/admin/tenants", {"tenantName": unique("bench"), "displayName": "bench",
                                                         "registryIds": [1], "storageId": 1, **fields}).json()

                def new_user(tenants, admin=admin):
                    made = admin.post("/admin/users", {"name": unique("u"), "password": "bench-pass-1",
                                                       "systemRoles": [], "tenants": tenants}).json()
                    return {**made, "password": "bench-pass-1"}

                labs[network] = new_lab(platform, new_tenant, new_user, {"id": git["id"]})
            times = {"private": [], "host": []}
            for i in range(runs * 2):
                network = ("private", "host")[i % 2]
                lab = labs[network]
                started = time.perf_counter()
                run = submit(lab, command)
                done = wait_for(lab["api"], run["id"])
                assert done["status"] == "Completed", lab["api"].get(f"/training/{run['id']}/log").text
                times[network].append(time.perf_counter() - started)
            ratio = statistics.median(times["private"]) / statistics.median(times["host"])
            print(f"platform, a training calling KQI_SERVER, submit → Completed, private {summary(times['private'])}")
            print(f"platform, a training calling KQI_SERVER, submit → Completed, host    {summary(times['host'])}"
                  f"   ratio {ratio:.2f}")
        finally:
            for platform in platforms.values():
                platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--platform", action="store_true", help="also trainings on two platforms")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    executor_bench(args.runs)
    if args.platform:
        platform_bench(max(args.runs // 2, 5))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
