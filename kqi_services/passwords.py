"""bcrypt password hashing and the failed-login lockout rules: whom a failure counts against, and for how long.

A failure counts against the pair (user, source address), so five wrong
passwords from one address lock that address out, not the user everywhere.
The source address is the TCP peer, unless that peer is a trusted proxy
(the hub's own configurable-http-proxy and the kqi service, on loopback):
then it is the address that proxy appended to ``X-Forwarded-For``, walked
from the right past further trusted hops. ``X-Real-Ip`` and whatever a
client writes into ``X-Forwarded-For`` itself are never believed.
"""

from __future__ import annotations

import ipaddress
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


def _ip(text: str):
    """An address as ipaddress sees it (IPv4-mapped IPv6 as IPv4), None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def client_address(peer: str, forwarded_for: str | None, trusted_proxies) -> str:
    """The source address a failed login counts against.

    Args:
        peer: the address of the TCP connection's other end.
        forwarded_for: the request's ``X-Forwarded-For`` header, if any.
        trusted_proxies: addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``)
            of proxies that append the address they received a request from.
    """
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(address) -> bool:
        return address is not None and any(address.version == n.version and address in n for n in networks)

    current = _ip(peer)
    if current is None:
        return peer or ""
    for hop in reversed((forwarded_for or "").split(",")) if trusted(current) else ():
        previous = _ip(hop)
        if previous is None:  # not written by a trusted hop: stop at the one that passed it on
            break
        current = previous
        if not trusted(current):
            break
    return str(current)


def peer_address(request) -> str:
    """The TCP peer of a tornado request, before ``xheaders`` rewrote ``remote_ip`` from client headers."""
    context = getattr(getattr(request, "connection", None), "context", None)
    return getattr(context, "_orig_remote_ip", None) or getattr(request, "remote_ip", None) or ""
