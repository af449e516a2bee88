"""TensorBoard of a training (v2 ``/training/{id}/tensorboard``) and the proxy in front of it.

``PUT`` starts a TensorBoard over the training's ``/kqi/output`` and the
outputs of ``selectedHistoryIds`` (trainings of the same tenant), ``GET``
reports it (status ``None`` when there is none, as the original), ``DELETE``
stops it. The answer is the contract's TensorBoardOutputModel plus ``url``:
the path of the TensorBoard through the hub (``/services/kqi/tensorboard/{id}/``)
and, when it failed, ``conditionNote`` with the end of its log.

``tensorboard/{id}/…`` forwards GET, HEAD and POST to that TensorBoard and
streams its answer back. It is authenticated like the API (Bearer token or
the service's OAuth cookie) and scoped to the tenant: someone of another
tenant gets 404. A browser page request without valid credentials is sent
through the hub's login (OAuth) and comes back; other clients get a JSON 401.
While the TensorBoard starts, a request waits for it (up to
``TensorBoardManager.start_timeout``), then answers 503 with Retry-After.
"""

from __future__ import annotations

import os
import socket

from jupyterhub.services.auth import HubOAuthenticated
from tornado import httputil, iostream
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver

from kqi_services import validation as v
from kqi_services.errors import KqiError, NotFound, Unauthorized
from kqi_services.jobs import status as st
from kqi_services.jobs.tensorboard import FAILED, LogSource, TensorBoard, remaining_time

from .runs import RunBase

NO_TENSORBOARD = {"name": None, "status": "None", "statusType": "None", "nodePort": None, "remainingTime": None,
                  "mountedTrainingHistoryIds": [], "url": None}

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}
# the user's credentials stay with the service; tornado sets the others
NOT_FORWARDED = HOP_BY_HOP | {"host", "authorization", "cookie", "content-length"}
NOT_RETURNED = HOP_BY_HOP | {"server", "date", "set-cookie"}
FLUSH_BYTES = 64 * 1024


class BadGateway(KqiError):
    status = 502


class TensorBoardBase(RunBase):
    @property
    def tensorboards(self):
        return self.settings["tensorboards"]

    def tensorboard_model(self, board: TensorBoard | None) -> dict:
        if board is None:
            return dict(NO_TENSORBOARD)
        status = board.status
        model = {
            "name": board.name,
            "status": status,
            "statusType": st.status_type(status),
            "nodePort": None,
            "remainingTime": remaining_time(board.remaining()),
            "mountedTrainingHistoryIds": list(board.mounted_ids),
            # added
            "url": self.tensorboards.url(board.training_id),
        }
        if status == FAILED:
            model["conditionNote"] = board.log_tail()
        return model


class TensorBoardHandler(TensorBoardBase):
    """GET, PUT (TensorBoardInputModel) and DELETE …/training/{id}/tensorboard."""

    def get(self, run_id):
        run = self.find(run_id)
        self.write_json(self.tensorboard_model(self.tensorboards.get(run.id)))

    async def put(self, run_id):
        run = self.find(run_id)
        body = v.require_object(self.get_json_body() or {})
        expires_in = v.integer(body, "expiresIn", minimum=0)
        selected = [self.find(i) for i in v.integer_list(body, "selectedHistoryIds") if i != run.id]
        sources = []
        for training in [run, *selected]:
            output = self.paths(training).output
            # a queued training has no output directory yet; TensorBoard shows it as it fills
            os.makedirs(output, exist_ok=True)
            sources.append(LogSource(training.id, training.name, output))
        board = self.tensorboards.start(run.id, run.tenant_id, sources, self.tensorboards.lifetime(expires_in))
        self.db.close()
        await self.tensorboards.wait_serving(board)
        self.write_json(self.tensorboard_model(board))

    def delete(self, run_id):
        run = self.find(run_id)
        if not self.tensorboards.stop(run.id):
            raise NotFound(f"Training {run.id} has no TensorBoard")
        self.set_status(204)
        self.finish()


class AdminTensorBoardsHandler(TensorBoardBase):
    """DELETE /api/v2/admin/tensorboards: stop every TensorBoard; answers how many."""

    def delete(self):
        self.require_admin()
        self.write_json(self.tensorboards.stop_all())


