"""The service's cache of "which user is this token?" answers, bounded by the token's own expiry.

HubAuth's cache keeps an answer for ``cache_max_age`` seconds whatever the
token's lifetime, so an expired or revoked token went on working for up to
a minute. Here an answer is reused only while

* it is younger than ``revalidate_seconds`` (a token revoked in the hub
  directly, ``DELETE /hub/api/users/NAME/tokens/ID``, is refused at most
  that long after; the hub has no revocation event to listen to), and
* the token has not expired: its ``expires_at`` is read once from the hub's
  token model (``GET /users/NAME/tokens/ID``, the ``token_id`` the hub's
  ``/user`` answer names) and the cached answer ends exactly then.

A token in steady use is asked about again in the background shortly before
its answer ages out (``refresh_ahead_seconds``), so its requests do not wait
on the hub; that answer too is aged from its own question.

``forget()`` drops every answer (the service's own revocations: password
change and reset, deleted users, ended runs). A lookup that was in flight
while ``forget()`` ran does not store its answer, so a revocation cannot be
undone by a request that raced it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from traitlets import Float, Integer
from traitlets.config import Configurable

from kqi_services.accounts.tokens import token_hash
from kqi_services.hub.api import HubAPIError


def parse_expiry(value) -> float | None:
    """The hub's ``expires_at`` (ISO 8601, UTC, ``Z`` or naive) as epoch seconds; None when it never expires."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class _Answer:
    model: dict | None
    checked_at: float  # time.monotonic() when the hub was asked
    expires_at: float | None  # epoch seconds of the token's expiry, None: never
    token_id: str | None

    def usable(self, max_age: float, now_monotonic: float, now_wall: float) -> bool:
        if now_monotonic - self.checked_at >= max_age:
            return False
        return self.expires_at is None or now_wall < self.expires_at


class IdentityCache(Configurable):
    """Token → hub user model answers, reused for a short while and never past the token's expiry."""

    #: where the cache lives: on the HubAuth object, so whoever holds that can forget it
    ATTRIBUTE = "_kqi_identity_cache"

    revalidate_seconds = Float(
        5.0,
        help="""How long the hub's answer for a token is reused before the hub is asked again.
        This is the longest a token revoked in the hub directly (its token page or
        DELETE /hub/api/users/NAME/tokens/ID) keeps opening the kqi API; a token's expiry
        and the service's own revocations (password change or reset) take effect at once.
        0 asks the hub on every request. Example: 2.5""",
    ).tag(config=True)

    refresh_ahead_seconds = Float(
        1.0,
        help="""A request whose token's answer is this close to ``revalidate_seconds`` old uses it and asks
        the hub again in the background, so a token in steady use rarely waits on the hub. The new
        answer is aged from its own question: the revalidation window and the token's expiry hold
        exactly as without it. 0 turns it off (the first request past the window waits on the hub).
        Example: 2""",
    ).tag(config=True)

    max_entries = Integer(
        10000, help="Most answers kept; beyond it the oldest go first (garbage tokens cannot grow it)."
    ).tag(config=True)

    def __init__(self, hub_auth, hub_api, **kwargs):
        super().__init__(**kwargs)
        self.hub_auth = hub_auth
        self.hub_api = hub_api
        self._answers: dict[str, _Answer] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._generation = 0

    @classmethod
    def of(cls, hub_auth, hub_api, **kwargs) -> IdentityCache:
        """The one cache of this HubAuth, made on first use."""
        cache = getattr(hub_auth, cls.ATTRIBUTE, None)
        if cache is None:
            cache = cls(hub_auth, hub_api, **kwargs)
            setattr(hub_auth, cls.ATTRIBUTE, cache)
        return cache

    def forget(self) -> None:
        """Drop every answer, and any answer still on its way (later requests ask the hub anew)."""
        self._answers.clear()
        self._pending.clear()
        self._generation += 1

    async def identify(self, token: str, *, fresh: bool = False) -> dict | None:
        """The hub's user model for ``token`` (with ``token_id``), or None when the hub refuses it.

        Concurrent requests with the same token share one question to the hub.
        ``fresh`` asks the hub again whatever is cached.
        """
        key = token_hash(token)
        known = self._answers.get(key)
        now = time.monotonic()
        if not fresh and known is not None and known.usable(self.revalidate_seconds, now, time.time()):
            if (known.model is not None and 0 < self.refresh_ahead_seconds
                    and now - known.checked_at >= self.revalidate_seconds - self.refresh_ahead_seconds
                    and key not in self._pending):
                # the hub's refusal or failure is for the first request past the window to meet
                self._question(token, key, known).add_done_callback(lambda done: done.cancelled() or done.exception())
            return known.model
        pending = None if fresh else self._pending.get(key)
        if pending is None:
            pending = self._question(token, key, known, shared=not fresh)
        return await asyncio.shield(pending)

    def _question(self, token: str, key: str, known: _Answer | None, shared: bool = True) -> asyncio.Future:
        """Ask the hub about ``token``; a shared question is joined by the requests that come meanwhile."""
        pending = asyncio.ensure_future(self._ask_hub(token, key, known))
        if shared:
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._pending.pop(key, None)
                                      if self._pending.get(key) is done else None)
        return pending

    async def _ask_hub(self, token: str, key: str, known: _Answer | None) -> dict | None:
        generation, asked_at = self._generation, time.monotonic()
        model = await self.hub_auth.user_for_token(token, use_cache=False, sync=False)
        expires_at, token_id = None, None
        if model and model.get("kind", "user") == "user" and model.get("token_id"):
            token_id = model["token_id"]
            if known is not None and known.token_id == token_id:
                expires_at = known.expires_at  # a token's expiry never changes
            else:
                found, expires_at = await self._token_expiry(model["name"], token_id)
                if not found:  # revoked between the two questions
                    model = None
        if expires_at is not None and time.time() >= expires_at:
            model = None
        if generation == self._generation:
            # aged from the question, so the answer is never reused past revalidate_seconds after the hub gave it
            self._store(key, _Answer(model, asked_at, expires_at, token_id))
        return model

    async def _token_expiry(self, user_name: str, token_id: str) -> tuple[bool, float | None]:
        """(whether the hub still has the token, its expiry in epoch seconds or None)."""
        try:
            model = await self.hub_api.request("GET", f"/users/{quote(user_name)}/tokens/{quote(token_id)}")
        except HubAPIError as e:
            if e.status == 404:
                return False, None
            raise
        return True, parse_expiry((model or {}).get("expires_at"))

    def _store(self, key: str, answer: _Answer) -> None:
        self._answers.pop(key, None)
        if len(self._answers) >= self.max_entries:
            now_m, now_w = time.monotonic(), time.time()
            for stale in [k for k, a in self._answers.items() if not a.usable(self.revalidate_seconds, now_m, now_w)]:
                del self._answers[stale]
            while len(self._answers) >= self.max_entries:
                del self._answers[next(iter(self._answers))]
        self._answers[key] = answer
