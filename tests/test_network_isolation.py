"""One tenant's runs cannot reach another tenant's ports (issue 10, hole 2), on the real platform.

The attack: tenant A has a notebook with a running kernel (its ZMQ ports)
and a TensorBoard; tenant B runs a training that connects to every port
listening on the host's loopback and to every port of A's notebook and
TensorBoard. Before runs had network namespaces of their own, B reached
A's TensorBoard and kernels on 127.0.0.1. Now B reaches the kqi service
(``KQI_SERVER``, through the proxy) and nothing else.
"""

import json
import os

import pytest
import requests
from conftest import (
    lab_get,
    listening_sockets,
    new_lab,
    run_notebook,
    submit,
    tensorboard_pids,
    wait_answering,
    wait_for,
    wait_notebook,
    wait_until,
)

pytestmark = pytest.mark.platform

PROBE = r"""
import json, os, socket, sys, urllib.parse, urllib.request
server = os.environ["KQI_SERVER"]
results = {}
for port in json.loads(os.environ["PORTS"]):
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
        results[port] = "reached"
    except OSError as e:
        results[port] = "refused: %s" % e
req = urllib.request.Request(server + "/api/v2/account", headers={"Authorization": "Bearer " + os.environ["KQI_TOKEN"]})
account = json.load(urllib.request.urlopen(req, timeout=30))["userName"]
json.dump({"ports": results, "account": account, "server_port": urllib.parse.urlsplit(server).port},
          open("/kqi/output/probe.json", "w"))
"""


def listening_ports(pid: int | str = "self") -> set[int]:
    """TCP ports listening in the network namespace of process ``pid`` (any address)."""
    return {port for port, _ in listening_sockets(pid)}


def executor_file(platform, key: str, name: str) -> dict:
    with open(os.path.join(platform.state_dir, "executor", key, name)) as f:
        return json.load(f)


def test_a_training_of_another_tenant_reaches_only_the_kqi_service(platform, lab, admin, new_tenant, new_user,
                                                                   git_endpoint):
    api_a = lab["api"]
    # A: a TensorBoard over a training's output, and a notebook with a running kernel
    trained = wait_for(api_a, submit(lab, "mkdir -p /kqi/output/logs")["id"])
    assert trained["status"] == "Completed"
    assert api_a.put(f"/training/{trained['id']}/tensorboard", {}).status_code == 200
    (board_pid,) = tensorboard_pids(trained["id"])[:1]
    nb = run_notebook(lab)
    nb = wait_notebook(api_a, nb["id"], ("Running",))
    wait_answering(platform, api_a, nb)
    base = platform.url + nb["url"].removesuffix("lab")
    kernel = requests.post(base + "api/kernels", json={"name": "python3"},
                           headers={"Authorization": f"token {api_a.token}"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    notebook_pid = executor_file(platform, f"notebook-{nb['id']}", "running.json")["sandbox_pid"]
    # the one port of A's notebook on the host: its server's, relayed for the hub's proxy
    (server_port,) = [f["port"] for f in executor_file(platform, f"notebook-{nb['id']}", "spec.json")["forwards"]
                      if f["direction"] == "in"]
    kernel_ports = wait_until(lambda: (p := listening_ports(notebook_pid)) and len(p) >= 6 and p, 60,
                              "the kernel's ZMQ ports to listen")
    board_ports = listening_ports(board_pid)
    host_ports = listening_ports()
    assert board_ports and kernel_ports and host_ports
    # A's servers listen in namespaces of their own: none of their sockets is one of the host's
    assert not (listening_sockets(notebook_pid) | listening_sockets(board_pid)) & listening_sockets()
    assert server_port in kernel_ports and server_port in host_ports  # relayed there for the hub's proxy

    # B: a training that tries them all
    lab_b = new_lab(platform, new_tenant, new_user, git_endpoint)
    targets = sorted(host_ports | kernel_ports | board_ports)
    run = submit(lab_b, 'python3 -c "$PROBE"', options={"PROBE": PROBE, "PORTS": json.dumps(targets)})
    done = wait_for(lab_b["api"], run["id"])
    assert done["status"] == "Completed", lab_b["api"].get(f"/training/{run['id']}/log").text
    listing = lab_b["api"].get(f"/training/{run['id']}/container-files", params={"withUrl": "true"}).json()
    (probe_file,) = [f for f in listing["files"] if f["fileName"] == "probe.json"]
    probe = requests.get(probe_file["url"], timeout=30).json()

    assert probe["account"] == lab_b["user"]["name"]  # the kqi service is reachable, with the run's token
    reached = sorted(int(p) for p, result in probe["ports"].items() if result == "reached")
    assert reached == [probe["server_port"]], probe["ports"]  # and nothing else: not A's, not the host's
    print(f"ports tried from tenant B's training: {len(targets)}, reached: {reached} (the proxy, KQI_SERVER)")

    assert lab_get(platform, api_a, nb, "api/status").status_code == 200  # A's notebook is untouched
    assert api_a.post(f"/notebook/{nb['id']}/halt").status_code == 200
