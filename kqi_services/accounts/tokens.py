"""Tokens of the kqi API: hub tokens bound to one tenant each, run tokens, and their revocation.

A login token is a JupyterHub API token of the user (so it also opens the
user's notebooks through the hub); the kqi database keeps which tenant it
selects, keyed by the token's SHA-256, never the token itself.

A run token (``KQI_TOKEN`` inside a job) is the service's own: ``kqirun_``
plus 256 random bits, valid for the kqi API only, in the run's tenant, until
the run ends. It lives only as its SHA-256 in the same table (marked
``run``), so issuing and revoking one costs a row, not two hub requests.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete

from kqi_services.errors import InvalidInput
from kqi_services.hub.api import HubAPI
from kqi_services.orm import TokenTenant, User, utcnow

#: notes of the tokens JupyterHub gives running servers; revocation spares them
SERVER_TOKEN_NOTE_PREFIX = "Server at "
RUN_TOKEN_PREFIX = "kqirun_"
RUN_TOKEN_MARK = "run"


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


def issue_run_token(db, user: User, tenant_id: int, lifetime: int) -> tuple[str, str]:
    """A new run token for ``user`` in ``tenant_id``: (the token, its SHA-256 to revoke it by)."""
    token = RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = bind_token(db, user, tenant_id, token, RUN_TOKEN_MARK, lifetime)
    return token, row.token_hash


def run_token_owner(db, token: str):
    """(user, tenant) of a live run token, else None (unknown, revoked, expired, or no longer a member)."""
    row = db.get(TokenTenant, token_hash(token))
    if row is None or row.hub_token_id != RUN_TOKEN_MARK or (row.expires_at and row.expires_at <= utcnow()):
        return None
    user = db.get(User, row.user_id)
    if user is None or user.membership(row.tenant_id) is None:
        return None
    return user, user.membership(row.tenant_id).tenant


def revoke_run_token(db, digest: str) -> None:
    db.execute(delete(TokenTenant).where(TokenTenant.token_hash == digest,
                                         TokenTenant.hub_token_id == RUN_TOKEN_MARK))


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
    """Drop the service's token → user answers (``identities`` and HubAuth's own), so revoked tokens stop at once."""
    from kqi_services.hub.identities import IdentityCache  # it imports this module

    cached = getattr(hub_auth, IdentityCache.ATTRIBUTE, None)
    if cached is not None:
        cached.forget()
    cache = hub_auth.cache
    cache.values.clear()
    cache.timestamps.clear()
