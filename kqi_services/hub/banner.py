"""The start banner's line on who runs the jobs: the local sandbox, or a Docker engine (and whether it answers).

``make run`` prints it, so a person sees at once whether runs use their
images: with ``KQI_EXECUTOR=docker`` the engine at ``DOCKER_HOST`` is asked
for its version; with the default sandbox, a reachable engine (``DOCKER_HOST``
or the usual sockets) is pointed out.
"""

from __future__ import annotations

import os

#: where Docker and rootful Podman listen by default
USUAL_SOCKETS = ("unix:///var/run/docker.sock", "unix:///run/podman/podman.sock")


def engine_version(url: str, timeout: float = 3) -> str | None:
    """``Docker 27.1`` / ``Podman Engine 4.3.1`` of the engine at ``url``, None when nothing answers there."""
    try:
        import docker

        client = docker.DockerClient(base_url=url, timeout=timeout)
        try:
            version = client.version()
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means no engine answers there
        return None
    name = next((c.get("Name") for c in version.get("Components", []) if c.get("Name")), "Docker Engine")
    return f"{name} {version.get('Version', '?')}"


def executor_line(environ: dict[str, str], probe=engine_version) -> str:
    """The banner's line for these settings (``probe(url)`` asks an engine for its version)."""
    executor = environ.get("KQI_EXECUTOR") or "local"
    url = environ.get("DOCKER_HOST")
    if executor == "docker":
        target = url or "the Docker SDK's default (unix:///var/run/docker.sock)"
        version = probe(url or USUAL_SOCKETS[0])
        if version is None:
            return (f"Jobs: KQI_EXECUTOR=docker, but no Docker engine answers at {target}: "
                    "runs will end as Error until one does (set DOCKER_HOST)")
        return f"Jobs: in their container images, through {version} at {target}"
    if executor != "local":
        return f"Jobs: the executor {executor}"
    line = "Jobs: in bubblewrap sandboxes on this host, in its own environment (run images are recorded, not used)"
    for candidate in ([url] if url else [u for u in USUAL_SOCKETS if os.path.exists(u[len("unix://"):])]):
        version = probe(candidate)
        if version:
            return f"{line}; {version} answers at {candidate}: set KQI_EXECUTOR=docker to run jobs in their images"
    return line
