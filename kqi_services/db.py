"""Engine, sessions and schema upgrades of the kqi database.

The URL is configuration: a SQLite file under the state directory by default,
PostgreSQL (``postgresql+psycopg://…``) at scale. The schema is created and
upgraded only by Alembic, from the first table on.
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


class DatabaseSchemaMismatch(Exception):
    """The database is at another schema revision than this code expects."""


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on, a WAL journal and a pool that never waits.

    The service runs its handlers on one event loop thread, and a request's
    session keeps its connection while the handler awaits (the hub, a worker
    thread). A pool that makes a checkout wait for a free connection would
    block that thread, and with it every handler that could give one back:
    50 clients stalled the service for the pool's whole 30 s timeout. An
    SQLite connection to a file costs little, so a file database gets as many
    as are asked for at once (the first ``pool_size`` of them kept for reuse).
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        if make_url(url).database not in (None, "", ":memory:"):
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", -1)
    engine = create_engine(url, future=True, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_con, con_record):
            cursor = dbapi_con.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no corruption on a crash; a power cut may lose the last commits
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def check_db_revision(engine: Engine) -> None:
    """Raise DatabaseSchemaMismatch unless the schema is at this code's head.

    The message says how to upgrade, as ``jupyterhub upgrade-db`` does.
    """
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise DatabaseSchemaMismatch(
            f"The kqi database is at schema revision {current!r}, this code expects {head!r}. "
            "Back it up, then run `kqi-hub upgrade-db` (kqi-hub does this at start)."
        )
