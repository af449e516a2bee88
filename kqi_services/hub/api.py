"""A small async client of the JupyterHub REST API, used by the kqi service.

It keeps the hub's users and groups in step with the kqi database (tenants are
mirrored as groups), issues and revokes user tokens, and logs users in through
the hub's authenticator (``POST /users/NAME/tokens`` with an ``auth`` body).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class HubAPIError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"hub API {status}: {message}")
        self.status = status
        self.message = message


class HubAPI:
    def __init__(self, api_url: str, api_token: str):
        self.api_url = api_url.rstrip("/")
        self.api_token = api_token
        self.client = AsyncHTTPClient()

    async def request(self, method: str, path: str, body=None, *, auth: bool = True, ok=(200, 201, 204),
                      headers: dict | None = None):
        headers = {"Accept": "application/json", **(headers or {})}
        if auth:
            headers["Authorization"] = f"token {self.api_token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = HTTPRequest(
            self.api_url + path,
            method=method,
            headers=headers,
            body=json.dumps(body) if body is not None else (b"" if method in ("POST", "PUT", "PATCH") else None),
            allow_nonstandard_methods=True,
            request_timeout=30,
        )
        try:
            resp = await self.client.fetch(req, raise_error=False)
        except HTTPClientError as e:  # pragma: no cover - connection-level failures
            raise HubAPIError(599, str(e)) from e
        if resp.code not in ok:
            try:
                message = json.loads(resp.body or b"{}").get("message", "")
            except ValueError:
                message = (resp.body or b"")[:200].decode(errors="replace")
            raise HubAPIError(resp.code, message)
        if resp.body:
            return json.loads(resp.body)
        return None

    # users ------------------------------------------------------------------
    async def get_user(self, name: str):
        try:
            return await self.request("GET", f"/users/{quote(name)}")
        except HubAPIError as e:
            if e.status == 404:
                return None
            raise

    async def ensure_user(self, name: str, admin: bool) -> None:
        """Create the hub user if missing and set its admin flag."""
        model = await self.get_user(name)
        if model is None:
            await self.request("POST", f"/users/{quote(name)}", {"admin": admin})
        elif bool(model.get("admin")) != admin:
            await self.request("PATCH", f"/users/{quote(name)}", {"admin": admin})

    async def delete_user(self, name: str) -> None:
        await self.request("DELETE", f"/users/{quote(name)}", ok=(204, 404))

    async def list_users(self) -> list[dict]:
        return await self.request("GET", "/users?include_stopped_servers=1&limit=10000") or []

    # groups (tenants) ---------------------------------------------------------
    async def list_groups(self) -> list[dict]:
        return await self.request("GET", "/groups?limit=10000") or []

    async def ensure_group(self, name: str, members: list[str], properties: dict) -> None:
        """Make group ``name`` exist with exactly these members and properties."""
        try:
            group = await self.request("GET", f"/groups/{quote(name)}")
        except HubAPIError as e:
            if e.status != 404:
                raise
            group = None
        if group is None:
            await self.request("POST", f"/groups/{quote(name)}", {"users": sorted(members)})
            current = set(members)
        else:
            current = set(group.get("users", []))
        extra = sorted(current - set(members))
        missing = sorted(set(members) - current)
        if missing:
            await self.request("POST", f"/groups/{quote(name)}/users", {"users": missing})
        if extra:
            await self.request("DELETE", f"/groups/{quote(name)}/users", {"users": extra})
        if group is None or group.get("properties") != properties:
            await self.request("PUT", f"/groups/{quote(name)}/properties", properties)

    async def delete_group(self, name: str) -> None:
        await self.request("DELETE", f"/groups/{quote(name)}", ok=(204, 404))

    # tokens -----------------------------------------------------------------
    async def login(self, name: str, password: str, expires_in: int, note: str, forwarded_for: str = ""):
        """Check credentials through the hub's authenticator; return its token model or None.

        No Authorization header is sent, so the hub runs the configured
        Authenticator (and its lockout) on the ``auth`` body. ``forwarded_for``
        is sent as ``X-Forwarded-For``: the client's address chain, so the
        lockout counts the failure against the client, not against this service.
        """
        body = {"auth": {"username": name, "password": password}, "expires_in": expires_in, "note": note}
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        token = await self._login_once(name, body, headers)
        if token is None and await self.get_user(name) is None:
            # the hub issues tokens only to users it knows: someone who never
            # logged in (LDAP, OAuth) is created for one more try, and removed
            # again if the authenticator still says no (ours refuses to add a name the kqi database lacks:
            # the hub's 400 means no such account)
            try:
                await self.request("POST", f"/users/{quote(name)}", {})
            except HubAPIError as e:
                if e.status == 400:
                    return None
                raise
            token = await self._login_once(name, body, headers)
            if token is None:
                await self.delete_user(name)
        return token

    async def _login_once(self, name: str, body: dict, headers: dict | None = None):
        try:
            return await self.request("POST", f"/users/{quote(name)}/tokens", body, auth=False, headers=headers)
        except HubAPIError as e:
            if e.status in (400, 403, 404):
                return None
            raise

    async def start_server(self, name: str, server_name: str, user_options: dict) -> None:
        """Ask the hub to start a named server (it answers before the spawn has finished)."""
        await self.request("POST", f"/users/{quote(name)}/servers/{quote(server_name)}", user_options,
                           ok=(201, 202))

    async def stop_server(self, name: str, server_name: str) -> None:
        """Ask the hub to stop a named server; one already stopped is fine."""
        await self.request("DELETE", f"/users/{quote(name)}/servers/{quote(server_name)}", {},
                           ok=(202, 204, 400, 404))

    async def new_token(self, name: str, expires_in: int, note: str) -> dict:
        body = {"expires_in": expires_in, "note": note}
        return await self.request("POST", f"/users/{quote(name)}/tokens", body)

    async def list_tokens(self, name: str) -> list[dict]:
        model = await self.request("GET", f"/users/{quote(name)}/tokens")
        return model.get("api_tokens", []) if model else []

    async def delete_token(self, name: str, token_id: str) -> None:
        await self.request("DELETE", f"/users/{quote(name)}/tokens/{quote(token_id)}", ok=(204, 404))
