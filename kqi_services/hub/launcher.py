"""``kqi-hub``: prepare the state directory and start JupyterHub with the embedded config.

At every start it creates or upgrades the kqi database, adds the defaults
that are missing (roles, endpoints, this node, the default tenant, the first
admin), stops a kqi service that a killed hub left running on this state
directory (see ``lifeline``) and then replaces itself with JupyterHub, which
starts the proxy and the kqi service and stops them on Ctrl-C / SIGTERM.

``kqi-hub upgrade-db`` only upgrades the kqi database.
"""

from __future__ import annotations

import os
import sys

import hub_config
from kqi_services.accounts.secretbox import SecretBox
from kqi_services.db import make_engine, make_session_factory, upgrade
from kqi_services.hub import lifeline
from kqi_services.hub.banner import executor_line
from kqi_services.hub.settings import PlatformSettings
from kqi_services.jobs.nodes import detect_node
from kqi_services.seed import ensure_admin, seed_defaults


def prepare_state(settings: PlatformSettings, admin_password: str | None) -> str | None:
    """Create, upgrade and seed; return the admin password if one was generated now."""
    os.makedirs(settings.state_dir, mode=0o700, exist_ok=True)
    os.makedirs(settings.secrets_dir, mode=0o700, exist_ok=True)
    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with make_session_factory(engine)() as db:
            box = SecretBox.from_key_file(settings.encryption_key_file)
            seed_defaults(db, box, detect_node(), os.path.join(settings.state_dir, "objects"))
            generated = ensure_admin(db, settings.admin_user, admin_password)
            db.commit()
    finally:
        engine.dispose()
    return generated


def hub_command() -> list[str]:
    config = os.path.join(os.path.dirname(hub_config.__file__), "jupyterhub_config.py")
    return [sys.executable, "-m", "jupyterhub", "-f", config]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    settings = PlatformSettings()
    if argv[:1] == ["upgrade-db"]:
        upgrade(settings.db_url)
        print(f"kqi database at {settings.db_url.split('@')[-1]} is up to date")
        return
    password = os.environ.pop("KQI_ADMIN_PASSWORD", None)
    generated = prepare_state(settings, password)
    if generated:
        print(
            f"\n  First start: created the system admin {settings.admin_user!r} with password\n\n"
            f"      {generated}\n\n  It is stored only as a bcrypt hash and is not shown again.\n",
            flush=True,
        )
    stale = lifeline.take_over(settings.state_dir)
    if stale:
        print(f"Stopped the kqi service (pid {stale}) that an earlier hub left running", flush=True)
    print(f"KQI Hub: {settings.public_url}/  (state in {settings.state_dir})", flush=True)
    print(executor_line(dict(os.environ)), flush=True)
    env = dict(os.environ, **settings.service_environment())
    os.chdir(settings.state_dir)
    os.execvpe(sys.executable, hub_command() + argv, env)


if __name__ == "__main__":
    main()
