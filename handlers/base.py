"""The one base class of the kqi REST API handlers.

It authenticates every request through the hub (Bearer token or the
service's OAuth cookie), finds the kqi user and the tenant the token is
bound to, parses JSON bodies (400 on bad JSON), maps domain errors to status
codes, rolls the session back on failure and always answers errors as JSON
``{"status": N, "message": "…"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.client import responses
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import joinedload
from tornado import web
from tornado.log import app_log

from kqi_services.accounts.tokens import RUN_TOKEN_PREFIX, run_token_owner, token_hash
from kqi_services.accounts.users import provision_external_user
from kqi_services.errors import Forbidden, InvalidInput, KqiError, Unauthorized
from kqi_services.hub import mirror as hubmirror
from kqi_services.hub.api import HubAPIError
from kqi_services.hub.identities import IdentityCache
from kqi_services.listing import Page, count, sorted_by
from kqi_services.orm import Membership, StorageEndpoint, Tenant, TokenTenant, User, utcnow


@dataclass
class Principal:
    """Who is calling: the kqi user, the selected tenant and the token used."""

    user: User
    tenant: Tenant | None
    token: str
    token_hash: str
    via_cookie: bool


class APIHandler(web.RequestHandler):
    """Base of every kqi API handler."""

    #: set False on handlers that answer without a token (login, version)
    auth_required = True
    principal: Principal | None = None
    _db = None

    # shared objects ------------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            self._db = self.settings["session_factory"]()
        return self._db

    @property
    def hub_api(self):
        return self.settings["hub_api"]

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @property
    def secret_box(self):
        return self.settings["secret_box"]

    @property
    def platform(self):
        return self.settings["platform"]

    @property
    def kqi(self):
        return self.settings["kqi"]

    @property
    def log(self):
        return app_log

    @property
    def actor(self) -> str:
        return self.principal.user.name if self.principal else "anonymous"

    def on_finish(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    # authentication ------------------------------------------------------------
    async def prepare(self):
        if self.auth_required and self.request.method != "OPTIONS":
            self.principal = await self.authenticate()

    async def authenticate(self) -> Principal:
        token = self.hub_auth.get_token(self, in_cookie=False)
        via_cookie = False
        if not token:
            token = self.hub_auth._get_token_cookie(self)
            via_cookie = bool(token)
        if not token:
            raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'")
        if token.startswith(RUN_TOKEN_PREFIX) and not via_cookie:
            owner = run_token_owner(self.db, token)
            if owner is None:
                raise Unauthorized("The run token is invalid or its run has ended")
            return Principal(owner[0], owner[1], token, token_hash(token), False)
        model = await self.identities.identify(token)
        if not model or model.get("kind", "user") != "user":
            raise Unauthorized("The token is invalid or has expired; log in again")
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            raise Forbidden("This token may not use the kqi service")
        if via_cookie and self.request.method not in ("GET", "HEAD"):
            self.check_same_origin()
        digest = token_hash(token)
        user, binding = self.find_caller(model["name"], digest)
        if user is None:
            # a deleted user's token may still be in the identity cache: ask again
            model = await self.identities.identify(token, fresh=True)
            if not model:
                raise Unauthorized("The token is invalid or has expired; log in again")
            user = await self.provision(model["name"])
            binding = self.db.get(TokenTenant, digest)
        return Principal(user, self.tenant_of(user, binding), token, digest, via_cookie)

    def find_caller(self, name: str, digest: str) -> tuple[User | None, TokenTenant | None]:
        """The kqi user of ``name`` (memberships and their tenants loaded) and the token's binding, in one query."""
        row = self.db.execute(
            select(User, TokenTenant)
            .outerjoin(TokenTenant, TokenTenant.token_hash == digest)
            .where(User.name == name.lower())
            .options(joinedload(User.memberships).joinedload(Membership.tenant))
        ).unique().all()  # all rows: first() would cut the joined memberships short
        return (row[0][0], row[0][1]) if row else (None, None)

    @property
    def identities(self) -> IdentityCache:
        """Token → user answers of the hub, never reused past the token's expiry (see ``identities``)."""
        return IdentityCache.of(self.hub_auth, self.hub_api, parent=self.kqi)

    def check_same_origin(self):
        """Cookie-authenticated writes must come from a page of this origin (CSRF)."""
        origin = self.request.headers.get("Origin") or self.request.headers.get("Referer") or ""
        if urlparse(origin).netloc != self.client_host(proxy_vouches_only=True):
            raise Forbidden("Cross-origin request refused")

    async def provision(self, name: str) -> User:
        """First request of a user the hub authenticated elsewhere (LDAP, OAuth)."""
        user = provision_external_user(self.db, name, self.kqi.new_user_tenant)
        tenants = [self.db.get(Tenant, m.tenant_id) for m in user.memberships]

        async def push():
            for tenant in tenants:
                await hubmirror.push_tenant(self.hub_api, tenant)

        await self.commit_then_mirror(push)
        self.log.info("Provisioned kqi user %s", name)
        return user

    def bound_tenant(self, user: User, digest: str) -> Tenant | None:
        """The tenant the token of hash ``digest`` is bound to, else the user's default tenant."""
        return self.tenant_of(user, self.db.get(TokenTenant, digest))

    def tenant_of(self, user: User, row: TokenTenant | None) -> Tenant | None:
        """The tenant of the token binding ``row`` while it holds, else the user's default tenant."""
        if (
            row is not None
            and row.user_id == user.id
            and (row.expires_at is None or row.expires_at > utcnow())
            and user.membership(row.tenant_id) is not None
        ):
            return self.db.get(Tenant, row.tenant_id)
        default = user.default_membership
        return default.tenant if default else None

    async def commit_then_mirror(self, push) -> None:
        """Commit, then push the change to the hub with ``await push()``.

        The commit comes first because no write transaction may stay open
        across an await (SQLite would block the event loop behind it). The
        kqi database is the source of truth: if the hub refuses, the change
        stands and a full reconcile is scheduled to repair the hub's side.
        """
        self.db.commit()
        try:
            await push()
        except HubAPIError as e:
            self.log.error("Mirroring to the hub failed (%s); a reconcile is scheduled", e)
            self.kqi.schedule_reconcile()

    def store_for(self, tenant: Tenant):
        """The object store of a tenant's storage endpoint."""
        return self.settings["stores"].for_endpoint(self.db.get(StorageEndpoint, tenant.storage_id))

    def service_url_base(self) -> str:
        """The service's absolute URL as this client reaches it (for self-signed URLs)."""
        configured = self.kqi.public_url
        if configured:
            return configured.rstrip("/") + self.kqi.service_prefix.rstrip("/")
        host = self.client_host(proxy_vouches_only=self.principal is None or self.principal.via_cookie)
        return f"{self.request.protocol}://{host}{self.kqi.service_prefix.rstrip('/')}"

    def client_host(self, proxy_vouches_only: bool) -> str:
        """The host (and port) the client reached the service at.

        That is the Host header, which the hub's proxy passes on as the client
        sent it. A client-sent ``X-Forwarded-Host`` is believed when the proxy
        in front is trusted to set it (``KqiService.trust_forwarded_host``) or,
        unless ``proxy_vouches_only``, from a token-authenticated caller naming
        the host of the URLs it gets back (the lab server does so for the
        browser): those URLs go to that caller alone, and no page of another
        origin can add the header to a request without a CORS preflight, which
        the service never grants.
        """
        forwarded = self.request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip()
        if forwarded and (self.kqi.trust_forwarded_host or not proxy_vouches_only):
            return forwarded
        return self.request.host

    def require_admin(self) -> None:
        if not self.principal.user.is_admin:
            raise Forbidden("System admin role required")

    def require_tenant(self) -> Tenant:
        if self.principal.tenant is None:
            raise Forbidden("You belong to no tenant; ask an admin to add you to one")
        return self.principal.tenant

    # request and response bodies -------------------------------------------------
    def get_json_body(self):
        """The parsed JSON body, None if empty; 400 on malformed or too deeply nested JSON."""
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"Invalid JSON in body of request: {e}") from None
        except RecursionError:
            raise InvalidInput("Invalid JSON in body of request: nested too deeply") from None

    def raw_query_argument(self, name: str, default: str = "") -> str:
        """A query argument exactly as sent (tornado's own getter rewrites control characters)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return default
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{name} must be UTF-8") from None

    def tag_filters(self) -> list[str]:
        """The ``tag`` filters of a list: repeated, or comma-separated as the upstream CLI sends them."""
        return [t for arg in self.get_query_arguments("tag") for t in arg.split(",") if t]

    def page_of(self, query, sortable=None) -> list:
        """The rows of ``query`` on the page ``perPage``/``page`` asks; the total goes in X-Total-Count.

        With ``sortable`` (the listed model) the ``Sort`` argument may reorder them (``listing.sorted_by``).
        """
        if sortable is not None:
            query = sorted_by(query, sortable, self.get_query_argument("Sort", None))
        page = Page.from_args(self.get_query_argument("perPage", None), self.get_query_argument("page", None),
                              self.get_query_argument("withTotal", None))
        self.set_header("X-Total-Count", str(count(self.db, query)))
        return list(self.db.scalars(page.apply(query)))

    def write_json(self, model, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(model, ensure_ascii=False))

    # errors ------------------------------------------------------------------------
    def _handle_request_exception(self, e):
        if self._db is not None:
            self._db.rollback()
        if isinstance(e, KqiError):
            self._kqi_message = e.message
            if e.status >= 500:
                self.log_exception(type(e), e, e.__traceback__)
            self.send_error(e.status)
            return
        if isinstance(e, HubAPIError):
            self.log.error("Hub API call failed: %s", e)
            self._kqi_message = f"JupyterHub refused the change ({e.status}): {e.message}"
            self.send_error(502)
            return
        if isinstance(e, IntegrityError):
            self._kqi_message = "The change conflicts with existing data"
            self.send_error(409)
            return
        if isinstance(e, SQLAlchemyError):
            self.log_exception(type(e), e, e.__traceback__)
            self._kqi_message = "Database error"
            self.send_error(500)
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code, **kwargs):
        message = getattr(self, "_kqi_message", None)
        exc_info = kwargs.get("exc_info")
        if message is None and exc_info and isinstance(exc_info[1], web.HTTPError):
            message = exc_info[1].log_message % exc_info[1].args if exc_info[1].log_message else None
        if message is None:
            message = self._reason or responses.get(status_code, "Unknown error")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": status_code, "message": message}, ensure_ascii=False))


class JSONNotFoundHandler(APIHandler):
    """Unknown API URLs answer a JSON 404, without asking for a token."""

    auth_required = False

    def prepare(self):
        raise web.HTTPError(404, "No such API endpoint: %s", self.request.path)
