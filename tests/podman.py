"""A real Podman for the container tests: its Docker-compatible API service and a small local image.

``PodmanService(root)`` starts ``podman system service`` on a unix socket of
its own, with its own storage (``--root``/``--runroot``) and ``--runtime
runc`` (what Podman needs here; shared/FINDINGS.md). ``build_image`` imports a
busybox-static root filesystem with a marker file that exists only in the
image, so a test can tell a run inside the image from one on the host.
``build_python_image`` adds this test run's own Python interpreter (its
standard library and pip, no other package: no JupyterLab, no kqi) to such a
root, as a stand-in for a user's ``python:3.11`` image. No image can be
pulled from the internet here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time

from conftest import require_or_skip

IMAGE = "localhost/kqi-busybox:1"
PYTHON_IMAGE = "localhost/kqi-python:1"
MANYLINUX_LIBRARIES = ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libm.so.6", "libz.so.1",
                       "libstdc++.so.6", "libgcc_s.so.1", "libresolv.so.2", "libcrypt.so.1")
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
        # its cwd is the test's own: conmon leaves an "oom" file in the service's cwd when a container is OOM-killed
        self.process = subprocess.Popen(["podman", *self.flags, "system", "service", "--time=0", self.url],
                                        env=self.env, cwd=self.root, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "service.log"),
                                                                               "wb"))
        deadline = time.monotonic() + 20
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("podman system service did not start: "
                                   + open(os.path.join(self.root, "service.log")).read())
            time.sleep(0.05)
        return self

    def build_image(self, name: str = IMAGE) -> str:
        rootfs = self._busybox_root("rootfs")
        return self._import(rootfs, name)

    def _busybox_root(self, dirname: str) -> str:
        rootfs = os.path.join(self.root, dirname)
        for d in ("bin", "tmp", "root", "etc"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        shutil.copy(shutil.which("busybox"), os.path.join(rootfs, "bin", "busybox"))
        for applet in BUSYBOX_APPLETS:
            link = os.path.join(rootfs, "bin", applet)
            if not os.path.lexists(link):
                os.symlink("busybox", link)
        with open(rootfs + MARKER, "w") as f:
            f.write("only in the image\n")
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(rootfs, "etc", "group"), "w") as f:
            f.write("root:x:0:\n")
        return rootfs

    def _import(self, rootfs: str, name: str, *changes: str) -> str:
        archive = rootfs + ".tar"
        subprocess.run(["tar", "-C", rootfs, "-cf", archive, "."], check=True)
        self.podman("import", *(a for c in changes for a in ("--change", c)), archive, name)
        os.unlink(archive)
        return name

    def build_python_image(self, name: str = PYTHON_IMAGE) -> str:
        """busybox and this interpreter (standard library + pip only) at its own path, ``python3`` on PATH."""
        rootfs = self._busybox_root("pyrootfs")
        prefix = os.path.realpath(sys.base_prefix)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        stdlib = os.path.realpath(sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["stdlib"])
        skip = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo", "__pycache__",
                                      "site-packages", "dist-packages", "ensurepip", "lib2to3")
        shutil.copytree(stdlib, rootfs + stdlib, ignore=skip, symlinks=True)
        import pip  # the running environment's pip: the image's only package

        site = os.path.join(rootfs + stdlib, "site-packages")
        shutil.copytree(os.path.dirname(pip.__file__), os.path.join(site, "pip"), ignore=skip)
        interpreter = os.path.realpath(os.path.join(prefix, "bin", version))
        os.makedirs(os.path.dirname(rootfs + interpreter), exist_ok=True)
        shutil.copy2(interpreter, rootfs + interpreter)
        libraries = [interpreter] + [os.path.join(dp, f) for dp, _, fs in os.walk(stdlib + "/lib-dynload")
                                     for f in fs if f.endswith(".so")]
        # what every distribution's base image has and wheels with compiled parts load (manylinux's list)
        libc_dir = os.path.dirname(next(p for p in _shared_libraries([interpreter]) if "/libc.so" in p))
        base = [os.path.join(libc_dir, n) for n in MANYLINUX_LIBRARIES if os.path.exists(os.path.join(libc_dir, n))]
        for needed in _shared_libraries(libraries) | set(base) | _shared_libraries(base):
            target = rootfs + needed
            if not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.realpath(needed), target)
        os.makedirs(os.path.join(rootfs, "usr", "local", "bin"), exist_ok=True)
        os.symlink(interpreter, os.path.join(rootfs, "usr", "local", "bin", "python3"))
        bindir = os.path.dirname(interpreter)
        return self._import(rootfs, name, f"ENV PATH={bindir}:/usr/local/bin:/usr/bin:/bin")

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
        # Podman leaves its storage's overlay directory mounted on itself: pytest could not remove the temp dir
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for mount in sorted((m for m in mounts if m.startswith(self.root + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)


def _shared_libraries(binaries: list[str]) -> set[str]:
    """Every shared library (and the loader) the binaries load, by ldd."""
    found: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        found.update(re.findall(r"(/\S+\.so[\w.]*)", out))
    return found
