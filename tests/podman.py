"""A real Podman for the container tests: its Docker-compatible API service and a small local image.

``PodmanService(root)`` starts ``podman system service`` on a unix socket of
its own, with its own storage (``--root``/``--runroot``) and ``--runtime
runc`` (what Podman needs here; shared/FINDINGS.md). ``build_image`` imports a
busybox-static root filesystem with a marker file that exists only in the
image, so a test can tell a run inside the image from one on the host. No
image can be pulled from the internet here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from conftest import require_or_skip

IMAGE = "localhost/kqi-busybox:1"
MARKER = "/kqi-image-marker"
BUSYBOX_APPLETS = ("sh", "cat", "echo", "ls", "true", "false", "sleep", "env", "id", "pwd", "mkdir", "cp", "touch",
                   "head", "wc", "seq", "dd", "yes", "tr", "kill", "ps", "printf", "test", "[", "nc", "grep")


def require_podman() -> None:
    for tool in ("podman", "runc", "busybox"):
        if shutil.which(tool) is None:
            require_or_skip(f"{tool} missing (apt install podman runc busybox-static)")


class PodmanService:
    def __init__(self, root: str, registries_conf: str | None = None):
        self.root = root
        self.env = dict(os.environ, **({"CONTAINERS_REGISTRIES_CONF": registries_conf} if registries_conf else {}))
        self.socket = os.path.join(root, "podman.sock")
        self.url = f"unix://{self.socket}"
        self.flags = ["--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run"),
                      "--runtime", "runc"]
        self.process: subprocess.Popen | None = None

    def podman(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *self.flags, *args], check=True, capture_output=True, **kwargs)

    def start(self) -> PodmanService:
        os.makedirs(self.root, exist_ok=True)
        self.process = subprocess.Popen(["podman", *self.flags, "system", "service", "--time=0", self.url],
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "service.log"),
                                                                               "wb"))
        deadline = time.monotonic() + 20
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("podman system service did not start: "
                                   + open(os.path.join(self.root, "service.log")).read())
            time.sleep(0.05)
        return self

    def build_image(self, name: str = IMAGE) -> str:
        rootfs = os.path.join(self.root, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
        os.makedirs(os.path.join(rootfs, "tmp"), exist_ok=True)
        shutil.copy(shutil.which("busybox"), os.path.join(rootfs, "bin", "busybox"))
        for applet in BUSYBOX_APPLETS:
            link = os.path.join(rootfs, "bin", applet)
            if not os.path.lexists(link):
                os.symlink("busybox", link)
        with open(rootfs + MARKER, "w") as f:
            f.write("only in the image\n")
        archive = os.path.join(self.root, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", archive, "."], check=True)
        self.podman("import", archive, name)
        return name

    def push(self, image: str, target: str, user: str, password: str) -> None:
        """Push a local image to a registry (plain HTTP on loopback)."""
        self.podman("push", "--tls-verify=false", "--creds", f"{user}:{password}", image, target)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        # containers of the tests go with the storage
        subprocess.run(["podman", *self.flags, "rm", "-af", "-t", "0"], capture_output=True)
