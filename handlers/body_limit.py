"""A 413 with a JSON body for request bodies too large to be read whole.

tornado refuses a body over the connection's ``max_body_size`` by closing
the connection without an answer, which the hub's proxy reports as a bare
503. Here the connection's limit is the largest upload part instead, and
handlers that read their body whole (every one but the streaming upload-part
handler) get at most ``max_body_bytes``: a larger body is read and dropped
as it arrives (so a proxy still sending it sees an answer, not a reset), then
answered ``413 {"status": 413, "message": …}``. Streaming handlers pass
through untouched and set their own limit.
"""

from __future__ import annotations

from tornado import httputil, web

from .base import APIHandler


class BodyLimitedApplication(web.Application):
    """A ``web.Application`` whose whole-body handlers read at most ``settings["max_body_bytes"]``."""

    def get_handler_delegate(self, request, target_class, target_kwargs=None, path_args=None, path_kwargs=None):
        delegate = super().get_handler_delegate(request, target_class, target_kwargs, path_args, path_kwargs)
        if getattr(delegate, "stream_request_body", False):
            return delegate
        return BodyLimit(self, request, delegate, self.settings["max_body_bytes"])


class BodyLimit(httputil.HTTPMessageDelegate):
    """Passes a request on to its handler's delegate unless the body exceeds ``limit`` bytes."""

    def __init__(self, application: web.Application, request, delegate: httputil.HTTPMessageDelegate, limit: int):
        self.application = application
        self.request = request
        self.delegate = delegate
        self.limit = limit
        self.received = 0
        self.too_large = False

    def headers_received(self, start_line, headers):
        declared = headers.get("Content-Length", "")
        self.too_large = declared.isascii() and declared.isdigit() and int(declared) > self.limit
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes):
        self.received += len(chunk)
        self.too_large = self.too_large or self.received > self.limit
        if self.too_large:
            return None  # dropped; what the handler's delegate holds so far is let go with it
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        if not self.too_large:
            self.delegate.finish()
            return
        # tornado's own delegate: the refusal reads no body, so it needs no limit of its own
        refusal = web.Application.get_handler_delegate(self.application, self.request, BodyTooLargeHandler,
                                                       {"limit": self.limit})
        refusal.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


class BodyTooLargeHandler(APIHandler):
    """Answers 413 to any method, without a token (nothing of the request was used)."""

    auth_required = False

    def initialize(self, limit: int):
        self.limit = limit

    def prepare(self):
        raise web.HTTPError(413, "The request body is larger than %d bytes (%d MiB)",
                            self.limit, self.limit // 2**20)
