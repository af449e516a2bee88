"""The container executor against a real Podman (its Docker API service): runs in their image, as users see them.

A file only the image has is visible to the run; the contract's mounts
(read-only where it says), cwd and environment; the exit code as status;
live log; memory limit → OOMKilled; halt → stopped with its grace; a new
executor (a restarted service) finds a running container by its label and
follows it to its end; a missing image is an error with the engine's reason;
cleanup removes the container. The container's spec is golden-tested,
GPUs' device requests included (no GPU here).
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import poll_until
from podman import IMAGE, MARKER, PodmanService, require_podman
from registry import PASSWORD as REGISTRY_PASSWORD
from registry import USER as REGISTRY_USER
from registry import Registry, require_registry

from kqi_services.executor.docker import DockerExecutor, container_config, device_requests
from kqi_services.executor.spec import Mount, RunSpec


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_registry()
    server = Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def podman(tmp_path_factory, registry):
    require_podman()
    service = PodmanService(str(tmp_path_factory.mktemp("podman")), registry.registries_conf()).start()
    service.build_image()
    for tag in ("1", "2"):
        service.push(IMAGE, f"{registry.host}/team/busybox:{tag}", REGISTRY_USER, REGISTRY_PASSWORD)
    yield service
    service.stop()


@pytest.fixture
def executor(podman, tmp_path):
    made = []

    def make() -> DockerExecutor:
        ex = DockerExecutor(str(tmp_path / "executor"), base_url=podman.url)
        made.append(ex)
        return ex

    yield make
    ex = made[0] if made else None
    if ex is not None:
        for run_id in ex.run_ids():
            ex.halt(run_id)
            poll_until(lambda r=run_id: ex.status(r).phase in ("finished", "lost"), 30, what=f"{run_id} to end")
            ex.cleanup(run_id)


def spec_of(tmp_path, run_id, command, **kw) -> RunSpec:
    dirs = {name: tmp_path / run_id / name for name in ("git", "input", "output", "attach")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    (dirs["input"] / "x.csv").write_text("a,b\n")
    mounts = [Mount(str(dirs["git"]), "/kqi/git"), Mount(str(dirs["input"]), "/kqi/input", True),
              Mount(str(dirs["output"]), "/kqi/output"), Mount(str(dirs["attach"]), "/kqi/attach", True)]
    return RunSpec(run_id=run_id, command=command, mounts=mounts, image=IMAGE, display_name=f"{run_id}-name",
                   env={"TRAINING_ID": "7"}, **kw)


def finished(ex, run_id, timeout=60):
    return poll_until(lambda: (s := ex.status(run_id)).phase == "finished" and s, timeout, what=f"{run_id} to end")


def test_a_run_sees_its_image_and_the_kqi_contract(executor, tmp_path):
    ex = executor()
    spec = spec_of(tmp_path, "training-1", f"cat {MARKER}; pwd; echo id=$TRAINING_ID; cat /kqi/input/x.csv; "
                                            "echo result > /kqi/output/r.txt; "
                                            "touch /kqi/input/w 2>/dev/null && echo input-writable || echo input-ro; "
                                            "echo to-stderr >&2; exit 3")
    handle = ex.start(spec)
    assert handle.backend == "docker" and handle.ref
    state = finished(ex, "training-1")
    assert state.exit_code == 3 and not state.oom_killed and not state.halted and not state.error
    log = open(ex.log_path("training-1")).read()
    assert "only in the image\n/kqi/git\nid=7\na,b\ninput-ro" in log and "to-stderr" in log, log
    assert (tmp_path / "training-1" / "output" / "r.txt").read_text() == "result\n"
    container = ex.client.containers.get("training-1-name")  # named as the guide names it
    assert container.labels["kqi.run-id"] == "training-1"
    assert "registry_auth" not in open(os.path.join(ex.run_dir("training-1"), "spec.json")).read().replace(
        '"registry_auth": null', "")
    ex.cleanup("training-1")
    assert not ex.client.containers.list(all=True, filters={"label": "kqi.run-id=training-1"})


def test_memory_limit_halt_and_reattach(executor, tmp_path):
    ex = executor()
    ex.start(spec_of(tmp_path, "training-2", "x=a; while true; do x=$x$x; done", memory_bytes=32 * 1024 * 1024))
    assert finished(ex, "training-2").oom_killed

    ex.start(spec_of(tmp_path, "training-3", "echo started; sleep 60", halt_grace_s=1))
    poll_until(lambda: ex.status("training-3").phase == "running", 30, what="running")
    poll_until(lambda: "started" in open(ex.log_path("training-3")).read(), 10, what="the live log")
    # a restarted service: a new executor finds the container by its label and follows it
    again = DockerExecutor(ex.runs_root, base_url=ex._base_url)
    assert "training-3" in again.running_runs()
    start = time.monotonic()
    assert again.halt("training-3") is True
    state = finished(again, "training-3")
    assert state.halted and not state.oom_killed and time.monotonic() - start < 15
    assert "started" in open(again.log_path("training-3")).read()


def test_a_missing_image_is_an_error_with_the_reason(executor, tmp_path):
    ex = executor()
    spec = spec_of(tmp_path, "training-4", "true")
    spec.image = "localhost:1/nothing/here:1"
    ex.start(spec)
    state = ex.status("training-4")
    assert state.phase == "finished" and state.error.startswith("The container could not be started: "), state
    assert "localhost:1/nothing/here" in state.error, state  # the engine's own reason names the image


def test_container_config_is_what_the_contract_says():
    spec = RunSpec(run_id="inference-9", command="python -u infer.py", image="registry.local:5000/team/torch:2",
                   display_name="inference-resnet-9", env={"INFERENCE_ID": "9"}, cpu=1.5, memory_bytes=2 * 1024**3,
                   pids_max=512, gpus=[1, 3],
                   mounts=[Mount("/h/git", "/kqi/git"), Mount("/h/in", "/kqi/input"), Mount("/h/out", "/kqi/output"),
                           Mount("/h/p", "/kqi/parent", False)])
    config = container_config(spec)
    assert config["name"] == "inference-resnet-9" and config["image"] == "registry.local:5000/team/torch:2"
    assert config["command"] == ["/bin/sh", "-c", "python -u infer.py"] and config["working_dir"] == "/kqi/git"
    assert config["user"] == "0:0" and config["labels"] == {"kqi.run-id": "inference-9", "kqi.managed": "true"}
    assert container_config(spec, "abc")["labels"]["kqi.owner"] == "abc"
    assert config["volumes"] == {"/h/git": {"bind": "/kqi/git", "mode": "rw"}, "/h/in": {"bind": "/kqi/input",
                                                                                         "mode": "ro"},
                                 "/h/out": {"bind": "/kqi/output", "mode": "rw"},
                                 "/h/p": {"bind": "/kqi/parent", "mode": "ro"}}
    assert (config["nano_cpus"], config["mem_limit"], config["memswap_limit"], config["pids_limit"]) == (
        1_500_000_000, 2 * 1024**3, 2 * 1024**3, 512)
    assert config["device_requests"] == [{"Driver": "nvidia", "DeviceIDs": ["1", "3"], "Capabilities": [["gpu"]]}]
    assert config["environment"]["INFERENCE_ID"] == "9" and config["environment"]["HOME"] == "/root"
    assert "PATH" not in config["environment"]  # the image's own PATH (a conda image's /opt/conda/bin) stays
    assert device_requests([]) == []
    assert config["network_mode"] == "none"  # private: start() joins it to a namespace of its own
    assert container_config(RunSpec(run_id="t-1", command="true", image="i:1", network="host"))["network_mode"] == "host"


def test_the_platform_runs_a_training_in_its_image(podman, start_platform, tmp_path):
    """KQI_EXECUTOR=docker: a training of the image runs in it, named and ended as a user sees it."""
    from conftest import make_lab, submit, wait_for

    platform = start_platform(extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    lab = make_lab(platform, tmp_path / "lab")
    image = {"image": "localhost/kqi-busybox", "tag": "1"}
    run = submit(lab, f"cat {MARKER}; ls /kqi/input/training; echo $TRAINING_ID; echo w > /kqi/output/m.txt",
                 name="in-image", containerImage=image)
    done = wait_for(lab["api"], run["id"])
    assert done["status"] == "Completed", done
    log = lab["api"].get(f"/training/{run['id']}/log").text
    assert f"only in the image\n{lab['data']['id']}\n{run['id']}" in log, log
    assert "is recorded, not used" not in log
    assert (done["imageUsed"], done["imageNote"]) == (True, None)
    files = lab["api"].get(f"/training/{run['id']}/container-files").json()
    assert [f["fileName"] for f in files["files"]] == ["m.txt"]
    names = [c.name for c in podman_client(podman).containers.list(all=True)]
    assert f"training-in-image-{run['id']}" in names, names
    failing = wait_for(lab["api"], submit(lab, "exit 4", containerImage=image)["id"])
    assert failing["status"] == "Failed"
    missing = wait_for(lab["api"], submit(lab, "true", containerImage={"image": "localhost/absent", "tag": "1"})["id"])
    assert missing["status"] == "Error" and "localhost/absent:1" in missing["conditionNote"], missing


def podman_client(podman):
    import docker

    return docker.DockerClient(base_url=podman.url)


def test_the_sandbox_says_plainly_that_the_image_is_not_used(platform, lab):
    """The embedded default (the local sandbox) records a run's image and says in its log that it is not used."""
    from conftest import submit, wait_for

    run = submit(lab, "echo ran")  # python:3.11, as conftest's trainings name it
    assert wait_for(lab["api"], run["id"])["status"] == "Completed"
    log = lab["api"].get(f"/training/{run['id']}/log").text
    assert log.startswith("[kqi] this platform runs jobs in its own environment: the image python:3.11 is recorded, "
                          "not used (set KQI_EXECUTOR=docker to run jobs in their images)\n"), log
    assert log.endswith("ran\n")
    details = lab["api"].get(f"/training/{run['id']}").json()
    assert details["imageUsed"] is False and "the image python:3.11 is recorded, not used" in details["imageNote"]


