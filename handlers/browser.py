"""Browser entry of the kqi service: the OAuth round trip through the hub's login page.

``GET /services/kqi/`` sends a browser without the service's cookie through
the hub's login and OAuth, then answers who is signed in and in which
tenant. API calls from that browser then carry the cookie; writes must be
same-origin (see ``APIHandler.check_same_origin``) and the session's tenant
is switched with ``PUT /api/v2/account/selected-tenant``.
"""

from __future__ import annotations

import json

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from kqi_services.accounts.tokens import token_hash
from kqi_services.orm import User

from .base import APIHandler


class LandingHandler(HubOAuthenticated, APIHandler):
    auth_required = False

    @web.authenticated
    def get(self):
        name = self.current_user["name"]
        user = User.find_by_name(self.db, name)
        tenant = None
        if user is not None:
            token = self.hub_auth._get_token_cookie(self)
            tenant = self.bound_tenant(user, token_hash(token)) if token else None
        self.finish(json.dumps({
            "userName": name,
            "tenant": {"id": tenant.id, "name": tenant.name, "displayName": tenant.display_name} if tenant else None,
            "api": self.request.path.rstrip("/") + "/api/v2",
        }))


default_handlers = [(r"", LandingHandler)]
