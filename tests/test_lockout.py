"""Attacks on the login lockout: nobody may lock a user out from another address.

Failures count per (user, source address) with back-off; the source address
is the one the nearest untrusted hop has in ``X-Forwarded-For`` (tests reach
the proxy from 127.0.0.1, a trusted hop, so the address they name stands for
a client behind a proxy).
"""

import asyncio
import sqlite3
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import update

from kqi_services import accounts, lockout
from kqi_services.authenticator import KqiAuthenticator
from kqi_services.db import make_engine, make_session_factory, upgrade
from kqi_services.orm import User, utcnow
from kqi_services.passwords import client_address, lock_duration

TRUSTED = ["127.0.0.1", "::1"]
A, B = "198.51.100.7", "203.0.113.9"


# whose address counts -------------------------------------------------------------------


def test_only_trusted_hops_name_the_client():
    assert client_address(A, f"{B}", TRUSTED) == A  # an untrusted peer's header is not believed
    assert client_address("127.0.0.1", f"{B}, {A}", TRUSTED) == A  # the proxy appended A; B is A's claim
    assert client_address("127.0.0.1", f"{B}, {A}, 127.0.0.1", TRUSTED) == A  # proxy, then the kqi service
    assert client_address("127.0.0.1", None, TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", "127.0.0.1, ::1", TRUSTED) == "127.0.0.1"  # all local
    assert client_address("127.0.0.1", f"{A}, not-an-address", TRUSTED) == "127.0.0.1"
    assert client_address("::ffff:127.0.0.1", f"{A}", TRUSTED) == A  # IPv4-mapped loopback is loopback
    assert client_address("10.1.2.3", f"{B}", ["10.0.0.0/8"]) == B  # a trusted ingress network
    assert client_address("", None, TRUSTED) == ""


def test_back_off_doubles_up_to_its_cap():
    assert [lock_duration(60, n, 3600) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert lock_duration(60, 3) == 60  # no cap given: no back-off, as before
    assert lock_duration(60, 10**6, 3600) == 3600


# the authenticator on a real database --------------------------------------------------------------


@pytest.fixture
def auth_db(tmp_path):
    url = "sqlite:///" + str(tmp_path / "kqi.sqlite")
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as db:
        db.add(User(name="erin", password_hash=accounts.hash_password("erin-pass-1")))
        db.commit()
    yield url, factory
    engine.dispose()


def from_address(address: str, peer: str = "127.0.0.1"):
    """A stand-in for the hub's request handler: a request from ``peer`` naming ``address``."""
    request = SimpleNamespace(remote_ip=peer, headers={"X-Forwarded-For": address},
                              connection=SimpleNamespace(context=SimpleNamespace(_orig_remote_ip=peer)))
    return SimpleNamespace(request=request)


def login(auth, password, address):
    return asyncio.run(auth.authenticate(from_address(address), {"username": "Erin", "password": password}))


def row(factory, address):
    with factory() as db:
        user = User.find_by_name(db, "erin")
        return db.get(lockout.LoginFailure, (user.id, address))


def test_failures_from_one_address_lock_only_that_address_with_back_off(auth_db):
    url, factory = auth_db
    auth = KqiAuthenticator(db_url=url, max_failed_logins=5, lockout_seconds=60, lockout_max_seconds=3600)
    for _ in range(5):
        assert login(auth, "wrong-guess", A) is None
    assert login(auth, "erin-pass-1", A) is None  # locked from A, even with the right password
    assert login(auth, "erin-pass-1", B) == {"name": "erin", "admin": False}  # B is not
    first = row(factory, A)
    assert first.locks == 1 and first.locked_until - first.last_failure_at == timedelta(seconds=60)

    # a hub restart (a new authenticator) keeps the lock
    again = KqiAuthenticator(db_url=url, max_failed_logins=5, lockout_seconds=60, lockout_max_seconds=3600)
    assert login(again, "erin-pass-1", A) is None

    # when the lock is over, five more failures lock A twice as long
    with factory() as db:
        db.execute(update(lockout.LoginFailure).values(locked_until=utcnow() - timedelta(seconds=1)))
        db.commit()
    for _ in range(5):
        assert login(again, "wrong-guess", A) is None
    second = row(factory, A)
    assert second.locks == 2 and second.locked_until - second.last_failure_at == timedelta(seconds=120)

    # a success from A, once allowed, ends A's back-off; a new password clears every address
    with factory() as db:
        db.execute(update(lockout.LoginFailure).values(locked_until=utcnow() - timedelta(seconds=1)))
        db.commit()
    assert login(again, "erin-pass-1", A) is not None and row(factory, A) is None
    assert login(again, "wrong-guess", B) is None and row(factory, B).failures == 1
    with factory() as db:
        accounts.set_password(User.find_by_name(db, "erin"), "erin-pass-2", "admin")
        db.commit()
    assert row(factory, B) is None


def test_a_burst_of_parallel_guesses_is_checked_one_by_one(auth_db):
    """Five wrong guesses and the right password sent at once: the lock comes before the sixth check."""
    url, factory = auth_db
    auth = KqiAuthenticator(db_url=url, max_failed_logins=5, lockout_seconds=60)

    async def burst():
        guesses = ["wrong-guess"] * 5 + ["erin-pass-1"]
        return await asyncio.gather(*(auth.authenticate(from_address(A), {"username": "erin", "password": p})
                                      for p in guesses))

    assert asyncio.run(burst()) == [None] * 6
    assert row(factory, A).locks == 1


def test_quiet_addresses_are_forgotten(auth_db):
    url, factory = auth_db
    auth = KqiAuthenticator(db_url=url, forget_failures_after_seconds=3600)
    assert login(auth, "wrong-guess", A) is None
    with factory() as db:
        db.execute(update(lockout.LoginFailure).values(last_failure_at=utcnow() - timedelta(hours=2)))
        db.commit()
    assert login(auth, "wrong-guess", B) is None  # any failure purges the quiet rows
    assert row(factory, A) is None and row(factory, B) is not None


# through the platform: the hub's proxy, the kqi login API and the hub's own token API ------------------


def kqi_login(platform, user, password, address, **headers):
    return requests.post(platform.api_base + "/account/login", json={"userName": user, "password": password},
                         headers={"X-Forwarded-For": address, **headers}, timeout=60)


def hub_token(platform, user, password, address):
    return requests.post(f"{platform.url}/hub/api/users/{user}/tokens", headers={"X-Forwarded-For": address},
                         json={"auth": {"username": user, "password": password}, "note": "lockout test"},
                         timeout=60)


@pytest.mark.platform
def test_five_failures_from_one_address_do_not_lock_the_user_out_elsewhere(platform, new_tenant, new_user):
    user = new_user([{"id": new_tenant()["id"]}])
    name, password = user["name"], user["password"]
    for _ in range(5):  # the attacker at A, claiming B's address in X-Real-Ip
        assert kqi_login(platform, name, "wrong-guess", A, **{"X-Real-Ip": B}).status_code == 401
    # the user at B logs in, through the kqi API and the hub's own token API
    r = kqi_login(platform, name, password, B)
    assert r.status_code == 200, r.text
    assert hub_token(platform, name, password, B).status_code == 201
    # A is locked out, even with the right password, on both ways in
    assert kqi_login(platform, name, password, A).status_code == 401
    assert hub_token(platform, name, password, A).status_code == 403
    # with back-off: the first lock lasts lockout_seconds (60 s), the next ones twice the one before
    with sqlite3.connect(platform.state_dir + "/kqi.sqlite") as conn:
        locks, until, last = conn.execute(
            "SELECT f.locks, f.locked_until, f.last_failure_at FROM login_failures f JOIN users ON users.id = user_id "
            "WHERE users.name = ? AND source_address = ?", (name, A)).fetchone()
        assert conn.execute("SELECT COUNT(*) FROM login_failures JOIN users ON users.id = user_id "
                            "WHERE users.name = ? AND source_address = ?", (name, B)).fetchone() == (0,)
    assert locks == 1
    assert datetime.fromisoformat(until) - datetime.fromisoformat(last) == timedelta(seconds=60)