def test_a_container_reaches_its_forwards_and_nothing_else_of_the_host(executor, tmp_path):
    """The attack: a run probes the host's loopback. Only its forwarded port (KQI_SERVER's) answers, also after
    a restart of the executor (the relay is made again in the running container's namespace)."""
    import http.server
    import threading

    from conftest import free_port_block

    from kqi_services.executor.netns import PortForward

    servers = []
    for body in (b"kqi-service", b"another-tenants-kernel"):
        class Handler(http.server.BaseHTTPRequestHandler):
            answer = body

            def do_GET(self):  # noqa: N802 - http.server's name
                self.send_response(200)
                self.end_headers()
                self.wfile.write(self.answer)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port_block(1)), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    allowed, forbidden = (s.server_address[1] for s in servers)
    # busybox's static wget cannot resolve here; nc's stdin stays open a while, else it may quit before the answer
    get = "(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 2) | nc -w 3 127.0.0.1"
    probe = (f"{get} {allowed}; echo; "
             f"{get} {forbidden} | grep -q another && echo REACHED || echo refused; ")
    ex = executor()
    spec = spec_of(tmp_path, "training-5", "echo first; " + probe + "sleep 2; echo second; " + probe,
                   forwards=[PortForward("out", allowed, f"127.0.0.1:{allowed}")])
    ex.start(spec)
    poll_until(lambda: "refused" in open(ex.log_path("training-5")).read(), 30, what="the first probe")
    again = DockerExecutor(ex.runs_root, base_url=ex._base_url)
    ex._close_relay("training-5")  # the old service's relay is gone with it
    assert "training-5" in again.running_runs()
    state = finished(again, "training-5")
    assert state.exit_code == 0
    log = open(again.log_path("training-5")).read()
    # (this test process still holds the old executor's log follower: lines may be doubled)
    assert "REACHED" not in log and "refused" in log.split("second")[-1], log
    assert "kqi-service" in log.split("first")[-1].split("second")[0] and "kqi-service" in log.split("second")[-1], log
    for server in servers:
        server.shutdown()


