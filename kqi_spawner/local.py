"""The embedded notebook spawner: the kqi service's own executor runs the notebook's server.

The server runs in the same sandbox as jobs (bubblewrap or unshare, cgroup
limits, real ``/kqi/*`` paths, the host network so the proxy reaches its
port), under a supervisor of its own, so it survives a restart of the kqi
service and of the hub.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.spawner import Spawner
from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float

from .mixin import KqiServiceError, KqiSpawnerMixin


class KqiLocalSpawner(KqiSpawnerMixin, Spawner):
    """Notebooks on this host, admitted and run by the kqi service."""

    run_here = True

    ready_poll_seconds = Float(
        0.05, help="How often start() checks whether the started server answers yet."
    ).tag(config=True)

    async def start_prepared(self, state: dict):
        """Return once the server answers: the hub's own readiness check, with its growing
        back-off, then succeeds at once instead of up to seconds after the server is up."""
        ip = self.ip or "127.0.0.1"
        url = f"http://{ip}:{self.port}" + url_path_join(self.server.base_url if self.server else "/", "api")
        deadline = time.monotonic() + self.http_timeout
        checked = time.monotonic()
        while time.monotonic() < deadline:
            try:
                await AsyncHTTPClient().fetch(url, request_timeout=2, raise_error=False)
                break
            except (HTTPClientError, OSError):
                pass
            if time.monotonic() - checked > 1:  # a server that died is not waited for
                checked = time.monotonic()
                if await self.poll() is not None:
                    raise KqiServiceError(f"Notebook {self.notebook_id} ended while its server was starting")
            await asyncio.sleep(self.ready_poll_seconds)
        self._say(90, "JupyterLab is answering")
        return (ip, self.port)
