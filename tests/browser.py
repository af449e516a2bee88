"""Helpers of the browser tests: a JupyterLab with our extensions, and Debian's chromium.

``start_jupyterlab()`` runs ``jupyter lab`` from the project's venv on a free
loopback port, with the kqi server extension enabled and the prebuilt lab
extension (``kqi_services/labextension``) on its extension path, pointed at a
kqi service by ``KQI_SERVER``/``KQI_TOKEN`` as a platform notebook is.

``kqi_panel()`` opens one of our sidebar panels in a loaded lab.

``chromium()`` launches ``/usr/bin/chromium`` through Playwright (no browser
download). ``same_origin_service()`` makes the page see the kqi service at
its own origin (``/services/kqi/…``), as it does behind the hub's proxy: the
server extension asks for upload and download URLs on the page's host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import requests
from conftest import REPO, free_port_block, require_or_skip

LAB_ASSETS = os.path.join(REPO, "kqi_services", "labextension")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@dataclass
class JupyterLab:
    url: str
    token: str
    process: subprocess.Popen
    log_path: str

    @property
    def lab_url(self) -> str:
        return f"{self.url}/lab?token={self.token}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_jupyterlab(workdir: str, kqi_server: str, kqi_token: str, timeout: float = 60,
                     extra_config: str = "") -> JupyterLab:
    """A JupyterLab on a free port whose panels reach ``kqi_server`` with ``kqi_token``.

    ``extra_config`` is appended to its ``jupyter_server_config.py``.
    """
    if not os.path.exists(os.path.join(LAB_ASSETS, "static", "style.js")):
        require_or_skip("the lab extension is not built (run 'make setup')")
    root = os.path.join(workdir, "root")
    extensions = os.path.join(workdir, "labextensions")
    os.makedirs(root, exist_ok=True)
    os.makedirs(extensions, exist_ok=True)
    link = os.path.join(extensions, "kqi-hub")
    if not os.path.exists(link):
        os.symlink(LAB_ASSETS, link)
    config = os.path.join(workdir, "jupyter_server_config.py")
    with open(config, "w") as f:
        f.write("c.ServerApp.jpserver_extensions = {'kqi_services': True}\n"
                f"c.LabApp.extra_labextensions_path = [{extensions!r}]\n"
                "c.LabApp.news_url = None\n"
                "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n" + extra_config)
    port = free_port_block(1)
    token = os.urandom(12).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KQI_", "JUPYTERHUB_", "JUPYTER_"))}
    env.update(KQI_SERVER=kqi_server, KQI_TOKEN=kqi_token, HOME=workdir,
               JUPYTER_CONFIG_DIR=os.path.join(workdir, "config"), JUPYTER_RUNTIME_DIR=os.path.join(workdir, "rt"),
               JUPYTERLAB_SETTINGS_DIR=os.path.join(workdir, "settings"),
               JUPYTERLAB_WORKSPACES_DIR=os.path.join(workdir, "workspaces"))
    log_path = os.path.join(workdir, "jupyterlab.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser", "--allow-root",
             f"--config={config}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{lab.log()[-4000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{lab.url}/api/status", params={"token": token}, timeout=2).status_code == 200:
                return lab
        time.sleep(0.3)
    lab.stop()
    raise RuntimeError(f"jupyter lab did not come up:\n{lab.log()[-4000:]}")


def chromium(playwright, extra_args=()):
    """Debian's chromium, headless, through Playwright."""
    executable = shutil.which("chromium")
    if not executable:
        require_or_skip("chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS + list(extra_args))


def kqi_panel(page, label: str, timeout: float = 60_000):
    """The KQI sidebar panel ``label`` (Data, Datasets, Trainings, Notebooks) of the lab in ``page``, opened."""
    from playwright.sync_api import expect

    tab = page.locator(f'.lm-TabBar-tab[title="KQI {label}"]')
    tab.wait_for(timeout=timeout)
    panel = page.locator(f"#kqi-{label.lower()}")
    if not panel.is_visible():
        tab.click()
    expect(panel).to_be_visible()
    return panel


def same_origin_service(page, lab: JupyterLab, platform_url: str, fail_parts: int = 0) -> list[str]:
    """Serve ``{lab}/services/kqi/…`` from the platform, as the hub's proxy does for notebooks.

    The first ``fail_parts`` upload-part PUTs are cut off (to see retries).
    Returns the list of part URLs that were cut off.
    """
    cut: list[str] = []

    def forward(route):
        url = route.request.url
        if "/storage/parts/" in url and route.request.method == "PUT" and len(cut) < fail_parts:
            cut.append(url)
            route.abort("connectionreset")
            return
        route.continue_(url=platform_url + url[len(lab.url):])

    page.route(f"{lab.url}/services/kqi/**", forward)
    return cut