def test_images_are_pulled_from_the_tenants_registry_with_the_users_token(podman, registry, start_platform, tmp_path):
    """A private registry endpoint: the run's image is pulled with the user's registry login (the pull in its
    log); a wrong token ends the run as Error with the registry's reason; the registry's images and tags list."""
    from conftest import make_lab, submit, wait_for

    platform = start_platform(extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    lab = make_lab(platform, tmp_path / "lab")
    admin, api = lab["admin"], lab["api"]
    r = admin.post("/admin/registry/endpoints", {"name": "team-registry", "host": "127.0.0.1",
                                                 "portNo": registry.port, "serviceType": 4,
                                                 "apiUrl": registry.url + "/", "registryUrl": registry.url + "/"})
    assert r.status_code == 201, r.text
    reg_id = r.json()["id"]
    r = admin.put(f"/admin/tenants/{lab['tenant']['id']}", {
        "displayName": lab["tenant"]["displayName"], "gitIds": [1, lab["git"]["id"]], "defaultGitId": lab["git"]["id"],
        "registryIds": [1, reg_id], "storageId": 1})
    assert r.status_code == 200, r.text
    # without a token the registry says no: the listing and a pull both tell the user
    r = api.get(f"/registries/{reg_id}/images")
    assert r.status_code == 400 and "refused" in r.json()["message"], r.text
    assert api.put("/account/registries", {"id": reg_id, "userName": REGISTRY_USER,
                                           "password": REGISTRY_PASSWORD}).status_code == 200
    assert api.get(f"/registries/{reg_id}/images").json() == ["team/busybox"]
    assert api.get(f"/registries/{reg_id}/images/team/busybox/tags").json() == ["1", "2"]
    assert api.get(f"/registries/{reg_id}/images/team/nothing/tags").status_code == 404
    assert api.get("/registries/999999/images").status_code == 404

    image = {"registryId": reg_id, "image": "team/busybox", "tag": "1"}
    run = wait_for(api, submit(lab, f"cat {MARKER}", containerImage=image)["id"])
    assert run["status"] == "Completed", run
    log = api.get(f"/training/{run['id']}/log").text
    assert f"[kqi] pulling {registry.host}/team/busybox:1" in log and "only in the image" in log, log
    assert REGISTRY_PASSWORD not in log
    # the pull, layer by layer, in the run's details and events (the panels show it while it runs)
    pull = run["imagePull"]
    assert pull["done"] and pull["error"] is None and pull["layerCount"] >= 1, pull
    assert pull["layersDone"] == pull["layerCount"] and pull["message"] == f"Pulled image {registry.host}/team/busybox:1"
    events = api.get(f"/training/{run['id']}/events").json()
    assert events[0]["message"] == pull["message"] and events[0]["isError"] is False, events

    api.put("/account/registries", {"id": reg_id, "userName": REGISTRY_USER, "password": "wrong-token"})
    refused = wait_for(api, submit(lab, "true", containerImage={**image, "tag": "2"})["id"])
    assert refused["status"] == "Error" and "unauthorized" in refused["conditionNote"], refused
    assert refused["imagePull"]["error"] and "unauthorized" in refused["imagePull"]["message"], refused["imagePull"]
    assert api.get(f"/training/{refused['id']}/events").json()[0]["isError"] is True
    assert "wrong-token" not in refused["conditionNote"] and "wrong-token" not in platform.log()


def test_the_start_banner_says_who_runs_the_jobs(podman):
    from kqi_services.hub.banner import engine_version, executor_line

    assert engine_version(podman.url).endswith("4.3.1") or engine_version(podman.url)
    line = executor_line({"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    assert line.startswith("Jobs: in their container images, through ") and podman.url in line, line
    line = executor_line({"DOCKER_HOST": podman.url})
    assert "bubblewrap sandboxes" in line and "set KQI_EXECUTOR=docker" in line, line
    nowhere = "unix:///nonexistent/docker.sock"
    line = executor_line({"KQI_EXECUTOR": "docker", "DOCKER_HOST": nowhere})
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in line, line
    assert executor_line({"DOCKER_HOST": nowhere}, probe=lambda url: None).endswith("(run images are recorded, "
                                                                                     "not used)")


def test_a_killed_service_reattaches_to_a_running_container(podman, start_platform, tmp_path):
    """The service is killed while a training runs in its container; the restarted service follows it to its end,
    its log again, and its relay: the container reaches KQI_SERVER after the restart too."""
    import signal

    from conftest import _process_tree, alive, make_lab, service_pid, submit, wait_for, wait_until
    from test_job_durability import answering

    platform = start_platform(extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    lab = make_lab(platform, tmp_path / "lab")
    api = lab["api"]
    ask = ('p=${KQI_SERVER#http://}; p=${p%%/*}; p=${p#*:}; '
           '(printf "GET /services/kqi/api/v2/version HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n"; sleep 3) '
           '| nc -w 5 127.0.0.1 $p | head -1')  # nc's stdin open a while: else it may quit before the answer
    # the second ask waits for the restarted service (the hub restarts it after a few seconds)
    again = f'for i in $(seq 1 60); do out=$({ask}); case "$out" in *200*) echo "again $out"; break;; esac; sleep 1; done'
    run = submit(lab, f"echo started; {ask}; sleep 3; {again}; echo done",
                 containerImage={"image": "localhost/kqi-busybox", "tag": "1"})
    log_of = lambda: api.get(f"/training/{run['id']}/log").text  # noqa: E731
    wait_until(lambda: "200 OK" in log_of(), 30, "the container to reach KQI_SERVER")
    old = service_pid(platform)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not alive(old), 5, "the service to die")
    wait_until(lambda: answering(api, run["id"]), 45, "the restarted service to answer")
    platform.children = _process_tree(platform.process.pid)
    done = wait_for(api, run["id"], timeout=60)
    assert done["status"] == "Completed", done
    log = api.get(f"/training/{run['id']}/log").text
    # the log is fetched again from the engine after the restart (from the start, nothing lost), and goes on to
    # the end; the relay is made again in the container's namespace: KQI_SERVER answers it after the restart
    assert log.startswith("started\nHTTP/1.1 200 OK") and "again HTTP/1.1 200 OK" in log and log.endswith("done\n"), log
    assert f"re-attached to training-{run['id']}" in platform.log()
