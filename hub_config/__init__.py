"""The embedded JupyterHub configuration as a tested function.

``apply_config(c, settings)`` sets the slices of the hub's config that make
KQI Hub: ports and state under one directory, the project's proxy, our
authenticator, the kqi service with its role, the `user` role that may reach
it, token lifetimes. ``jupyterhub_config.py`` beside this file only calls it.
"""

from __future__ import annotations

import os
import sys

from kqi_services.accounts.secretbox import read_or_create_secret
from kqi_services.hub import lifeline
from kqi_services.hub.forwarding import PROXY_PID_FILE_NAME
from kqi_services.hub.lifeline import HUB_PID_ENV
from kqi_services.hub.settings import PlatformSettings, proxy_command, python_executable

SERVICE_NAME = "kqi"
#: our overrides of the hub's page, home and admin templates
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

# the default `user` role plus access to the kqi service
USER_SCOPES = ["self", f"access:services!service={SERVICE_NAME}"]
# a notebook's own token: the `server` role's scopes, plus the kqi service (the panels, the CLI, %kqi)
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", f"access:services!service={SERVICE_NAME}"]


def apply_config(c, settings: PlatformSettings) -> None:
    """Set the embedded defaults on the hub config ``c``."""
    state = settings.state_dir
    c.JupyterHub.bind_url = f"http://{settings.ip}:{settings.port}/"
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    c.JupyterHub.db_url = settings.hub_db_url
    c.JupyterHub.cookie_secret_file = os.path.join(settings.secrets_dir, "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = os.path.join(state, "jupyterhub.pid")
    # notebooks, like jobs, run under supervisors of their own and outlive a platform restart:
    # the hub keeps their servers and finds them again (the spawner asks the kqi service)
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = True
    c.JupyterHub.allow_named_servers = True
    # after login people land on the hub's home, where notebooks are started
    c.JupyterHub.default_url = "/hub/home"
    c.JupyterHub.token_expires_in_max_seconds = settings.token_max_seconds

    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.pid_file = os.path.join(state, PROXY_PID_FILE_NAME)
    c.ConfigurableHTTPProxy.auth_token = read_or_create_secret(os.path.join(settings.secrets_dir, "proxy-token"))

    # the hub's pages lead to the KQI console (hub_config/templates: nav link, home banner, admin notice)
    c.JupyterHub.template_paths = [TEMPLATES]
    c.JupyterHub.template_vars = {"kqi_console_url": f"/services/{SERVICE_NAME}/"}

    c.JupyterHub.authenticator_class = "kqi_services.hub.authenticator.KqiAuthenticator"
    c.KqiAuthenticator.db_url = settings.db_url
    # X-Forwarded-For is believed from these processes only (the lockout counts per source address)
    c.KqiAuthenticator.forwarder_pid_files = [c.ConfigurableHTTPProxy.pid_file, lifeline.pid_file(state)]

    apply_spawner_config(c, settings)

    c.JupyterHub.services = [
        {
            "name": SERVICE_NAME,
            "display": True,
            "url": f"http://127.0.0.1:{settings.service_port}",
            "command": [python_executable(), "-m", "kqi_services"],
            "api_token": read_or_create_secret(settings.service_token_file),
            "oauth_no_confirm": True,
            # the service ends when this hub process does (kqi_services/hub/lifeline.py)
            "environment": {**settings.service_environment(), HUB_PID_ENV: str(os.getpid())},
            "cwd": state,
        }
    ]
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": USER_SCOPES},
        # the kqi admin API is the one place that changes users, admins, groups and
        # tokens, so the service holds the hub's admin role (only admins grant admin)
        {"name": "admin", "services": [SERVICE_NAME]},
    ]



def apply_spawner_config(c, settings: PlatformSettings) -> None:
    """Notebooks: our spawner, asking the kqi service, with JupyterLab opened in /kqi/output."""
    c.JupyterHub.spawner_class = "kqi_spawner.local.KqiLocalSpawner"
    c.KqiSpawnerMixin.kqi_api_url = f"http://127.0.0.1:{settings.service_port}/services/{SERVICE_NAME}/api/v2"
    c.KqiSpawnerMixin.kqi_api_token = read_or_create_secret(settings.service_token_file)
    c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
    c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
    c.Spawner.default_url = "/lab"
    c.Spawner.notebook_dir = "/kqi/output"
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    # a notebook may wait in the queue for resources as long as a job would
    c.Spawner.start_timeout = 24 * 3600
    c.Spawner.http_timeout = 120
    c.Spawner.poll_interval = 10
