"""bcrypt password hashing and the failed-login lockout rule, with its back-off.

Failures are counted per (user, source address): see ``lockout`` for the
rows and ``forwarding`` for whose address a request is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import bcrypt

# bcrypt only reads the first 72 bytes; longer passwords are refused, not silently cut
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 8


class WeakPassword(ValueError):
    """A password that the platform refuses to store."""


def check_password_rules(password) -> None:
    """Raise WeakPassword with a message a user can act on."""
    if not isinstance(password, str):
        raise WeakPassword("password must be a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_BYTES} bytes")


def hash_password(password: str) -> str:
    check_password_rules(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def verify_password(password, password_hash: str | None) -> bool:
    if not password_hash or not isinstance(password, str):
        return False
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash.encode())


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def lock_duration(lock_seconds: int, locks_before: int, max_lock_seconds: int = 0) -> int:
    """Seconds of the next lock: ``lock_seconds``, doubled for each lock before it, capped at ``max_lock_seconds``."""
    cap = max(max_lock_seconds, lock_seconds) if max_lock_seconds else lock_seconds
    return min(lock_seconds * 2 ** min(locks_before, 32), cap)


def after_failure(failed_logins: int, now: datetime, max_failures: int, lock_seconds: int,
                  locks_before: int = 0, max_lock_seconds: int = 0):
    """The (failed_logins, locked_until) after one more failed login.

    Reaching ``max_failures`` locks for ``lock_duration(…)`` (back-off: each
    lock since the last success lasts twice the one before, up to
    ``max_lock_seconds``) and starts the count again, so the next lock needs
    as many failures.
    """
    failed = failed_logins + 1
    if max_failures and failed >= max_failures:
        return 0, now + timedelta(seconds=lock_duration(lock_seconds, locks_before, max_lock_seconds))
    return failed, None
