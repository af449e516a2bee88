"""The jupyter-server extension behind the KQI Hub JupyterLab panels.

It serves same-origin endpoints under ``{base_url}kqi/`` (see ``handlers.py``)
and calls the kqi service with this notebook server's own token through the
shared client library (``kqi_services.client``), so the browser never holds a
kqi token. Calls to the service block, so they run in a small thread pool of
the extension's own; logs and downloads are relayed chunk by chunk.

Enable it with ``jupyter server extension enable kqi_services`` (the wheel
ships ``etc/jupyter/jupyter_server_config.d/kqi_services.json`` doing so).
The service is found through ``KQI_SERVER`` and ``KQI_TOKEN`` (else
``JUPYTERHUB_API_TOKEN``) in the server's environment, as the client reads them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Instance, Integer, default

from .handlers import default_handlers


class KqiLabApp(ExtensionApp):
    """Configuration and start-up of the panels' server side (``c.KqiLabApp.…``)."""

    # not the module's name: the extension point is the module itself (see _load_jupyter_server_extension)
    name = "kqi_lab"

    max_threads = Integer(
        16,
        help="""Threads calling the kqi service at once.

        Each open log stream or download holds one while it waits for data;
        further calls queue. Example: ``c.KqiLabApp.max_threads = 32``.
        """,
    ).tag(config=True)

    forward_host = Bool(
        True,
        help="""Send the browser's Host to the service as ``X-Forwarded-Host``.

        The service builds the absolute, self-signed upload and download URLs
        from it, so the browser PUTs upload parts to its own origin (the hub's
        proxy, where ``/services/kqi/`` lives) instead of the service's
        internal address. Turn off when the service has ``KQI_PUBLIC_URL``
        and the browser reaches it under another host.
        """,
    ).tag(config=True)

    executor = Instance(ThreadPoolExecutor)

    @default("executor")
    def _default_executor(self):
        return ThreadPoolExecutor(self.max_threads, thread_name_prefix="kqi-lab")

    def initialize_settings(self) -> None:
        self.settings.update({"kqi_executor": self.executor, "kqi_forward_host": self.forward_host,
                              "kqi_client": None})

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _load_jupyter_server_extension(serverapp) -> KqiLabApp:
    """What jupyter-server calls for the ``kqi_services.labserver`` extension point."""
    return KqiLabApp._load_jupyter_server_extension(serverapp)
