"""Same-origin endpoints of the JupyterLab panels, under ``{base_url}kqi/``.

* ``kqi/api/{path}`` — any method: the kqi API call ``/api/v2/{path}`` with
  the query and JSON body as sent, answered with the service's status, body
  and ``X-Total-Count`` (server-side paging);
* ``kqi/{kind}/{id}/log?offset=N`` — the run's log followed live, relayed
  chunk by chunk until the run ends (``kind`` is training, inference or
  preprocessing; the service's path of each is in ``RUN_API_PATHS``);
* ``kqi/{kind}/{id}/output?path=/a/b`` — one output file, streamed as a download;
* ``kqi/{kind}/{id}/shell`` — a websocket relayed to the run's shell (terminado's protocol).

Every error is JSON ``{"status", "message"}`` with the service's status, so
the panels show the service's own message. Calls run in the extension's
thread pool: the server's event loop never waits on the service.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web, websocket
from tornado.iostream import StreamClosedError

from kqi_services.client import KqiApiError, KqiClient

#: the API path of each run kind whose logs, outputs and shells the panels reach: an inference's
#: routes are ``/inferences/{id}/…``, a preprocessing history's run's ``/preprocessing/{runId}/…``
RUN_API_PATHS = {"training": "training", "inference": "inferences", "preprocessing": "preprocessing"}
RUN_KINDS = "(" + "|".join(RUN_API_PATHS) + ")"
CHUNK = 256 * 1024
#: response headers of the service passed on to the panels
PASSED_HEADERS = ("X-Total-Count", "X-Log-Offset", "X-Run-Status")


class KqiError(Exception):
    """An error to answer as ``{"status", "message"}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class KqiHandlerMixin:
    """The client, the thread pool and error mapping shared by the handlers."""

    @property
    def kqi_client(self) -> KqiClient:
        client = self.settings.get("kqi_client")
        if client is None:
            try:
                client = KqiClient.from_environment()
            except Exception as e:  # noqa: BLE001 - no KQI_SERVER / token: say so instead of a bare 500
                raise KqiError(503, f"The kqi service is not configured for this server: {e}") from None
            self.settings["kqi_client"] = client
        return client

    async def blocking(self, func, *args):
        """``func(*args)`` in the extension's thread pool; KqiApiError becomes KqiError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.settings["kqi_executor"], func, *args)
        except KqiApiError as e:  # status 0: the service could not be reached
            raise KqiError(e.status or 502, e.message) from None
        except OSError as e:  # reading a streamed body broke off
            raise KqiError(502, f"The connection to the kqi service broke: {e}") from None

    def forwarded_headers(self) -> dict:
        """Headers that make the service build URLs for the browser's origin."""
        if not self.settings.get("kqi_forward_host", True):
            return {}
        return {"X-Forwarded-Host": self.request.host, "X-Forwarded-Proto": self.request.protocol}

    def api_request(self, method: str, path: str, **kwargs):
        return self.blocking(lambda: self.kqi_client.request(method, path, **kwargs))

    def query_params(self) -> list[tuple[str, str]]:
        return [(k, v.decode("utf-8", "replace")) for k, vs in self.request.query_arguments.items() for v in vs]


def api_path(path: str) -> str:
    """``/``-prefixed API path; refuses ``.``/``..`` segments so calls stay under ``/api/v2``."""
    if any(part in (".", "..") for part in path.split("/")) or "\\" in path:
        raise KqiError(400, "Invalid API path")
    return "/" + quote(path.lstrip("/"), safe="/:@-._~!$&'()*+,;=")


def run_api_path(kind: str, run_id: str, route: str) -> str:
    """The service's path of a run's route: ``run_api_path("inference", "3", "log")`` is ``/inferences/3/log``."""
    return f"/{RUN_API_PATHS[kind]}/{run_id}/{route}"


def error_of(response) -> KqiError:
    """The service's error reply (JSON ``{status, message}`` or any text) as a KqiError."""
    try:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return KqiError(response.status_code, message or response.reason or f"HTTP {response.status_code}")


class KqiAPIHandler(KqiHandlerMixin, APIHandler):
    """Base of the JSON endpoints: errors as the service words them."""

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, KqiError):
            status_code, message = exc.status, exc.message
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message % exc.args if exc.log_message else (exc.reason or "Error")
        else:
            message = "Internal error in the kqi lab extension"
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": status_code, "message": message}, ensure_ascii=False))

    def _handle_request_exception(self, e):
        if isinstance(e, KqiError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)


class ApiProxyHandler(KqiAPIHandler):
    """``kqi/api/{path}``: one kqi API call with this server's token."""

    @web.authenticated
    async def get(self, path):
        await self.forward("GET", path)

    @web.authenticated
    async def post(self, path):
        await self.forward("POST", path)

    @web.authenticated
    async def put(self, path):
        await self.forward("PUT", path)

    @web.authenticated
    async def patch(self, path):
        await self.forward("PATCH", path)

    @web.authenticated
    async def delete(self, path):
        await self.forward("DELETE", path)

    async def forward(self, method: str, path: str) -> None:
        body = None
        if self.request.body:
            try:
                body = json.loads(self.request.body)
            except ValueError:
                raise KqiError(400, "The request body is not JSON") from None
        response = await self.api_request(method, api_path(path), params=self.query_params(), json=body,
                                          stream=True, headers=self.forwarded_headers())
        try:
            content = await self.blocking(lambda: response.content)
        finally:
            response.close()
        self.set_status(response.status_code)
        for name in PASSED_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        if response.status_code == 204 or not content:
            self.finish()
            return
        self.set_header("Content-Type", response.headers.get("Content-Type", "application/json"))
        self.finish(content)


