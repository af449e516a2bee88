"""Attacks on the login lockout: nobody may lock a user out from another address.

Failures count per (user, source address) with back-off. The source address
is the one the hub's own proxy appended to ``X-Forwarded-For`` when the
request really comes from that proxy (checked by process), else the TCP
peer; the platform tests connect from distinct loopback addresses
(127.0.0.2, 127.0.0.3…) to stand for clients at different addresses.
"""

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import update

from kqi_services.accounts import lockout
from kqi_services.accounts import users as accounts
from kqi_services.accounts.passwords import lock_duration
from kqi_services.db import make_engine, make_session_factory, upgrade
from kqi_services.hub.authenticator import KqiAuthenticator
from kqi_services.hub.forwarding import client_address, owned_by, peer_is_one_of, socket_inode
from kqi_services.orm import User, utcnow

A, B = "198.51.100.7", "203.0.113.9"


# whose address counts -------------------------------------------------------------------


def test_only_the_proxy_names_the_client():
    assert client_address(A, B, peer_is_forwarder=False) == A  # a client's own header is not believed
    assert client_address("127.0.0.1", f"{B}, {A}", True) == A  # the proxy appended A; B is A's claim
    assert client_address("127.0.0.1", f"{B}, {A}", False) == "127.0.0.1"  # a local process, not the proxy
    assert client_address("127.0.0.1", None, True) == "127.0.0.1"
    assert client_address("127.0.0.1", f"{A}, not-an-address", True) == "127.0.0.1"
    assert client_address("::ffff:10.0.0.1", None, False) == "10.0.0.1"
    assert client_address("", None, False) == ""


def test_proxies_in_front_are_believed_only_when_listed():
    ingress = ["10.0.0.0/8"]
    assert client_address("127.0.0.1", f"{B}, 10.0.0.5", True) == "10.0.0.5"
    assert client_address("127.0.0.1", f"{A}, {B}, 10.0.0.5", True, ingress) == B
    assert client_address("10.1.2.3", B, False, ingress) == B  # a peer at a listed address forwards too
    assert client_address("127.0.0.1", f"{B}, {A}", False, ingress) == "127.0.0.1"


def test_the_peer_is_checked_by_process_not_by_address(tmp_path):
    """Two processes connect from 127.0.0.1; only the one named in the pid file is the forwarder."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        code = "import socket, sys, time; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); time.sleep(30)"
        children = [subprocess.Popen([sys.executable, "-c", code, str(listener.getsockname()[1])])
                    for _ in range(2)]
        try:
            accepted = [listener.accept()[0] for _ in children]
            pid_file = tmp_path / "proxy.pid"
            for conn in accepted:
                peer = conn.getpeername()
                inode = socket_inode(peer, conn.getsockname())
                assert inode is not None
                owner = next(c for c in children if owned_by(inode, [c.pid]))
                assert not owned_by(inode, [os.getpid()])  # our end is another socket
                pid_file.write_text(str(owner.pid))
                request = SimpleNamespace(connection=SimpleNamespace(
                    context=SimpleNamespace(address=peer), stream=SimpleNamespace(socket=conn)))
                assert peer_is_one_of(request, [str(pid_file)])
                other = next(c for c in children if c is not owner)
                pid_file.write_text(str(other.pid))
                assert not peer_is_one_of(request, [str(pid_file)])
                conn.close()
        finally:
            for c in children:
                c.kill()
                c.wait()


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


def from_address(address: str):
    """A stand-in for the hub's request handler: a request from a client at ``address``."""
    request = SimpleNamespace(remote_ip=address, headers={},
                              connection=SimpleNamespace(context=SimpleNamespace(_orig_remote_ip=address)))
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


class FromAddress(requests.adapters.HTTPAdapter):
    """Connections from one local address (any 127.x.y.z reaches 127.0.0.1 on Linux)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session


def kqi_login(client, base, name, password, **headers):
    return client.post(base + "/services/kqi/api/v2/account/login", json={"userName": name, "password": password},
                       headers=headers, timeout=60)


def hub_token(client, base, name, password, **headers):
    return client.post(f"{base}/hub/api/users/{name}/tokens", headers=headers,
                       json={"auth": {"username": name, "password": password}, "note": "lockout test"}, timeout=60)


def lock_rows(platform, name) -> dict:
    with sqlite3.connect(platform.state_dir + "/kqi.sqlite") as conn:
        rows = conn.execute("SELECT f.source_address, f.locks, f.locked_until, f.last_failure_at "
                            "FROM login_failures f JOIN users ON users.id = f.user_id WHERE users.name = ?",
                            (name,)).fetchall()
    return {r[0]: (r[1], datetime.fromisoformat(r[2]) - datetime.fromisoformat(r[3]) if r[2] else None)
            for r in rows}


@pytest.mark.platform
def test_five_failures_from_one_address_do_not_lock_the_user_out_elsewhere(platform, admin, new_tenant, new_user):
    user = new_user([{"id": new_tenant()["id"]}])
    name, password = user["name"], user["password"]
    attacker, victim, local = client_at("127.0.0.2"), client_at("127.0.0.3"), client_at("127.0.0.1")
    port = int(platform.url.rsplit(":", 1)[1])
    hub_direct, service_direct = f"http://127.0.0.1:{port + 1}", f"http://127.0.0.1:{port + 3}"
    framing = {"X-Forwarded-For": "127.0.0.3", "X-Real-Ip": "127.0.0.3"}
    for _ in range(5):  # the attacker, through the proxy, claiming the victim's address
        assert kqi_login(attacker, platform.url, name, "wrong-guess", **framing).status_code == 401
    for _ in range(5):  # a local process straight to the hub's port and to the service's, claiming it too
        assert hub_token(local, hub_direct, name, "wrong-guess", **framing).status_code == 403
        assert kqi_login(local, service_direct, name, "wrong-guess", **framing).status_code == 401
    # the user at 127.0.0.3 logs in, through the kqi API and the hub's own token API
    r = kqi_login(victim, platform.url, name, password)
    assert r.status_code == 200, r.text
    assert hub_token(victim, platform.url, name, password).status_code == 201
    # the attacker's address is locked out, even with the right password, on both ways in
    assert kqi_login(attacker, platform.url, name, password).status_code == 401
    assert hub_token(attacker, platform.url, name, password).status_code == 403
    # with back-off: the first lock lasts lockout_seconds (60 s), each next one twice the one before
    rows = lock_rows(platform, name)
    assert rows["127.0.0.2"] == (1, timedelta(seconds=60)) and rows["127.0.0.1"][0] == 1
    assert "127.0.0.3" not in rows
    # the admin's users list says which addresses are locked out of the account (the console shows it)
    (listed,) = [u for u in admin.get("/admin/users").json() if u["name"] == name]
    assert sorted(lock["address"] for lock in listed["lockedAddresses"]) == ["127.0.0.1", "127.0.0.2"], listed