class TensorBoardProxyHandler(HubOAuthenticated, TensorBoardBase):
    """GET/HEAD/POST tensorboard/{id}/…: the training's TensorBoard, streamed through."""

    async def prepare(self):
        try:
            await super().prepare()
        except Unauthorized:
            if not self.is_browser_page():
                raise
            self.redirect(self.get_login_url())

    def is_browser_page(self) -> bool:
        """A browser asking for a page, without a token of its own: it can log in through the hub."""
        return (self.request.method in ("GET", "HEAD") and "Authorization" not in self.request.headers
                and "text/html" in self.request.headers.get("Accept", ""))

    def compute_etag(self):
        return None  # TensorBoard's own headers pass through

    async def get(self, run_id, _path):
        await self.forward(run_id)

    async def head(self, run_id, _path):
        await self.forward(run_id)

    async def post(self, run_id, _path):
        await self.forward(run_id)

    async def forward(self, run_id) -> None:
        run = self.find(run_id)
        self.db.close()  # no transaction stays open while the answer streams
        board = self.tensorboards.get(run.id)
        if board is None:
            raise NotFound(f"Training {run.id} has no TensorBoard; start it with PUT "
                           f"{self.kqi.service_prefix}api/v2/training/{run.id}/tensorboard")
        if not await self.tensorboards.wait_serving(board):
            if board.status == FAILED:
                raise BadGateway(f"TensorBoard of training {run.id} ended: {board.log_tail(500)}")
            self.set_header("Retry-After", "2")
            self.write_json({"status": 503, "message": f"TensorBoard of training {run.id} is still starting"},
                            503)
            return
        headers = httputil.HTTPHeaders()
        for name, value in self.request.headers.get_all():
            if name.lower() not in NOT_FORWARDED:
                headers.add(name, value)
        method = self.request.method
        # a TensorBoard in a network namespace of its own is reached through its unix socket only
        origin = f"http://{UNIX_HOST_PREFIX}{run.id}" if board.socket_path else f"http://127.0.0.1:{board.port}"
        request = HTTPRequest(
            origin + self.request.uri, method=method, headers=headers,
            body=self.request.body if method == "POST" else None, follow_redirects=False,
            decompress_response=False, connect_timeout=10, request_timeout=600,
            header_callback=self.on_upstream_header, streaming_callback=self.on_upstream_chunk)
        self._upstream_headers, self._unflushed = None, 0
        response = await self.http_client().fetch(request, raise_error=False)
        if self._upstream_headers is None:  # no answer at all
            raise BadGateway(f"TensorBoard of training {run.id} did not answer: {response.error}")
        try:
            await self.finish()
        except iostream.StreamClosedError:
            pass

    def http_client(self) -> AsyncHTTPClient:
        """One client for all TensorBoards, apart from the hub API's (a browser opens many requests at once)."""
        client = self.settings.get("tensorboard_http_client")
        if client is None:
            client = self.settings["tensorboard_http_client"] = AsyncHTTPClient(
                force_instance=True, max_clients=64, resolver=TensorBoardSocketResolver(boards=self.tensorboards))
        return client

    def on_upstream_header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            start = httputil.parse_response_start_line(line.strip())
            self._upstream_status = (start.code, start.reason)
            self._upstream_headers = httputil.HTTPHeaders()
        elif line.strip():
            self._upstream_headers.parse_line(line)
        elif self._upstream_status[0] >= 200:  # the end of the final header block
            self.set_status(*self._upstream_status)
            self.clear_header("Content-Type")
            self.clear_header("Cache-Control")
            for name, value in self._upstream_headers.get_all():
                if name.lower() not in NOT_RETURNED:
                    self.add_header(name, value)

    def on_upstream_chunk(self, chunk: bytes) -> None:
        self.write(chunk)
        self._unflushed += len(chunk)
        if self._unflushed >= FLUSH_BYTES:
            self._unflushed = 0
            # consumed, so a client that went away is no "exception never retrieved"
            self.flush().add_done_callback(lambda f: f.exception())


UNIX_HOST_PREFIX = "tensorboard-socket-"


class TensorBoardSocketResolver(Resolver):
    """Resolves ``tensorboard-socket-{id}`` to that TensorBoard's unix socket; other names as usual."""

    def initialize(self, boards) -> None:
        self.boards = boards
        self.fallback = DefaultLoopResolver()

    async def resolve(self, host: str, port: int, family=socket.AF_UNSPEC):
        if host.startswith(UNIX_HOST_PREFIX) and host[len(UNIX_HOST_PREFIX):].isdigit():
            board = self.boards.boards.get(int(host[len(UNIX_HOST_PREFIX):]))
            if board is None or not board.socket_path:
                raise OSError(f"no TensorBoard socket for {host}")
            return [(socket.AF_UNIX, board.socket_path)]
        return await self.fallback.resolve(host, port, family)


default_handlers = [
    (r"api/v2/training/([0-9]+)/tensorboard", TensorBoardHandler),
    (r"api/v2/admin/tensorboards", AdminTensorBoardsHandler),
    (r"tensorboard/([0-9]+)(/.*)?", TensorBoardProxyHandler),
]
