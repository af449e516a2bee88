"""Tokens of the kqi API: hub tokens bound to one tenant each, and their revocation.

A token is a JupyterHub API token of the user (so it also opens the user's
notebooks through the hub); the kqi database keeps which tenant it selects,
keyed by the token's SHA-256, never the token itself.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete

from .errors import InvalidInput
from .hubapi import HubAPI
from .orm import TokenTenant, User, utcnow

#: notes of the tokens JupyterHub gives running servers; revocation spares them
SERVER_TOKEN_NOTE_PREFIX = "Server at "


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_lifetime(requested, default: int, maximum: int) -> int:
    """Seconds a new token lives: the request, else the default, never beyond the cap."""
    if requested is None:
        requested = default
    if isinstance(requested, bool) or not isinstance(requested, int) or requested <= 0:
        raise InvalidInput("expiresIn must be a positive number of seconds")
    return min(requested, maximum)


def bind_token(db, user: User, tenant_id: int, token: str, hub_token_id: str | None, lifetime: int | None):
    """Record (or move) the tenant a token selects."""
    digest = token_hash(token)
    row = db.get(TokenTenant, digest) or TokenTenant(token_hash=digest)
    row.user_id = user.id
    row.tenant_id = tenant_id
    row.hub_token_id = hub_token_id or row.hub_token_id
    if lifetime is not None:
        row.expires_at = utcnow() + timedelta(seconds=lifetime)
    db.merge(row)
    return row


async def revoke_user_tokens(hub: HubAPI, db, user: User, hub_auth=None) -> int:
    """Revoke every API and OAuth token of a user but those of running servers.

    Used on password change and admin reset. Returns how many were revoked.
    """
    revoked = 0
    for token in await hub.list_tokens(user.name):
        if (token.get("note") or "").startswith(SERVER_TOKEN_NOTE_PREFIX):
            continue
        await hub.delete_token(user.name, token["id"])
        revoked += 1
    db.execute(delete(TokenTenant).where(TokenTenant.user_id == user.id))
    if hub_auth is not None:
        forget_cached_identities(hub_auth)
    return revoked


def forget_cached_identities(hub_auth) -> None:
    """Drop the service's cache of token → user answers, so revoked tokens stop at once."""
    cache = hub_auth.cache
    cache.values.clear()
    cache.timestamps.clear()
