"""The kqi database on SQLite and on a real PostgreSQL: migrations, seeding, accounts core,
the authenticator's password check and lockout."""

import asyncio

import pytest
from sqlalchemy import text

from kqi_services.accounts import lockout
from kqi_services.accounts import users as accounts
from kqi_services.accounts.secretbox import SecretBox
from kqi_services.db import (
    DatabaseSchemaMismatch,
    check_db_revision,
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade,
)
from kqi_services.errors import Conflict, InvalidInput
from kqi_services.hub.authenticator import KqiAuthenticator
from kqi_services.jobs.nodes import NodeCapacity
from kqi_services.orm import Role, Tenant, User, utcnow
from kqi_services.seed import ensure_admin, seed_defaults

pytestmark = pytest.mark.db


@pytest.fixture
def session(db_url, tmp_path):
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory() as db:
        seed_defaults(db, SecretBox.from_key_file(str(tmp_path / "key")), NodeCapacity("n1", 2, 4), str(tmp_path))
        db.commit()
    yield factory
    engine.dispose()


def test_upgrade_creates_the_schema_at_head(db_url):
    engine = make_engine(db_url)
    with pytest.raises(DatabaseSchemaMismatch, match="kqi-hub upgrade-db"):
        check_db_revision(engine)
    upgrade(db_url)
    assert current_revision(engine) == head_revision()
    check_db_revision(engine)
    upgrade(db_url)  # a second upgrade is a no-op
    engine.dispose()


def test_seed_is_idempotent_and_ids_continue_after_it(session, tmp_path):
    with session() as db:
        seed_defaults(db, SecretBox.from_key_file(str(tmp_path / "key")), NodeCapacity("n1", 2, 4), str(tmp_path))
        assert ensure_admin(db, "Admin", "admin-pass-1") is None  # a given password is not echoed
        first_hash = User.find_by_name(db, "admin").password_hash
        assert ensure_admin(db, "admin", "other-pass-1") is None
        db.commit()
        assert User.find_by_name(db, "admin").password_hash == first_hash
        assert db.execute(text("SELECT COUNT(*) FROM roles")).scalar() == 3
        assert db.execute(text("SELECT COUNT(*) FROM tenants")).scalar() == 1
        # seeded rows carry explicit ids; new rows must not collide with them (PostgreSQL sequences)
        db.add(Role(name="viewer", display_name="Viewer", sort_order=300))
        db.commit()
        assert db.scalar(text("SELECT MAX(id) FROM roles")) == 4


def test_generated_admin_password_is_returned_once_and_stored_hashed(session):
    with session() as db:
        generated = ensure_admin(db, "root2", None)
        db.commit()
        user = User.find_by_name(db, "ROOT2")
        assert generated and user.password_hash.startswith("$2") and generated not in user.password_hash
        assert ensure_admin(db, "root2", None) is None


def test_accounts_core_rolls_back_cleanly(session):
    with session() as db:
        body = {"tenantName": "team-a", "displayName": "A", "gitIds": [1], "registryIds": [1], "storageId": 1}
        tenant = accounts.create_tenant(db, body, "tester")
        user = accounts.create_user(db, {"name": "Carol", "password": "carol-pass-1",
                                         "tenants": [{"id": tenant.id, "roles": [2, 3]}]}, "tester")
        db.commit()
        assert user.name == "carol" and user.default_membership.tenant_id == tenant.id
        with pytest.raises(Conflict):
            accounts.create_tenant(db, body, "tester")
        db.rollback()
        with pytest.raises(InvalidInput):
            accounts.update_user(db, user, {"tenants": [{"id": tenant.id, "roles": [1]}]}, "tester")
        db.rollback()
        db.refresh(user)
        assert user.membership(tenant.id).roles == [2, 3]
        assert accounts.delete_tenant(db, tenant) == ["carol"]
        db.commit()
        assert Tenant.find_by_name(db, "team-a") is None
        db.refresh(user)
        assert user.memberships == []


