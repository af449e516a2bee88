"""Registry API: what a registry endpoint of the tenant holds, for the forms' image and tag pickers.

``GET /api/v2/registries/{id}/images`` and ``…/images/{image}/tags`` (an
image name may hold ``/``: ``team/torch``) ask the registry itself over the
Docker Registry HTTP API v2 (``/v2/_catalog``, ``/v2/{name}/tags/list``) with
the caller's registry login for that endpoint (``PUT /account/registries``),
basic auth, or the bearer token its ``WWW-Authenticate`` challenge points to
(Docker Hub, GitLab). A refused login is a 400 saying so, an unknown image a
404, a registry that cannot be reached a 502 — the registry's words in the
message, never the token. The call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

import requests

from kqi_services import validation as v
from kqi_services.accounts.users import registry_login
from kqi_services.errors import InvalidInput, KqiError, NotFound
from kqi_services.orm import RegistryEndpoint

from .base import APIHandler

TIMEOUT = 15
IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class RegistryUnreachable(KqiError):
    status = 502


def _challenge(header: str) -> dict[str, str]:
    """The fields of a ``Bearer realm="…",service="…",scope="…"`` challenge."""
    return dict(re.findall(r'(\w+)="([^"]*)"', header or ""))


def registry_get(base: str, path: str, login: tuple[str, str] | None) -> dict:
    """GET ``{base}/v2/{path}`` as the registry wants to be asked (basic, or its bearer token)."""
    url = f"{base.rstrip('/')}/v2/{path}"
    try:
        r = requests.get(url, auth=login, timeout=TIMEOUT)
        if r.status_code == 401 and r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"):
            fields = _challenge(r.headers["WWW-Authenticate"])
            grant = requests.get(fields.get("realm", ""), params={k: fields[k] for k in ("service", "scope")
                                                                   if k in fields}, auth=login, timeout=TIMEOUT)
            if grant.status_code == 200:
                token = grant.json().get("token") or grant.json().get("access_token")
                r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except (requests.RequestException, ValueError) as e:
        raise RegistryUnreachable(f"The registry at {base} cannot be reached: {type(e).__name__}") from None
    if r.status_code in (401, 403):
        raise InvalidInput(f"The registry refused the login (HTTP {r.status_code}): set your registry token for "
                           "this endpoint (account registries)")
    if r.status_code == 404:
        raise NotFound(f"The registry has no {path.removesuffix('/tags/list')}")
    if r.status_code != 200:
        raise RegistryUnreachable(f"The registry answered HTTP {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise RegistryUnreachable("The registry's answer is not JSON") from None


class RegistryBase(APIHandler):
    def endpoint(self, registry_id) -> tuple[RegistryEndpoint, tuple[str, str] | None]:
        tenant = self.require_tenant()
        rid = v.path_id(registry_id, "registryId")
        registry = self.db.get(RegistryEndpoint, rid)
        if registry is None or rid not in [link.registry_id for link in tenant.registries]:
            raise NotFound(f"Registry {registry_id} is not available in this tenant")
        return registry, registry_login(self.db, self.secret_box, self.principal.user, rid)

    async def ask(self, registry: RegistryEndpoint, path: str, login) -> dict:
        base = registry.registry_url or registry.api_url
        return await asyncio.get_running_loop().run_in_executor(None, registry_get, base, path, login)


class ImagesHandler(RegistryBase):
    async def get(self, registry_id):
        registry, login = self.endpoint(registry_id)
        answer = await self.ask(registry, "_catalog", login)
        self.write_json(sorted(answer.get("repositories") or []))


class TagsHandler(RegistryBase):
    async def get(self, registry_id, image):
        registry, login = self.endpoint(registry_id)
        if not IMAGE_NAME.fullmatch(image):
            raise InvalidInput(f"{image!r} is not an image name")
        answer = await self.ask(registry, f"{quote(image, safe='/')}/tags/list", login)
        self.write_json(sorted(answer.get("tags") or []))


default_handlers = [
    (r"api/v2/registries/([^/]+)/images", ImagesHandler),
    # the contract's {image}/tags, and {segments} for names with '/' (team/torch/tags)
    (r"api/v2/registries/([^/]+)/images/(.+)/tags", TagsHandler),
]
