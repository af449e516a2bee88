"""KqiAuthenticator: JupyterHub logins checked against bcrypt hashes in the kqi database.

Why our own and not NativeAuthenticator 1.3.0: its login page crashes on
JupyterHub 6.1, its lockout is kept in memory (lost on restart), it has no API
for password change or reset, and its users would live in a second table
beside ours. Here the kqi database is the one place for accounts: the kqi
admin API writes them, this class only reads hashes and counts failures.

Loaded inside the hub process. LDAP or OAuth replace it by configuration
(``c.JupyterHub.authenticator_class``); the kqi service provisions such
users on their first request.
"""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from traitlets import Integer, Unicode, default

from .db import make_engine, make_session_factory
from .orm import User, utcnow
from .passwords import after_failure, is_locked, verify_password
from .settings import PlatformSettings


class KqiAuthenticator(Authenticator):
    db_url = Unicode(help="URL of the kqi database holding the password hashes.").tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return PlatformSettings().db_url

    max_failed_logins = Integer(
        5,
        help="""Failed logins in a row that lock an account; 0 disables the lockout.
        The count is stored in the kqi database, so a hub restart does not reset it.""",
    ).tag(config=True)

    lockout_seconds = Integer(
        600, help="How long a locked account refuses every login, even a right password."
    ).tag(config=True)

    @default("allow_all")
    def _allow_all_default(self):
        # every account in the kqi database may log in; the admin API is the gate
        return True

    _session_factory = None

    def _session(self):
        if self._session_factory is None:
            self._session_factory = make_session_factory(make_engine(self.db_url))
        return self._session_factory()

    async def authenticate(self, handler, data):
        if not isinstance(data, dict):
            return None
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            return None
        return await asyncio.get_running_loop().run_in_executor(
            None, self._check, self.normalize_username(username), password
        )

    def _check(self, name: str, password: str):
        """Verify a password, counting failures; return the hub's user model or None."""
        with self._session() as db:
            user = User.find_by_name(db, name)
            if user is None or user.password_hash is None:
                self.log.warning("Failed login for unknown or non-local user %s", name)
                return None
            now = utcnow()
            if is_locked(user.locked_until, now):
                self.log.warning("Refused login for locked user %s", name)
                return None
            if verify_password(password, user.password_hash):
                user.failed_logins = 0
                user.locked_until = None
                db.commit()
                return {"name": user.name, "admin": user.is_admin}
            user.failed_logins, user.locked_until = after_failure(
                user.failed_logins, now, self.max_failed_logins, self.lockout_seconds
            )
            db.commit()
            if user.locked_until:
                self.log.warning("Locked user %s after repeated failed logins", name)
            else:
                self.log.warning("Failed login for %s", name)
            return None
