"""A real image registry for the container tests: Debian's ``docker-registry`` (the CNCF distribution
registry) on loopback, with htpasswd (bcrypt) auth and its storage in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import bcrypt
import requests
from conftest import free_port_block, require_or_skip

USER, PASSWORD = "kqi-pusher", "registry-secret-1"


def require_registry() -> None:
    if shutil.which("docker-registry") is None:
        require_or_skip("docker-registry missing (apt install docker-registry)")


class Registry:
    def __init__(self, root: str):
        self.root = root
        self.port = free_port_block(1)
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Registry:
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "htpasswd"), "w") as f:
            f.write(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
        config = os.path.join(self.root, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {self.root}/data\n"
                    f"http:\n  addr: {self.host}\nauth:\n  htpasswd:\n    realm: kqi\n"
                    f"    path: {self.root}/htpasswd\n")
        self.process = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.root, "registry.log"), "wb"))
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code == 401:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("docker-registry did not start: " + open(os.path.join(self.root, "registry.log")).read())
            time.sleep(0.05)

    def registries_conf(self) -> str:
        """A registries.conf for Podman that lets it speak plain HTTP to this registry (it is on loopback)."""
        path = os.path.join(self.root, "registries.conf")
        with open(path, "w") as f:
            f.write(f'[[registry]]\nlocation = "{self.host}"\ninsecure = true\n')
        return path

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
