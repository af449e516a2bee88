"""The container executor: each run in its own image, over the Docker Engine API (Docker, or Podman's service).

``KQI_EXECUTOR=docker`` selects it; the engine's address comes from
``DOCKER_HOST`` as the Docker SDK reads it (``unix:///run/podman/podman.sock``,
``tcp://…``). A run is one container:

* named ``{kind}-{name}-{id}`` (``RunSpec.display_name``, the guide's
  ``inference-{name}-{id}``) and labelled ``kqi.run-id={kind}-{id}``,
  ``kqi.managed=true`` and ``kqi.owner`` (its platform: run ids repeat across
  platforms on one engine), so a restarted service finds its containers again by
  label: running ones are followed, finished ones collected, nothing is left
  running unowned;
* the spec's image (pulled when missing, with the spec's registry login; the
  pull's progress goes to the run's log; a missing image or a refused login
  ends the run as Error with the registry's reason);
* ``/bin/sh -c COMMAND`` as root in the container, cwd ``/kqi/git``, the
  spec's environment, its mounts as binds (read-only where the contract says),
  CPU (``nano_cpus``), memory (swap included) and pids limits, and only the
  assigned GPUs (an NVIDIA device request with their ids);
* stdout and stderr followed into the run's log file while it runs (the
  engine's live log reads that file), the exit code as its status,
  ``OOMKilled`` from the container's state, and a halt as ``stop`` (SIGTERM,
  then SIGKILL after the grace period).

Network, as the local executor's (``netns.py``): a ``private`` run's container
joins a network namespace of its own that holds only loopback
(``network_mode=ns:…``), and a relay thread of this executor passes on
exactly the spec's forwards (``KQI_SERVER``'s port, a notebook's); no other
port of the host or of another run is reachable. After a service restart
the relay is made again in the running container's namespace (found from
its PID). ``host`` shares the host's network, ``none`` gives loopback only;
``outside`` is not offered to containers yet (they get ``private``, and their
log says so). A private network needs root; elsewhere containers share the
host's network and their log says so.

What the executor keeps of a run is a directory under ``runs_root``: the spec
without secrets (``spec.json``), the log, and a ``halted`` marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from datetime import UTC, datetime

from .base import Executor, ExecutorError, RunActive, RunExists, RunHandle, RunNotFound, RunState
from .netns import NetworkUnavailable, PrivateNetwork, Relay, loopback_source
from .pull import PullRecorder, read_progress
from .spec import RunSpec

LABEL_RUN = "kqi.run-id"
LABEL_MANAGED = "kqi.managed"
#: which platform's executor made it (a hash of its state directory): run ids repeat across platforms
LABEL_OWNER = "kqi.owner"
#: what Podman needs here (shared/FINDINGS.md): lowered ulimits, else the runtime refuses to start
ULIMITS = (("nofile", 4096), ("nproc", 4096))
PULL_POLICIES = ("if-not-present", "always", "never")
#: the pull's progress in the run's directory (``pull.PullRecorder``), read by ``pull_progress``
PULL_FILE = "pull.json"


def device_requests(gpus: list[int]) -> list[dict]:
    """The Docker API's DeviceRequests for exactly these GPUs (none without GPUs)."""
    if not gpus:
        return []
    return [{"Driver": "nvidia", "DeviceIDs": [str(g) for g in gpus], "Capabilities": [["gpu"]]}]


def owner_label(runs_root: str) -> str:
    return hashlib.sha256(os.path.abspath(runs_root).encode()).hexdigest()[:16]


def container_config(spec: RunSpec, owner: str = "") -> dict:
    """The container a spec becomes, as keyword arguments of the SDK's ``containers.create`` (pure, golden-tested)."""
    env = {"HOME": "/root", **spec.env}  # the image's own PATH stays, unless the run sets one
    binds = {m.host_path: {"bind": m.target, "mode": "ro" if m.effective_read_only else "rw"} for m in spec.mounts}
    config = {
        "image": spec.image,
        "command": ["/bin/sh", "-c", spec.command],
        "name": spec.display_name or spec.run_id,
        "labels": {LABEL_RUN: spec.run_id, LABEL_MANAGED: "true", **({LABEL_OWNER: owner} if owner else {})},
        "working_dir": spec.workdir,
        "environment": env,
        "volumes": binds,
        "user": "0:0",
        "network_mode": "host" if spec.network == "host" else "none",  # private: set by start()
        "detach": True,
        "ulimits": [{"Name": n, "Soft": v, "Hard": v} for n, v in ULIMITS],
        "device_requests": device_requests(spec.gpus),
        "stop_signal": "SIGTERM",
    }
    if spec.cpu:
        config["nano_cpus"] = int(spec.cpu * 1e9)
    if spec.memory_bytes:
        config["mem_limit"] = spec.memory_bytes
        config["memswap_limit"] = spec.memory_bytes  # no swap beyond the limit, as the local executor
    if spec.pids_max:
        config["pids_limit"] = spec.pids_max
    return config