def test_authenticator_checks_hashes_and_locks_out(session, db_url):
    with session() as db:
        accounts.create_user(db, {"name": "dave", "password": "dave-pass-1", "tenants": [{"id": 1}]}, "t")
        db.commit()
    auth = KqiAuthenticator(db_url=db_url, max_failed_logins=3, lockout_seconds=600)

    def login(password, name="Dave"):
        return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))

    assert login("dave-pass-1") == {"name": "dave", "admin": False}
    assert login("nope") is None and login("nope") is None
    assert login("dave-pass-1") is not None  # a success resets the count
    for _ in range(3):
        assert login("nope") is None
    assert login("dave-pass-1") is None  # locked, even with the right password
    with session() as db:  # stored per (user, source address); no request here: address ""
        assert lockout.locked_until(db, User.find_by_name(db, "dave").id, "", utcnow()) is not None
    assert login("x", name="nobody-here") is None
    assert asyncio.run(auth.authenticate(None, {"username": "dave"})) is None


def test_platform_runs_on_postgresql(start_platform, postgres_server, tmp_path):
    from conftest import create_pg_database

    url = create_pg_database(postgres_server)
    p = start_platform(str(tmp_path / "pg-state"), extra_env={"KQI_DB_URL": url})
    admin = p.api().login("admin", p.admin_password)
    r = admin.post("/admin/tenants", {"tenantName": "pg-team", "displayName": "PG", "gitIds": [1],
                                      "registryIds": [1], "storageId": 1})
    assert r.status_code == 201
    r = admin.post("/admin/users", {"name": "pg-user", "password": "pg-user-pass", "tenants": [{"id": r.json()["id"]}]})
    assert r.status_code == 201
    assert p.api().login("pg-user", "pg-user-pass").get("/tenant").json()["name"] == "pg-team"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users ORDER BY id")).scalars().all() == ["admin", "pg-user"]
    engine.dispose()


def test_upgrade_keeps_rows_of_an_older_schema(db_url):
    """A database at revision 0001 (accounts only) upgrades to head with its rows intact."""
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO storage_endpoints (id, name, kind, server_url, access_key, "
                          "secret_key_encrypted, nfs_server, nfs_root, created_at, modified_at) VALUES "
                          "(1, 'local', 'local', 'file:///x', '', :s, '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                     {"s": b""})
        conn.execute(text("INSERT INTO tenants (id, name, display_name, storage_id, "
                          "available_infinite_time_notebook, quota_cpu, quota_memory, quota_gpu, created_at, "
                          "modified_at) VALUES (1, 'old', 'Old', 1, false, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade(db_url)
    check_db_revision(engine)
    with make_session_factory(engine)() as db:
        assert Tenant.find_by_name(db, "old").display_name == "Old"
        db.execute(text("SELECT COUNT(*) FROM data_files")).scalar()
    engine.dispose()


def test_a_used_dataset_keeps_its_entries(session):
    from kqi_services.catalog import data as data_core
    from kqi_services.catalog import datasets as dataset_core

    with session() as db:
        tenant = Tenant.find_by_name(db, "default")
        d = data_core.create_data(db, tenant, {"name": "d"}, "t")
        ds = dataset_core.create_dataset(db, tenant, {"name": "ds", "entries": {"training": [{"id": d.id}]}}, "t")
        dataset_core.mark_used(ds)
        db.commit()
        with pytest.raises(Conflict, match="used by a run"):
            dataset_core.replace_entries(db, tenant, ds, {"entries": {"testing": [{"id": d.id}]}}, "t")
        db.rollback()
        dataset_core.edit_meta(ds, {"name": "renamed", "memo": "still editable"}, "t")
        db.commit()
        assert ds.name == "renamed" and [e.data_type_id for e in ds.entries] == [1]
        with pytest.raises(Conflict):
            dataset_core.delete_dataset(db, ds)
        with pytest.raises(Conflict):
            data_core.delete_data(db, d)