class StreamingHandler(KqiAPIHandler):
    """Relays a streamed response chunk by chunk; stops when the browser goes away."""

    response = None

    async def relay(self, response, headers: dict) -> None:
        self.response = response
        try:
            if response.status_code >= 400:
                await self.blocking(lambda: response.content)
                raise error_of(response)
            for name, value in headers.items():
                if value is not None:
                    self.set_header(name, value)
            chunks = response.iter_content(CHUNK)
            while True:
                chunk = await self.blocking(next, chunks, None)
                if chunk is None:
                    break
                self.write(chunk)
                await self.flush()
            self.finish()
        except StreamClosedError:
            pass
        finally:
            response.close()

    def on_connection_close(self):
        if self.response is not None:
            self.response.close()  # wakes the thread waiting on the service


class RunLogHandler(StreamingHandler):
    """``kqi/{kind}/{id}/log?offset=N[&follow=false]``: the run's log, followed live by default."""

    @web.authenticated
    async def get(self, kind, run_id):
        offset = self.get_query_argument("offset", "0")
        if not (offset.isascii() and offset.isdigit()):
            raise KqiError(400, "offset must be a non-negative integer")
        follow = self.get_query_argument("follow", "true").lower() in ("true", "1")
        response = await self.api_request("GET", run_api_path(kind, run_id, "log"),
                                          params={"offset": offset, "follow": "true" if follow else "false"},
                                          stream=True)
        await self.relay(response, {
            "Content-Type": "text/plain; charset=UTF-8", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no", **{h: response.headers.get(h) for h in PASSED_HEADERS},
        })


class RunOutputHandler(StreamingHandler):
    """``kqi/{kind}/{id}/output?path=/dir/name``: one file of the run's /kqi/output as a download."""

    @web.authenticated
    async def get(self, kind, run_id):
        path = "/" + self.get_query_argument("path", "").lstrip("/")
        folder, name = posixpath.split(path)
        if not name:
            raise KqiError(400, "path must name a file")
        listing = await self.api_request("GET", run_api_path(kind, run_id, "container-files"),
                                         params={"path": folder, "withUrl": "true"})
        entry = next((f for f in listing.get("files", []) if f.get("fileName") == name), None)
        if entry is None or not entry.get("url"):
            raise KqiError(404, f"No file {path!r} in the output of {kind} {run_id}")
        # a signed URL: fetched without the token, as the client fetches downloads
        session = self.kqi_client.storage_session
        response = await self.blocking(lambda: session.get(entry["url"], stream=True, timeout=60))
        await self.relay(response, {
            "Content-Type": response.headers.get("Content-Type", "application/octet-stream"),
            "Content-Length": response.headers.get("Content-Length"),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        })


class RunShellHandler(KqiHandlerMixin, websocket.WebSocketHandler, JupyterHandler):
    """``kqi/{kind}/{id}/shell``: a websocket relayed to the service's shell of the run."""

    upstream = None

    async def get(self, kind, run_id):
        if self.current_user is None:
            raise web.HTTPError(403)
        client = self.kqi_client
        url = "ws" + client.url(run_api_path(kind, run_id, "shell"))[len("http"):]
        request = websocket.httpclient.HTTPRequest(url, headers={"Authorization": f"Bearer {client.token}"})
        try:
            self.upstream = await websocket.websocket_connect(request, on_message_callback=self.on_upstream)
        except websocket.httpclient.HTTPClientError as e:
            error = e.response and error_of_body(e.code, e.response.body)
            self.set_status(e.code)
            self.finish(json.dumps({"status": e.code, "message": error or str(e)}))
            return
        except OSError as e:
            self.set_status(502)
            self.finish(json.dumps({"status": 502, "message": f"The kqi service cannot be reached: {e}"}))
            return
        await super().get(kind, run_id)

    def on_upstream(self, message):
        if message is None:
            self.close()
            return
        try:
            self.write_message(message)
        except websocket.WebSocketClosedError:
            pass

    def on_message(self, message):
        if self.upstream is not None:
            self.upstream.write_message(message)

    def on_close(self):
        if self.upstream is not None:
            self.upstream.close()


def error_of_body(status: int, body: bytes) -> str | None:
    try:
        return json.loads(body).get("message")
    except (ValueError, AttributeError):
        return None


default_handlers = [
    (r"kqi/api/(.*)", ApiProxyHandler),
    (rf"kqi/{RUN_KINDS}/([0-9]+)/log", RunLogHandler),
    (rf"kqi/{RUN_KINDS}/([0-9]+)/output", RunOutputHandler),
    (rf"kqi/{RUN_KINDS}/([0-9]+)/shell", RunShellHandler),
]