class DockerExecutor(Executor):
    """Runs specs as containers of a Docker Engine API; see the module docstring."""

    name = "docker"
    #: the engine hands this executor the run's image and the registry login to pull it with
    uses_images = True

    def __init__(self, runs_root: str, base_url: str | None = None, pull_policy: str | None = None,
                 client=None, **_ignored):
        pull_policy = pull_policy or os.environ.get("KQI_PULL_POLICY") or "if-not-present"
        if pull_policy not in PULL_POLICIES:
            raise ValueError(f"pull policy must be one of {', '.join(PULL_POLICIES)}")
        self.runs_root = os.path.abspath(runs_root)
        os.makedirs(self.runs_root, mode=0o700, exist_ok=True)
        self.pull_policy = pull_policy
        self.owner = owner_label(self.runs_root)
        self._client = client
        self._base_url = base_url
        self._followers: dict[str, threading.Thread | None] = {}  # None: being attached
        self._relays: dict[str, Relay] = {}
        self._collected: set[str] = set()  # finished runs whose log is complete
        self._lock = threading.Lock()

    # the engine's client ------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = (docker.DockerClient(base_url=self._base_url) if self._base_url
                            else docker.from_env())
        return self._client

    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.runs_root, run_id)

    def _existing(self, run_id: str) -> str:
        run_dir = self.run_dir(run_id)
        if not os.path.isfile(os.path.join(run_dir, "spec.json")):
            raise RunNotFound(run_id)
        return run_dir

    def _container(self, run_id: str):
        """The run's container, found by its label; None when it is gone."""
        import docker

        labels = [f"{LABEL_RUN}={run_id}", f"{LABEL_OWNER}={self.owner}"]
        for found in self.client.containers.list(all=True, filters={"label": labels}):
            try:
                found.reload()  # the list's summary holds no State object: inspect it
            except docker.errors.NotFound:
                continue
            return found
        return None

    # start ---------------------------------------------------------------------------------------
    def start(self, spec: RunSpec) -> RunHandle:
        spec.validate()
        if not spec.image:
            raise ExecutorError("the container executor needs the run's image")
        run_dir = self.run_dir(spec.run_id)
        try:
            os.mkdir(run_dir, 0o700)
        except FileExistsError:
            raise RunExists(spec.run_id) from None
        spec.run_dir = run_dir
        with open(os.path.join(run_dir, "spec.json"), "w") as f:
            json.dump({**spec.to_dict(), "registry_auth": None}, f)  # the login is never written down
        log_path = spec.log_file
        config = container_config(spec, self.owner)
        with self._lock:  # this process follows it from the start: status() must not attach a second follower
            self._followers[spec.run_id] = None
        try:
            with open(log_path, "ab") as log:
                self._ensure_image(spec, log)
                if spec.network in ("private", "outside"):
                    config["network_mode"] = self._private_network(spec, log)
            container = self._create(config)
            container.start()
        except Exception as e:  # noqa: BLE001 - the run ends as Error with the engine's or registry's reason
            self._close_relay(spec.run_id)
            with self._lock:
                self._followers.pop(spec.run_id, None)
            self._write_error(run_dir, _reason(e))
            return RunHandle(spec.run_id, self.name, "", log_path)
        self._follow(spec.run_id, container, log_path)
        return RunHandle(spec.run_id, self.name, container.id, log_path)

    def _create(self, config: dict):
        """Create the container; a name another platform on this engine holds gets this platform's suffix."""
        import docker

        try:
            return self.client.containers.create(**config)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise
            return self.client.containers.create(**{**config, "name": f"{config['name']}-{self.owner[:6]}"})

    def _ensure_image(self, spec: RunSpec, log) -> None:
        """Pull the image when the policy says so, its progress into the run's log."""
        import docker

        present = True
        try:
            self.client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            present = False
        if self.pull_policy == "never" or (present and self.pull_policy == "if-not-present"):
            if not present:
                raise ExecutorError(f"image {spec.image} is not present and the pull policy is 'never'")
            return
        repository, _, tag = spec.image.rpartition(":") if ":" in spec.image.split("/")[-1] else (spec.image, "", "")
        log.write(f"[kqi] pulling {spec.image}\n".encode())
        recorder = PullRecorder(os.path.join(self.run_dir(spec.run_id), PULL_FILE), spec.image)
        last: dict[str, str] = {}
        try:
            for event in self.client.api.pull(repository, tag=tag or "latest", stream=True, decode=True,
                                              auth_config=spec.registry_auth or None):
                if "error" in event:
                    raise ExecutorError(f"pulling {spec.image} failed: {event['error']}")
                recorder.take(event)
                status, layer = event.get("status", ""), event.get("id", "")
                line = f"[kqi] {layer + ': ' if layer else ''}{status} {event.get('progress', '')}".rstrip()
                if last.get(layer) != status:  # one line per layer and state, not per progress tick
                    log.write((line + "\n").encode())
                    log.flush()
                    last[layer] = status
        except Exception as e:
            recorder.end(_reason(e).removeprefix("The container could not be started: "))
            raise
        recorder.end()
        log.write(f"[kqi] pulled {spec.image}\n".encode())

    def _private_network(self, spec: RunSpec, log) -> str:
        """A namespace of the run's own with its forwards relayed; the container's network mode for it."""
        if spec.network == "outside":
            log.write(b"[kqi] the outside network is not given to containers yet: this run has a private one\n")
        try:
            network = PrivateNetwork.create()
        except NetworkUnavailable as e:
            log.write(f"[kqi] no private network here ({e}): the run shares the host's network\n".encode())
            return "host"
        self._relay(spec, network)
        return f"ns:{network.path()}"

    def _relay(self, spec: RunSpec, network: PrivateNetwork) -> None:
        relay = Relay(network, spec.forwards, loopback_source(spec.run_id))
        try:
            relay.bind()
        except OSError:
            relay.close()
            raise
        relay.start()
        with self._lock:
            self._relays[spec.run_id] = relay

    def _close_relay(self, run_id: str) -> None:
        with self._lock:
            relay = self._relays.pop(run_id, None)
        if relay is not None:
            relay.close()

    def _relay_again(self, run_id: str, container) -> None:
        """After a restart: relay the forwards into the running container's namespace again."""
        spec = self._spec(run_id)
        pid = container.attrs.get("State", {}).get("Pid")
        if spec.network not in ("private", "outside") or not pid or not spec.forwards:
            return
        host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        run_ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._relay(spec, PrivateNetwork(host_ns, run_ns))

    def _write_error(self, run_dir: str, reason: str) -> None:
        with open(os.path.join(run_dir, "error"), "w") as f:
            f.write(reason)

    def _follow(self, run_id: str, container, log_path: str, since_start: bool = False) -> None:
        """Copy the container's output into the log file while it runs (a thread per run)."""

        def copy() -> None:
            try:
                mode = "wb" if since_start else "ab"
                with open(log_path, mode, buffering=0) as log:
                    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                        log.write(chunk)
            except Exception:  # noqa: BLE001 - the container went away: its status says how
                pass

        thread = threading.Thread(target=copy, name=f"kqi-log-{run_id}", daemon=True)
        with self._lock:
            self._followers[run_id] = thread
        thread.start()

    # state --------------------------------------------------------------------------------------
    def status(self, run_id: str) -> RunState:
        run_dir = self._existing(run_id)
        halted = os.path.exists(os.path.join(run_dir, "halted"))
        error_file = os.path.join(run_dir, "error")
        if os.path.exists(error_file):
            with open(error_file) as f:
                return RunState(run_id, "finished", error=f.read(), halted=halted)
        container = self._container(run_id)
        if container is None:
            return RunState(run_id, "lost", halted=halted)
        state = container.attrs.get("State", {})
        status = state.get("Status", "")
        if status in ("created", "configured"):
            return RunState(run_id, "starting", halted=halted)
        if status in ("running", "paused", "restarting", "stopping"):
            self._attach(run_id, container)
            return RunState(run_id, "running", halted=halted, started_at=state.get("StartedAt"))
        exit_code = state.get("ExitCode")
        spec = self._spec(run_id)
        # Podman on cgroup v1 does not always set OOMKilled; a SIGKILL the platform did not send to a
        # memory-limited container is the kernel's OOM killer (nothing inside may SIGKILL its PID 1)
        oom = bool(state.get("OOMKilled")) or (exit_code == 137 and not halted and bool(spec.memory_bytes))
        self._join_follower(run_id, container)
        self._close_relay(run_id)
        return RunState(run_id, "finished", exit_code=exit_code, oom_killed=oom, halted=halted,
                        signal=exit_code - 128 if exit_code and exit_code > 128 else None,
                        started_at=state.get("StartedAt"), finished_at=state.get("FinishedAt"))

    def _join_follower(self, run_id: str, container) -> None:
        """The log is complete: the follower has copied the rest, or (it ended while no service followed it)
        the whole log is fetched from the engine once."""
        with self._lock:
            thread = self._followers.pop(run_id, None)
            collected = run_id in self._collected
            self._collected.add(run_id)
        if thread is not None:
            thread.join(timeout=5)
        elif not collected:
            with open(self._spec(run_id).log_file, "wb") as log:
                log.write(container.logs(stdout=True, stderr=True))

    def _spec(self, run_id: str) -> RunSpec:
        with open(os.path.join(self._existing(run_id), "spec.json")) as f:
            return RunSpec.from_dict(json.load(f))

    def halt(self, run_id: str) -> bool:
        run_dir = self._existing(run_id)
        container = self._container(run_id)
        if container is None or container.status not in ("running", "created", "paused"):
            return False
        with open(os.path.join(run_dir, "halted"), "w") as f:
            f.write(datetime.now(UTC).isoformat())
        container.stop(timeout=max(1, int(self._spec(run_id).halt_grace_s)))
        return True

    def run_ids(self) -> list[str]:
        return sorted(d for d in os.listdir(self.runs_root) if os.path.isfile(os.path.join(self.runs_root, d,
                                                                                            "spec.json")))

    def _attach(self, run_id: str, container) -> None:
        """A running container this process does not follow yet (the service restarted): follow its log again
        (from the start) and relay its forwards into its namespace again."""
        with self._lock:  # the engine asks from several threads: one of them re-attaches
            if run_id in self._followers or run_id in self._collected:
                return
            self._followers[run_id] = None
        self._follow(run_id, container, self._spec(run_id).log_file, since_start=True)
        self._relay_again(run_id, container)

    def running_runs(self) -> list[str]:
        """Runs still running (``status`` re-attaches to each)."""
        return [run_id for run_id in self.run_ids() if self.status(run_id).phase in ("starting", "running")]

    def log_path(self, run_id: str) -> str:
        return self._spec(run_id).log_file

    def pull_progress(self, run_id: str) -> dict | None:
        """The image pull of the run, while and after it pulls (``pull.PullProgress.to_dict``); None without one."""
        return read_progress(os.path.join(self.run_dir(run_id), PULL_FILE))

    def shell_target(self, run_id: str):
        """A shell into the running ``run_id``: a ``docker_shell.ContainerShellTarget`` (an exec in its container)."""
        from .docker_shell import ContainerShellTarget
        from .shell import ShellUnavailable, shell_environment

        phase = self.status(run_id).phase
        if phase != "running":
            raise ShellUnavailable(f"run {run_id} is {phase}, not running")
        container = self._container(run_id)
        state = container.attrs.get("State", {}) if container is not None else {}
        if state.get("Status") != "running":
            raise ShellUnavailable(f"the container of {run_id} is {state.get('Status') or 'gone'}, not running")
        spec = self._spec(run_id)
        return ContainerShellTarget(run_id, container.id, shell_environment(container_config(spec)["environment"]),
                                    spec.workdir, state.get("Pid") or 0, self.client)

    def cleanup(self, run_id: str) -> None:
        run_dir = self._existing(run_id)
        state = self.status(run_id)
        if state.phase in ("starting", "running"):
            raise RunActive(run_id)
        container = self._container(run_id)
        if container is not None:
            container.remove(force=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def _reason(error: Exception) -> str:
    """The engine's or registry's own words for why a run could not start."""
    explanation = getattr(error, "explanation", None)
    text = explanation.decode() if isinstance(explanation, bytes) else explanation or str(error)
    return f"The container could not be started: {text}"
