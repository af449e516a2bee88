"""The HTTP core of the kqi client: where the service is, the token, one ``request()``.

``KqiClient(server, token)`` talks to ``{server}/api/v2/...`` with
``Authorization: Bearer <token>``, as the upstream kamonohashi-cli does. Every
error the service answers is JSON ``{"status": N, "message": "…"}`` and is
raised as :class:`KqiApiError`; a service that cannot be reached is a
``KqiApiError`` with status 0, so callers catch one exception type.

Signed storage URLs (upload parts, downloads) are fetched through a second,
bare session (:attr:`KqiClient.storage_session`) that never carries the token:
the signature in the URL is the credential.

This module imports nothing from the server side: only ``requests`` and the stdlib.
"""

from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter

from .config import read_config
from .errors import KqiApiError, KqiConfigError
from .resources import Account, Data, Datasets, Inferences, Notebooks, Preprocessings, Tenants, Trainings
from .transfer import download_url, upload_file

#: parallel connections kept per host (upload workers plus the API itself)
POOL_SIZE = 8


def _session(proxy: str | None = None) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    return session


class KqiClient:
    """A client of one kqi service as one user (in the tenant the token is bound to).

    Args:
        server: the service base URL, e.g. ``http://127.0.0.1:8000/services/kqi``.
        token: an API token (from ``account login``, ``KQI_TOKEN`` or the notebook's hub token).
        timeout: seconds to wait for the service to connect or answer.
        proxy: an HTTP proxy URL, as the upstream ``config.json`` may name one.

    Resource helpers: :attr:`account`, :attr:`tenants`, :attr:`data`,
    :attr:`datasets`, :attr:`trainings`, :attr:`notebooks`.
    """

    def __init__(self, server: str, token: str | None, *, timeout: float = 30, proxy: str | None = None):
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = _session(proxy)
        #: the bare session for signed storage URLs (never sends the token); tests wrap its transport
        self.storage_session = _session(proxy)
        self.account = Account(self)
        self.tenants = Tenants(self)
        self.data = Data(self)
        self.datasets = Datasets(self)
        self.trainings = Trainings(self)
        self.inferences = Inferences(self)
        self.preprocessings = Preprocessings(self)
        self.notebooks = Notebooks(self)

    def __repr__(self) -> str:
        return f"KqiClient({self.server!r})"

    @classmethod
    def from_environment(cls, *, timeout: float | None = None) -> KqiClient:
        """The client the environment describes.

        The server is ``KQI_SERVER``, else the ``server`` of ``~/.kqi/config.json``.
        The token is ``KQI_TOKEN``; else, when ``KQI_SERVER`` is set,
        ``JUPYTERHUB_API_TOKEN`` (inside a platform notebook); else the
        config file's ``token``.

        Raises:
            KqiConfigError: when no server or no token is found.
        """
        config = read_config()
        env_server = os.environ.get("KQI_SERVER")
        server = env_server or config.get("server")
        token = os.environ.get("KQI_TOKEN")
        if not token and env_server:
            token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token and not env_server:
            token = config.get("token")
        if not server or not token:
            raise KqiConfigError(
                "No kqi server or token: set KQI_SERVER and KQI_TOKEN, or log in first with "
                "'kqi account login' (which writes ~/.kqi/config.json)."
            )
        return cls(server, token, timeout=timeout or config.get("timeout") or 30, proxy=config.get("proxy"))

    def url(self, path: str) -> str:
        """The absolute URL of an API path relative to ``/api/v2`` (e.g. ``"/training/3"``)."""
        return f"{self.server}/api/v2/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params=None, json=None, stream: bool = False,
                headers: dict | None = None, timeout=None):
        """Call the API; the parsed JSON body (None when empty), or the Response when ``stream``.

        Args:
            method: the HTTP method.
            path: relative to ``/api/v2``, e.g. ``"/training/3"``.
            params: query parameters (a dict, or a list of pairs; ``None`` values are dropped).
            json: the JSON body.
            stream: return the open ``requests.Response`` (for logs and large bodies).
            headers: extra headers.
            timeout: overrides the client's timeout (seconds, or a (connect, read) pair).

        Raises:
            KqiApiError: on an answer ≥ 400 or when the service cannot be reached.
        """
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        if isinstance(params, dict):
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self.session.request(method, self.url(path), params=params, json=json, stream=stream,
                                            headers=all_headers, timeout=timeout or self.timeout)
        except requests.ConnectionError as e:
            raise KqiApiError(0, f"Cannot reach the kqi service at {self.server}: {e}") from e
        except requests.Timeout as e:
            raise KqiApiError(0, f"The kqi service at {self.server} did not answer in time: {e}") from e
        if response.status_code >= 400:
            try:
                raise KqiApiError.from_response(response)
            finally:
                response.close()
        if stream:
            return response
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise KqiApiError(response.status_code,
                              f"The service answered {method} {path} with something that is not JSON") from None

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def paged(self, path: str, params=None, count: int = 1000, per_page: int = 1000) -> list:
        """Up to ``count`` items of a list endpoint, fetched ``per_page`` at a time (as the upstream CLI).

        ``params`` is a dict or a list of pairs (for repeated keys such as ``tag``).
        """
        pairs = list(params.items() if isinstance(params, dict) else params or [])
        pairs = [(k, v) for k, v in pairs if v is not None]
        if count <= per_page:
            return self.get(path, params=pairs + [("perPage", count)]) or []
        items: list = []
        page = 1
        while len(items) < count:
            batch = self.get(path, params=pairs + [("perPage", per_page), ("page", page)]) or []
            items.extend(batch)
            if len(batch) < per_page:
                break
            page += 1
        return items[:count]

    # signed storage URLs -----------------------------------------------------------------
    def upload(self, path: str, resource_type: str = "Data", *, progress=None, **options) -> dict:
        """Upload one file by the v2 multipart protocol; see :func:`transfer.upload_file`."""
        return upload_file(self, path, resource_type, progress=progress, **options)

    def download(self, url: str, directory: str, file_name: str, *, progress=None) -> str:
        """Stream a signed URL to ``directory/file_name``; see :func:`transfer.download_url`."""
        return download_url(self, url, directory, file_name, progress=progress)
