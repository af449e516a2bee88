"""Browser entry of the kqi service: the console's pages, after the OAuth round trip through the hub's login.

``GET /services/kqi/`` (and every console URL: ``trainings/42``,
``admin/users``…) sends a browser without the service's cookie through the
hub's login and OAuth, then answers the console: one page that loads the
console's bundle (``kqi_services/console/static``, built by ``make setup``
from the same sources as the JupyterLab panels) at ``static/console/``.
A client that does not ask for HTML gets who is signed in and in which
tenant, as JSON. API calls from that browser then carry the cookie; writes
must be same-origin (see ``APIHandler.check_same_origin``) and the session's
tenant is switched with ``PUT /api/v2/account/selected-tenant``.
"""

from __future__ import annotations

import html
import json
import os

from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from kqi_services.accounts.tokens import token_hash
from kqi_services.orm import User

from .base import APIHandler
from .files import sha256_of

#: where the console's bundle is built (``jlpm build:console``)
STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kqi_services", "console",
                          "static")
#: the console's screens, as its URLs name them (``routes.ts``)
SECTIONS = ("data", "preprocessing", "datasets", "trainings", "inference", "notebooks", "settings", "members",
            "resources", "admin")
#: what the console's page may load and talk to: itself only
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                           "connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KQI Hub</title>
<link rel="stylesheet" href="{static}console.css?v={version}">
</head>
<body>
<div id="kqi-console" data-base="{base}" data-hub-base="{hub}"><noscript>The KQI console needs JavaScript.</noscript></div>
<script src="{static}console.js?v={version}"></script>
</body>
</html>
"""


def bundle_version() -> str | None:
    """A short hash of the built bundle (cache busting), or None when it is not built; hashed once per build."""
    try:
        return sha256_of(os.path.join(STATIC_DIR, "console.js"))[:12]
    except FileNotFoundError:
        return None


class LandingHandler(HubOAuthenticated, APIHandler):
    auth_required = False

    @web.authenticated
    def get(self, *_route):
        if "text/html" in self.request.headers.get("Accept", ""):
            self.write_console()
            return
        name = self.current_user["name"]
        user = User.find_by_name(self.db, name)
        tenant = None
        if user is not None:
            token = self.hub_auth._get_token_cookie(self)
            tenant = self.bound_tenant(user, token_hash(token)) if token else None
        prefix = self.kqi.service_prefix
        self.finish(json.dumps({
            "userName": name,
            "tenant": {"id": tenant.id, "name": tenant.name, "displayName": tenant.display_name} if tenant else None,
            "api": url_path_join(prefix, "api/v2"),
            # added: the console's address
            "console": prefix,
        }))

    def write_console(self) -> None:
        version = bundle_version()
        if version is None:
            self.set_status(503)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish("The KQI console is not built here: run `make setup` (jlpm build:console in labextension/).\n")
            return
        prefix = self.kqi.service_prefix.rstrip("/") + "/"
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(PAGE.format(static=html.escape(prefix + "static/console/"), version=version,
                                base=html.escape(prefix), hub=html.escape(self.kqi.hub_base_url + "hub/")))


class ConsoleStaticHandler(web.StaticFileHandler):
    """The console's bundle (public: it holds no data); cached, versioned by the page's ``?v=``."""

    def set_extra_headers(self, path):
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.get_query_argument("v", None):
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")


default_handlers = [
    (r"", LandingHandler),
    (rf"({'|'.join(SECTIONS)})(/[^?]*)?", LandingHandler),
    (r"static/console/(.*)", ConsoleStaticHandler, {"path": STATIC_DIR}),
]
