"""Platform-wide settings shared by the launcher, the hub config and the kqi service.

Each knob is a trait whose default reads a ``KQI_*`` environment variable, so
``make run`` is configured by the environment and tests by constructor
arguments. The README lists the variables.
"""

from __future__ import annotations

import os
import sys

from traitlets import Integer, Unicode, default
from traitlets.config import Configurable

#: the checkout (or site-packages) holding the kqi_services package: node_modules/ sits here in a checkout
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


#: variables of the kqi service's own settings that the hub passes on to it
SERVICE_SETTINGS = ("KQI_PUBLIC_URL", "KQI_RUN_NETWORK", "KQI_EXECUTOR", "DOCKER_HOST", "KQI_PULL_POLICY")


class PlatformSettings(Configurable):
    """Where state lives and which loopback ports the parts listen on."""

    state_dir = Unicode(help="""Directory holding every byte of state: both databases,
        secrets, the object store. KQI_STATE_DIR; default `.kqi-state` in the repo.""").tag(config=True)

    @default("state_dir")
    def _state_dir_default(self):
        return os.path.abspath(os.environ.get("KQI_STATE_DIR") or os.path.join(REPO_ROOT, ".kqi-state"))

    ip = Unicode(help="Address the proxy listens on. KQI_IP; default 127.0.0.1.").tag(config=True)

    @default("ip")
    def _ip_default(self):
        return os.environ.get("KQI_IP", "127.0.0.1")

    port = Integer(help="Public port of the proxy (the platform's URL). KQI_PORT; default 8000.").tag(config=True)

    @default("port")
    def _port_default(self):
        return int(os.environ.get("KQI_PORT", "8000"))

    hub_port = Integer(help="Port of the hub's own server on 127.0.0.1. KQI_HUB_PORT; default port+1.").tag(config=True)

    @default("hub_port")
    def _hub_port_default(self):
        return int(os.environ.get("KQI_HUB_PORT") or self.port + 1)

    proxy_api_port = Integer(help="Port of the proxy's REST API. KQI_PROXY_API_PORT; default port+2.").tag(config=True)

    @default("proxy_api_port")
    def _proxy_api_port_default(self):
        return int(os.environ.get("KQI_PROXY_API_PORT") or self.port + 2)

    service_port = Integer(help="Port of the kqi service. KQI_SERVICE_PORT; default port+3.").tag(config=True)

    @default("service_port")
    def _service_port_default(self):
        return int(os.environ.get("KQI_SERVICE_PORT") or self.port + 3)

    db_url = Unicode(help="""SQLAlchemy URL of the kqi database. KQI_DB_URL; default a SQLite file
        in the state dir. PostgreSQL: `postgresql+psycopg://user:pw@host/db`.""").tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return os.environ.get("KQI_DB_URL") or "sqlite:///" + os.path.join(self.state_dir, "kqi.sqlite")

    hub_db_url = Unicode(help="JupyterHub's database URL. KQI_HUB_DB_URL; default a SQLite file in the state dir.").tag(config=True)

    @default("hub_db_url")
    def _hub_db_url_default(self):
        return os.environ.get("KQI_HUB_DB_URL") or "sqlite:///" + os.path.join(self.state_dir, "jupyterhub.sqlite")

    admin_user = Unicode(help="Name of the first system admin. KQI_ADMIN_USER; default admin.").tag(config=True)

    @default("admin_user")
    def _admin_user_default(self):
        return os.environ.get("KQI_ADMIN_USER", "admin").lower()

    token_lifetime_seconds = Integer(help="""Lifetime of tokens from login and switch-tenant when
        the client asks for none. KQI_TOKEN_LIFETIME; default 10 days, as KAMONOHASHI.""").tag(config=True)

    @default("token_lifetime_seconds")
    def _token_lifetime_default(self):
        return int(os.environ.get("KQI_TOKEN_LIFETIME", 10 * 24 * 3600))

    token_max_seconds = Integer(help="""Longest lifetime any token may have; longer requests are
        capped to it. KQI_TOKEN_MAX_LIFETIME; default 90 days.""").tag(config=True)

    @default("token_max_seconds")
    def _token_max_default(self):
        return int(os.environ.get("KQI_TOKEN_MAX_LIFETIME", 90 * 24 * 3600))

    hub_config_profile = Unicode(help="""Extra Python config file loaded after the embedded
        defaults (LDAP, OAuth, PostgreSQL, S3 profiles). KQI_HUB_CONFIG; default none.""").tag(config=True)

    @default("hub_config_profile")
    def _profile_default(self):
        return os.environ.get("KQI_HUB_CONFIG", "")

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        return f"http://{host}:{self.port}"

    @property
    def secrets_dir(self) -> str:
        return os.path.join(self.state_dir, "secrets")

    @property
    def encryption_key_file(self) -> str:
        return os.path.join(self.secrets_dir, "kqi-encryption.key")

    @property
    def service_token_file(self) -> str:
        return os.path.join(self.secrets_dir, "kqi-service-token")

    def service_environment(self) -> dict[str, str]:
        """The KQI_* variables a child process needs to see these same settings."""
        return {
            "KQI_STATE_DIR": self.state_dir,
            "KQI_IP": self.ip,
            "KQI_PORT": str(self.port),
            "KQI_HUB_PORT": str(self.hub_port),
            "KQI_PROXY_API_PORT": str(self.proxy_api_port),
            "KQI_SERVICE_PORT": str(self.service_port),
            "KQI_DB_URL": self.db_url,
            "KQI_ADMIN_USER": self.admin_user,
            "KQI_TOKEN_LIFETIME": str(self.token_lifetime_seconds),
            "KQI_TOKEN_MAX_LIFETIME": str(self.token_max_seconds),
            # the service's own settings, read by it (kqi_services/app.py), passed on when set
            **{name: os.environ[name] for name in SERVICE_SETTINGS if os.environ.get(name)},
        }


def proxy_command() -> list[str]:
    """configurable-http-proxy installed into the project by npm, else from PATH."""
    local = os.path.join(REPO_ROOT, "node_modules", ".bin", "configurable-http-proxy")
    if os.path.exists(local):
        return [local]
    return ["configurable-http-proxy"]


def python_executable() -> str:
    return sys.executable
