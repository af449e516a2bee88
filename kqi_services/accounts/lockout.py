"""Failed logins per (user, source address): the rows behind the lockout and its back-off.

One row per user and address that failed recently: ``failures`` since the
last lock, ``locks`` since the last success (each lock lasts twice the one
before, see ``passwords.after_failure``), ``locked_until``. A success from
an address deletes that address's row and no other, so a user locked out
from an attacker's address still logs in from their own. Rows of addresses
quiet for ``forget_after`` are purged; a deleted user's rows go with it.

Kept in the kqi database so a hub restart does not reset the count. The
KqiAuthenticator (inside the hub) is the only writer, and it serialises the
attempts of one pair, so a read-then-write here cannot lose a failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from kqi_services.accounts.passwords import after_failure, is_locked
from kqi_services.orm import Base, utcnow

#: an IPv6 address with a zone is at most 45 + a few characters
ADDRESS_LENGTH = 64


class LoginFailure(Base):
    """Recent failed logins of one user from one source address."""

    __tablename__ = "login_failures"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    source_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locks: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def _row(db, user_id: int, address: str) -> LoginFailure | None:
    return db.get(LoginFailure, (user_id, address[:ADDRESS_LENGTH]))


def locked_until(db, user_id: int, address: str, now: datetime) -> datetime | None:
    """Until when logins of this user from this address are refused, None when they are not."""
    row = _row(db, user_id, address)
    if row is not None and is_locked(row.locked_until, now):
        return row.locked_until
    return None


def current_locks(db, now: datetime) -> dict[int, list[dict]]:
    """Every user's locked source addresses now: user id → [{address, lockedUntil}] (the admin's users list)."""
    locks: dict[int, list[dict]] = {}
    for row in db.scalars(select(LoginFailure).where(LoginFailure.locked_until > now)
                          .order_by(LoginFailure.user_id, LoginFailure.source_address)):
        locks.setdefault(row.user_id, []).append(
            {"address": row.source_address, "lockedUntil": row.locked_until.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return locks


def record_failure(db, user_id: int, address: str, now: datetime, *, max_failures: int, lock_seconds: int,
                   max_lock_seconds: int) -> datetime | None:
    """Count one failed login; return the end of the lock it caused, if it caused one."""
    row = _row(db, user_id, address)
    if row is None:
        row = LoginFailure(user_id=user_id, source_address=address[:ADDRESS_LENGTH], failures=0, locks=0)
        db.add(row)
    row.failures, row.locked_until = after_failure(row.failures, now, max_failures, lock_seconds,
                                                   row.locks, max_lock_seconds)
    if row.locked_until is not None:
        row.locks += 1
    row.last_failure_at = now
    return row.locked_until


def record_success(db, user_id: int, address: str) -> None:
    """A right password from this address: its count and back-off start again."""
    db.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id,
                                          LoginFailure.source_address == address[:ADDRESS_LENGTH]))


def forget_user(db, user_id: int) -> None:
    """Every address's count of a user goes (a new password was set)."""
    db.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id))


def purge_quiet(db, now: datetime, forget_after: timedelta) -> None:
    """Rows of addresses that have not failed for ``forget_after`` and are not locked go."""
    cutoff = now - forget_after
    db.execute(delete(LoginFailure).where(LoginFailure.last_failure_at < cutoff,
                                          or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until < now)))
