"""Attacks on the identity cache: expired and hub-revoked tokens must stop opening the kqi API.

The service reuses the hub's "which user is this token" answer for at most
``IdentityCache.revalidate_seconds`` (5 s) and never past the token's
``expires_at``; these tests keep using a token after its end and measure
how long it still works.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from kqi_services.hub.identities import IdentityCache, parse_expiry

#: IdentityCache.revalidate_seconds' default: the window stated for tokens revoked in the hub directly
REVOCATION_WINDOW = 5.0


def refused_after(api, started: float, limit: float) -> float:
    """Seconds from ``started`` until ``api``'s token is refused (401); fail if still accepted after ``limit``."""
    while True:
        status = api.get("/account").status_code
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed < limit, f"the token still opened the API {elapsed:.1f}s after its end"
        time.sleep(0.1)


@pytest.mark.platform
def test_a_short_token_is_refused_right_after_it_expires(platform, new_tenant, new_user):
    user = new_user([{"id": new_tenant()["id"]}])
    r = platform.api().post("/account/login", {"userName": user["name"], "password": user["password"],
                                               "expiresIn": 3})
    assert r.status_code == 200 and r.json()["expiresIn"] == 3
    issued = time.monotonic()
    api = platform.api(r.json()["token"])
    assert api.get("/account").status_code == 200  # the answer is cached now
    time.sleep(max(0.0, 3.0 - (time.monotonic() - issued)))
    # the hub's expiry is 3 s after it issued the token, a moment before our clock started
    assert refused_after(api, issued, 3.0 + 1.0) <= 3.5


@pytest.mark.platform
@pytest.mark.parametrize("revoker", ["user", "admin"])
def test_a_token_revoked_in_the_hub_is_refused_within_the_window(platform, admin, new_tenant, new_user, revoker):
    user = new_user([{"id": new_tenant()["id"]}])
    api = platform.api().login(user["name"], user["password"])
    assert api.get("/account").status_code == 200  # the answer is cached now
    hub = platform.url + "/hub/api"
    own = {"Authorization": f"token {api.token}"}
    tokens = requests.get(f"{hub}/users/{user['name']}/tokens", headers=own, timeout=10).json()["api_tokens"]
    (login_token,) = [t for t in tokens if t["note"] == "kqi login"]
    by = own if revoker == "user" else {"Authorization": f"token {admin.token}"}
    r = requests.delete(f"{hub}/users/{user['name']}/tokens/{login_token['id']}", headers=by, timeout=10)
    assert r.status_code == 204
    revoked = time.monotonic()
    assert requests.get(f"{hub}/user", headers=own, timeout=10).status_code == 403  # the hub refuses it at once
    assert refused_after(api, revoked, REVOCATION_WINDOW + 1.5) <= REVOCATION_WINDOW + 1.0


def test_the_stated_window_is_the_default():
    assert IdentityCache(None, None).revalidate_seconds == REVOCATION_WINDOW


def test_hub_expiry_format():
    assert parse_expiry(None) is None
    assert parse_expiry("2026-01-01T00:00:03.500000Z") == parse_expiry("2026-01-01T00:00:03.500000") == 1767225603.5


class FakeHub:
    """A hub whose /user answer can be held back, and whose tokens live until ``expires_at``."""

    def __init__(self, expires_at=None):
        self.expires_at = expires_at
        self.valid = True
        self.release = asyncio.Event()
        self.release.set()
        self.asked = 0

    async def user_for_token(self, token, use_cache=True, sync=True):
        assert use_cache is False
        self.asked += 1
        await self.release.wait()
        return {"kind": "user", "name": "u", "token_id": "a1"} if self.valid else None

    async def request(self, method, path):
        assert (method, path) == ("GET", "/users/u/tokens/a1")
        return {"expires_at": self.expires_at}


async def test_an_answer_in_flight_during_a_revocation_is_not_kept():
    hub = FakeHub()
    cache = IdentityCache(hub, hub)
    assert await cache.identify("t") is not None and hub.asked == 1
    assert await cache.identify("t") is not None and hub.asked == 1  # reused
    hub.release.clear()
    slow = asyncio.ensure_future(cache.identify("t", fresh=True))
    await asyncio.sleep(0.01)
    cache.forget()  # a revocation while the question is on its way
    hub.release.set()
    assert await slow is not None  # the hub answered before it knew
    hub.valid = False
    assert await cache.identify("t") is None and hub.asked == 3  # not reused: asked again


async def test_an_answer_ends_with_the_token():
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    hub = FakeHub(expires_at=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    cache = IdentityCache(hub, hub, revalidate_seconds=60)
    assert await cache.identify("t") is not None
    assert await cache.identify("t") is not None and hub.asked == 1
    await asyncio.sleep(0.35)
    hub.valid = False  # the hub refuses expired tokens
    assert await cache.identify("t") is None and hub.asked == 2


async def test_concurrent_requests_with_one_token_ask_the_hub_once():
    hub = FakeHub()
    cache = IdentityCache(hub, hub)
    hub.release.clear()
    answers = asyncio.gather(*(cache.identify("t") for _ in range(20)))
    await asyncio.sleep(0.01)
    hub.release.set()
    assert all(a is not None for a in await answers) and hub.asked == 1


async def test_a_token_in_steady_use_is_asked_about_ahead_of_the_window():
    hub = FakeHub()
    cache = IdentityCache(hub, hub, revalidate_seconds=1.0, refresh_ahead_seconds=0.6)
    assert await cache.identify("t") is not None and hub.asked == 1
    await asyncio.sleep(0.5)
    hub.release.clear()  # the hub is slow: the request does not wait for it
    assert await asyncio.wait_for(cache.identify("t"), 0.05) is not None
    await asyncio.sleep(0.01)
    assert hub.asked == 2
    hub.valid = False  # revoked before the hub answered the question asked ahead
    hub.release.set()
    await asyncio.sleep(0.01)
    assert await cache.identify("t") is None and hub.asked == 2  # that answer is used at once


async def test_past_the_window_a_request_waits_for_the_question_asked_ahead():
    hub = FakeHub()
    cache = IdentityCache(hub, hub, revalidate_seconds=1.0, refresh_ahead_seconds=0.6)
    assert await cache.identify("t") is not None
    await asyncio.sleep(0.5)
    hub.release.clear()
    assert await cache.identify("t") is not None  # the old answer, and a question asked ahead
    await asyncio.sleep(0.01)
    assert hub.asked == 2
    await asyncio.sleep(0.6)  # the old answer is past the window now
    late = asyncio.ensure_future(cache.identify("t"))
    await asyncio.sleep(0.05)
    assert not late.done()  # never the old answer
    hub.valid = False
    hub.release.set()
    assert await late is None and hub.asked == 2  # it joined the question asked ahead


async def test_a_question_asked_ahead_during_a_revocation_is_not_kept():
    hub = FakeHub()
    cache = IdentityCache(hub, hub, revalidate_seconds=1.0, refresh_ahead_seconds=0.6)
    assert await cache.identify("t") is not None
    await asyncio.sleep(0.5)
    hub.release.clear()
    assert await cache.identify("t") is not None
    await asyncio.sleep(0.01)
    assert hub.asked == 2
    cache.forget()
    hub.release.set()
    await asyncio.sleep(0.01)
    hub.valid = False
    assert await cache.identify("t") is None and hub.asked == 3
