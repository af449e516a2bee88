"""KqiAuthenticator: JupyterHub logins checked against bcrypt hashes in the kqi database.

Why our own and not NativeAuthenticator 1.3.0: its login page crashes on
JupyterHub 6.1, its lockout is kept in memory (lost on restart), it has no API
for password change or reset, and its users would live in a second table
beside ours. Here the kqi database is the one place for accounts: the kqi
admin API writes them, this class only reads hashes and counts failures.

The lockout counts failures per (user, source address) with back-off (see
``forwarding`` for whose address a request is, ``lockout`` for the rows and
``passwords`` for the arithmetic), so nobody locks a user out by failing
from another address.

Loaded inside the hub process. LDAP or OAuth replace it by configuration
(``c.JupyterHub.authenticator_class``); the kqi service provisions such
users on their first request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import weakref
from datetime import timedelta

from jupyterhub.auth import Authenticator
from traitlets import Integer, List, Unicode, default, validate

from kqi_services.accounts import lockout
from kqi_services.accounts.passwords import verify_password
from kqi_services.db import make_engine, make_session_factory
from kqi_services.hub import lifeline
from kqi_services.hub.forwarding import PROXY_PID_FILE_NAME, request_source
from kqi_services.hub.settings import PlatformSettings
from kqi_services.orm import User, utcnow


class KqiAuthenticator(Authenticator):
    db_url = Unicode(help="URL of the kqi database holding the password hashes.").tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return PlatformSettings().db_url

    max_failed_logins = Integer(
        5,
        help="""Failed logins in a row, from one source address, that lock that address out of the
        account; 0 disables the lockout. Other addresses keep logging in. The count is stored in
        the kqi database, so a hub restart does not reset it.""",
    ).tag(config=True)

    lockout_seconds = Integer(
        60,
        help="""How long the first lock of an address refuses every login of the account from there,
        even with the right password. Each further lock before a successful login lasts twice
        as long as the one before, up to lockout_max_seconds. Example: 60 → 120 → 240 s…""",
    ).tag(config=True)

    lockout_max_seconds = Integer(
        3600, help="The longest one lock lasts, however many came before it (the back-off's cap)."
    ).tag(config=True)

    forget_failures_after_seconds = Integer(
        24 * 3600,
        help="An address that has not failed for this long starts again from no failures and no back-off.",
    ).tag(config=True)

    forwarder_pid_files = List(
        Unicode(),
        help="""Pid files of the processes whose X-Forwarded-For entry names the client: the hub's own
        configurable-http-proxy (JupyterHub's ConfigurableHTTPProxy.pid_file) and the kqi service
        (its lifeline record). A request is believed to come from the address such a process
        appended only when its TCP peer is that process (looked up in /proc), not merely an
        address on 127.0.0.1, where every local process (a run's relay too) connects from.
        Default: both files in the platform's state directory.""",
    ).tag(config=True)

    @default("forwarder_pid_files")
    def _forwarder_pid_files_default(self):
        state = PlatformSettings().state_dir
        return [os.path.join(state, PROXY_PID_FILE_NAME), lifeline.pid_file(state)]

    trusted_proxy_ips = List(
        Unicode(),
        help="""Addresses or networks ("10.0.0.0/8") of proxies in front of the hub's own proxy (an
        nginx, an ingress, a load balancer) that append the client's address to X-Forwarded-For;
        their entries are believed too, and a peer at such an address counts as a forwarder.
        Default: none, so a failed login counts against the address the hub's proxy saw.
        Listing 127.0.0.1 lets every local process name any address.""",
    ).tag(config=True)

    @validate("trusted_proxy_ips")
    def _valid_networks(self, proposal):
        for entry in proposal.value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return proposal.value

    @default("allow_all")
    def _allow_all_default(self):
        # every account in the kqi database may log in; the admin API is the gate
        return True

    _session_factory = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # one check at a time per (user, address): a burst of parallel guesses cannot
        # all pass the lock check before the first failure is counted
        self._pair_locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def _session(self):
        if self._session_factory is None:
            self._session_factory = make_session_factory(make_engine(self.db_url))
        return self._session_factory()

    def add_user(self, user):
        """The hub adds a user: only accounts of the kqi database (the console's Users screen, the admin API).

        A hub user made any other way (the hub's own "Add Users", ``POST /hub/api/users``) could not log in
        and would belong to no tenant: the hub answers 400 and drops it. At the hub's start an unknown user
        already in its database is only logged (the hub catches this error there).
        """
        with self._session() as db:
            known = User.find_by_name(db, user.name) is not None
        if not known:
            raise ValueError(f"{user.name} is not a KQI account: create users in the KQI console "
                             "(Admin → Users) or with POST /services/kqi/api/v2/admin/users")
        return super().add_user(user)

    def source_address(self, handler) -> str:
        """The address a login request came from (see ``forwarding``); '' when there is no request."""
        request = getattr(handler, "request", None)
        if request is None:
            return ""
        return request_source(request, self.forwarder_pid_files, self.trusted_proxy_ips)

    async def authenticate(self, handler, data):
        if not isinstance(data, dict):
            return None
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            return None
        name, address = self.normalize_username(username), self.source_address(handler)
        pair = self._pair_locks.setdefault((name, address), asyncio.Lock())
        async with pair:
            return await asyncio.get_running_loop().run_in_executor(None, self._check, name, password, address)

    def _check(self, name: str, password: str, address: str):
        """Verify a password, counting failures of (name, address); return the hub's user model or None."""
        with self._session() as db:
            user = User.find_by_name(db, name)
            if user is None or user.password_hash is None:
                self.log.warning("Failed login for unknown or non-local user %s from %s", name, address)
                return None
            now = utcnow()
            until = lockout.locked_until(db, user.id, address, now)
            if until is not None:
                self.log.warning("Refused login for %s from %s: locked until %s UTC", name, address, until)
                return None
            if verify_password(password, user.password_hash):
                lockout.record_success(db, user.id, address)
                db.commit()
                return {"name": user.name, "admin": user.is_admin}
            until = lockout.record_failure(db, user.id, address, now, max_failures=self.max_failed_logins,
                                           lock_seconds=self.lockout_seconds,
                                           max_lock_seconds=self.lockout_max_seconds)
            lockout.purge_quiet(db, now, timedelta(seconds=self.forget_failures_after_seconds))
            db.commit()
            if until is not None:
                self.log.warning("Locked %s out from %s until %s UTC after repeated failed logins",
                                 name, address, until)
            else:
                self.log.warning("Failed login for %s from %s", name, address)
            return None
