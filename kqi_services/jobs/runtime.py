"""The runtime contract of a run (DESIGN.md): its /kqi paths and its environment, as pure functions.

| path | content |
|---|---|
| /kqi/git | the model repository at the resolved commit; the working directory |
| /kqi/input | the dataset, read-only |
| /kqi/output | results |
| /kqi/attach | files attached to the run |
| /kqi/parent (/kqi/parent/{id} for several) | read-only outputs of the parent run(s) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..executor.netns import PortForward
from .kinds import JobKind

WORKDIR = "/kqi/git"


@dataclass(frozen=True)
class RunPaths:
    """Where a run's pieces live on the host, under the runs directory of the state dir."""

    root: str

    @classmethod
    def of(cls, runs_dir: str, kind: JobKind, run_id: int) -> RunPaths:
        return cls(os.path.join(runs_dir, kind.run_key(run_id)))

    @property
    def git(self) -> str:
        return os.path.join(self.root, "git")

    @property
    def input(self) -> str:
        return os.path.join(self.root, "input")

    @property
    def output(self) -> str:
        return os.path.join(self.root, "output")

    @property
    def attach(self) -> str:
        return os.path.join(self.root, "attach")


def run_mounts(paths: RunPaths, parent_outputs: list[tuple[int, str]]) -> list[tuple[str, str, bool]]:
    """(host path, target, read-only) of every /kqi mount."""
    mounts = [
        (paths.git, WORKDIR, False),
        (paths.input, "/kqi/input", True),
        (paths.output, "/kqi/output", False),
        (paths.attach, "/kqi/attach", True),
    ]
    if len(parent_outputs) == 1:
        mounts.append((parent_outputs[0][1], "/kqi/parent", True))
    else:
        mounts += [(output, f"/kqi/parent/{pid}", True) for pid, output in parent_outputs]
    return mounts


def run_environment(kind: JobKind, run_id: int, *, user_options: dict[str, str], dataset_id: int | None,
                    parent_ids: list[int], repository_url: str, commit: str, git_token: str | None,
                    server_url: str, run_token: str, entry_point: str, zip_output: bool,
                    gpu_ids: list[int], proxies: dict[str, str] | None = None,
                    kind_variables: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of the guide's table: the host's proxies, then user options (a user's proxy wins), then the fixed ones.

    ``kind_variables`` are a kind's own fixed ones (a preprocessing's ``PREPROCESSING_ID``, ``DATA_ID``…; see
    ``preprocessing_variables``), set last.
    """
    env = {"PYTHONUNBUFFERED": "1", **(proxies or {}), **user_options}
    visible = ",".join(str(i) for i in gpu_ids) if gpu_ids else "none"
    env.update({
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "COLUMNS": "1000",
        kind.id_variable: str(run_id),
        "DATASET_ID": "" if dataset_id is None else str(dataset_id),
        "PARENT_ID": ",".join(str(p) for p in parent_ids),
        "MODEL_REPOSITORY": repository_url,
        "MODEL_REPOSITORY_TOKEN": git_token or "",
        "COMMIT_ID": commit,
        "KQI_SERVER": server_url,
        "KQI_TOKEN": run_token,
        "ENTRY_POINT": entry_point,
        "ZIP_FILE_CREATED": "true" if zip_output else "false",
        "CUDA_VISIBLE_DEVICES": "" if not gpu_ids else visible,
        "NVIDIA_VISIBLE_DEVICES": visible,
    })
    env.update(kind_variables or {})
    return env


def preprocessing_variables(preprocessing_id: int, data_id: int, data_name: str, tags: list[str]) -> dict[str, str]:
    """A preprocessing history's fixed variables, named as the original names them.

    ``PREPROCESSING_ID`` is the definition's id (not the history's), ``DATA_ID``
    and ``DATA_NAME`` the input data's, ``TAGS`` the tags its results get
    (``-t name -t tag…``, as the original passes them to ``kqi``).
    """
    return {"PREPROCESSING_ID": str(preprocessing_id), "DATA_ID": str(data_id), "DATA_NAME": data_name,
            "TAGS": " ".join(f"-t {t}" for t in tags)}


def proxy_variables(environ: dict[str, str]) -> dict[str, str]:
    """The host's proxy settings, passed on to runs as the guide says."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    return {n: environ[n] for n in names if environ.get(n)}


#: variables holding URLs of this machine's services that a run must reach from its own network:
#: the kqi service (``KQI_SERVER``) and, for a notebook, the hub's API and activity endpoint
REACHABLE_URL_VARIABLES = ("KQI_SERVER", "JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def run_forwards(env: dict[str, str], inbound_port: int | None = None) -> list[PortForward]:
    """The ports a run's network namespace is given: nothing of the host but these.

    Each loopback URL in ``REACHABLE_URL_VARIABLES`` gets an ``out`` forward of
    its port to the same address on the host (the run connects to
    ``127.0.0.1:PORT`` as the URL says); ``inbound_port`` (a notebook's server)
    is served on the host's ``127.0.0.1:PORT`` for the hub's proxy.
    """
    forwards, ports = [], set()
    for name in REACHABLE_URL_VARIABLES:
        url = urlsplit(env.get(name) or "")
        try:
            port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        except ValueError:
            continue
        if url.hostname in LOOPBACK_HOSTS and port and port not in ports:
            ports.add(port)
            host = "[::1]" if url.hostname == "::1" else "127.0.0.1"
            forwards.append(PortForward("out", port, f"{host}:{port}"))
    if inbound_port:
        forwards.append(PortForward("in", inbound_port, f"127.0.0.1:{inbound_port}"))
    return forwards


#: the registry service type whose images Docker names without a host (Docker Hub)
DOCKER_HUB = 2


def image_reference(image: str | None, tag: str | None, registry_host: str | None, registry_type: int | None) -> str:
    """The image a container executor pulls: ``{registry host[/project]}/{image}:{tag}``; Docker Hub's without a host.

    >>> image_reference("team/torch", "2", "registry.local:5000", 4)
    'registry.local:5000/team/torch:2'
    >>> image_reference("python", "3.11", "registry-1.docker.io", 2)
    'python:3.11'
    """
    if not image:
        return ""
    name = f"{image}:{tag or 'latest'}"
    if not registry_host or registry_type == DOCKER_HUB:
        return name
    return f"{registry_host}/{name}"


def container_name(kind: str, name: str, run_id: int) -> str:
    """``{kind}-{name}-{id}`` (the guide's ``inference-{name}-{id}``), made a valid container name.

    >>> container_name("preprocessing", "Crop 画像", 12)
    'preprocessing-crop-12'
    """
    slug = "-".join(filter(None, "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower()).split("-")))
    return f"{kind}-{slug[:40]}-{run_id}" if slug else f"{kind}-{run_id}"
